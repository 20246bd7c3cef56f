import ControlCLI
#if canImport(Glibc)
import Glibc
#endif

exit(KVCtl.runMain(Array(CommandLine.arguments.dropFirst())))
