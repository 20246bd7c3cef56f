import ArgumentParser
import Core
import Daemon
import Systemd
#if canImport(Glibc)
import Glibc
#endif

/// Catches SIGHUP, SIGTERM and SIGINT before anything else runs (their default actions would kill
/// the daemon while it starts), then parses the command line.
@main
enum Main {
    static func main() async {
        let signals = SignalInbox.install()
        KVSupervisor.signals = signals
        await KVSupervisor.main()
    }
}

/// kvsupervisor: the daemon. Argument parsing and wiring only; behaviour lives in Daemon.
struct KVSupervisor: AsyncParsableCommand {
    nonisolated(unsafe) static var signals: SignalInbox?

    static let configuration = CommandConfiguration(
        commandName: "kvsupervisor",
        abstract: "Owns a cluster of kvnode processes, injects faults on command, records detections.",
        discussion: "Without --config it runs three raft nodes A, B, C: a replicated KV store with its HTTP API on "
            + "127.0.0.1:7101-7103 and Raft and heartbeat traffic on 8101-8103.")

    @Option(name: .long, help: "TOML configuration file.") var config: String?
    @Option(name: .long, help: "Control socket path (overrides [supervisor] socket).") var socket: String?
    @Option(name: .customLong("node-binary"), help: "kvnode binary (default: beside kvsupervisor).") var nodeBinary: String?
    @Flag(name: .customLong("check-config"), help: "Validate the configuration and exit.") var checkConfig = false

    func run() async throws {
        do {
            if checkConfig {
                let c = try Daemon.loadConfig(config)
                print("\(config ?? "built-in default"): ok (\(c.nodes.count) nodes, mode \(c.mode.rawValue))")
                return
            }
            try await Daemon.run(.init(configFile: config, socket: socket, nodeBinary: nodeBinary, signals: Self.signals))
        } catch let e as Daemon.StartError {
            writeStderr("kvsupervisor: \(e)")
            throw ExitCode(1)
        }
    }
}

