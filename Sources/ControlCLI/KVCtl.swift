import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// kvctl: talk to kvsupervisor over its Varlink socket. Exit 0 ok, 1 failed, 2 usage error.
public struct KVCtl: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kvctl",
        abstract: "Control a kvsupervisor: status, nodes, fault injection, events.",
        subcommands: [Status.self, Nodes.self, Inject.self, Faults.self, Heal.self, Reload.self, NodeAction.self, StopNode.self,
                      RestartNode.self, Events.self, Leader.self, Groups.self, KV.self, Load.self, Check.self, Sim.self, Experiment.self])

    public init() {}

    /// Parses and runs, mapping errors to the documented exit codes.
    public static func runMain(_ arguments: [String]) -> Int32 {
        do {
            var command = try parseAsRoot(hoistGlobalOptions(arguments))
            try command.run()
            return 0
        } catch let exit as CommandExit {
            return exit.code
        } catch let exit as ExitCode {
            return exit.rawValue  // the message, if any, was already written
        } catch let failure as Failure {
            writeError("kvctl: \(failure.description)")
            return 1
        } catch {
            let code = exitCode(for: error)
            if code == .success { print(fullMessage(for: error)); return 0 }
            writeError(fullMessage(for: error))
            if error is CleanExit { return 0 }
            // ArgumentParser's usage errors (EX_USAGE) are exit 2 here, as for most Unix tools.
            return code.rawValue == 64 ? 2 : (code.rawValue == 0 ? 0 : (isUsage(error) ? 2 : 1))
        }
    }

    /// `kvctl --socket PATH status` as well as `kvctl status --socket PATH`: options given before the
    /// subcommand are moved after it, where each subcommand declares them.
    static func hoistGlobalOptions(_ args: [String]) -> [String] {
        var globals: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            if a == "--json" { globals.append(a); i += 1 }
            else if a == "--socket", i + 1 < args.count { globals += [a, args[i + 1]]; i += 2 }
            else if a.hasPrefix("--socket=") { globals.append(a); i += 1 }
            else { break }
        }
        guard !globals.isEmpty, i < args.count else { return args }
        // A command group takes the options after its subcommand (kvctl --socket S experiment run F).
        let groups = ["experiment", "faults"]
        if groups.contains(args[i]), i + 1 < args.count, !args[i + 1].hasPrefix("-") {
            return [args[i], args[i + 1]] + globals + Array(args[(i + 2)...])
        }
        return [args[i]] + globals + Array(args[(i + 1)...])
    }

    static func isUsage(_ error: any Error) -> Bool { error is ValidationError || exitCode(for: error).rawValue == 64 }

    static func writeError(_ s: String) { writeStandardError(s + "\n") }

    /// Bytes to stderr as they are (a progress bar redraws its line with \r).
    static func writeStandardError(_ s: String) {
        let bytes = Array(s.utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}
