import ControlCLI
#if canImport(Glibc)
import Glibc
#endif

// A closed socket is reported as an error message, not a silent death by SIGPIPE.
signal(SIGPIPE, SIG_IGN)
exit(KVCtl.runMain(Array(CommandLine.arguments.dropFirst())))
