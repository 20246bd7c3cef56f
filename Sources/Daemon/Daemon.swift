import CLinux
import ConfigFile
import Core
import Events
import ExperimentRunner
import Faults
import Logging
import NIOPosix
import ServiceLifecycle
import Supervision
import Synchronization
import Systemd
import Varlink
import TOML
#if canImport(Glibc)
import Glibc
#endif

/// Composes the daemon: config -> paths -> event hub -> link proxies -> node table -> fault engine
/// -> control socket, run as one ServiceGroup that turns SIGTERM/SIGINT into a graceful stop.
public enum Daemon {
    public struct Options: Sendable {
        public var configFile: String?
        public var socket: String?
        public var nodeBinary: String?
        /// Installed first thing in main; nil: `run` installs it (later than ideal, say from a test).
        public var signals: SignalInbox?
        public init(configFile: String?, socket: String?, nodeBinary: String?, signals: SignalInbox? = nil) {
            self.configFile = configFile; self.socket = socket; self.nodeBinary = nodeBinary; self.signals = signals
        }
    }

    public enum StartError: Error, CustomStringConvertible {
        case config(ConfigError)
        case setup(String)
        public var description: String {
            switch self {
            case .config(let e): return "refusing to start: \(e)"
            case .setup(let s): return "cannot start: \(s)"
            }
        }
    }

    public static func loadConfig(_ file: String?) throws(StartError) -> ClusterConfig {
        guard let file else { return .default }
        do { return try ConfigLoader.load(path: file) } catch { throw .config(error) }
    }

    public static func run(_ options: Options) async throws {
        let inbox = options.signals ?? SignalInbox.install()
        let config = try loadConfig(options.configFile)
        let paths = try claimDirectories(config, socketOverride: options.socket)
        let runID = config.runID ?? "run-\(Stamp.now().wallMs)"
        let hub = try openEventHub(paths)
        let nodeBinary = options.nodeBinary ?? config.nodeBinary ?? siblingExecutable("kvnode")
        guard access(nodeBinary, X_OK) == 0 else {
            throw StartError.setup("kvnode binary not found or not executable at \(nodeBinary) (set [supervisor] node_binary)")
        }
        // Link proxies carry the heartbeats being measured; the control socket gets a loop of its own
        // so a burst of kvctl calls cannot delay a heartbeat.
        let loops = EventLoops(links: MultiThreadedEventLoopGroup(numberOfThreads: 1),
                               control: MultiThreadedEventLoopGroup(numberOfThreads: 1))
        let links = try await startLinkProxies(config, group: loops.links)
        let context = try makeContext(config: config, options: options, paths: paths, runID: runID, hub: hub, links: links,
                                      nodeBinary: nodeBinary, group: loops.links)
        let serverConfig = ControlSocketRules.serverConfig(config, socket: paths.socket, hub: hub)
        announceStart(context, nodeBinary: nodeBinary)
        try await serve(context, serverConfig: serverConfig, inbox: inbox, links: links, loops: loops)
    }

    private struct EventLoops {
        let links: MultiThreadedEventLoopGroup
        let control: MultiThreadedEventLoopGroup
    }

    /// The runtime and state directories, made and locked before anything binds, spawns or writes:
    /// a second supervisor here must touch nothing.
    private static func claimDirectories(_ config: ClusterConfig, socketOverride: String?) throws -> DaemonPaths {
        let paths = DaemonPaths.resolve(config: config, socketOverride: socketOverride).absolute()
        for dir in [paths.runtimeDir, paths.stateDir] where !DaemonPaths.makeDirectories(dir) {
            throw StartError.setup("cannot create directory \(dir): \(String(cString: strerror(errno)))")
        }
        try StateLock.acquire([paths.runtimeDir, paths.stateDir])
        return paths
    }

    /// The event log, and the journal when systemd started us (and KV_LOG_STDERR does not ask otherwise).
    private static func openEventHub(_ paths: DaemonPaths) throws -> EventHub {
        let journal = Journal.isAvailable && (getenv("INVOCATION_ID") != nil || getenv("JOURNAL_STREAM") != nil)
            && getenv("KV_LOG_STDERR") == nil
        do { return try EventHub(logPath: paths.eventLog, useJournal: journal) }
        catch { throw StartError.setup("\(error)") }
    }

    /// Proxies forward to the port that carries peer traffic: raft mode's peer port (Raft and
    /// heartbeats), heartbeat mode's only port.
    private static func startLinkProxies(_ config: ClusterConfig, group: MultiThreadedEventLoopGroup) async throws -> LinkTable {
        let proxyTargets = config.nodes.map { n in NodeConfig(id: n.id, port: config.peerTrafficPort(of: n), host: n.host) }
        do { return try await LinkTable.start(nodes: proxyTargets, group: group) }
        catch { throw StartError.setup("cannot open link proxies on 127.0.0.1: \(error)") }
    }

    /// The owners the services share: the node supervisor, the fault engine, the experiments.
    private static func makeContext(config: ClusterConfig, options: Options, paths: DaemonPaths, runID: String, hub: EventHub,
                                    links: LinkTable, nodeBinary: String, group: MultiThreadedEventLoopGroup) throws -> DaemonContext {
        let configBox = ConfigBox(config)
        let environment = childEnvironment()
        let makeSpec: NodeSupervisor.SpecBuilder = { node in
            NodeCommandLine(config: configBox.value, links: links, stateDir: paths.stateDir, runID: runID)
                .spec(for: node, executable: nodeBinary, environment: environment)
        }
        // A node's exit ends the stops on it; the engine comes after the supervisor, hence the box.
        let exits = Mutex<(@Sendable (NodeID, String) -> Void)?>(nil)
        let supervisor: NodeSupervisor
        do {
            supervisor = try NodeSupervisor(config: config, runtimeDir: paths.runtimeDir, runID: runID, makeSpec: makeSpec,
                emit: { event in
                    hub.publish(event)
                    if event.kind == .nodeExited, let node = event.node, let forward = exits.withLock({ $0 }) {
                        forward(node, "the process exited" + (event.signal.map { " (\($0))" } ?? ""))
                    }
                }, log: { node, line in hub.log(line, node: node) })
        } catch { throw StartError.setup("\(error)") }

        let engine = FaultEngine(supervisor: supervisor, links: links, runID: runID,
            effectDeadlineMs: config.faultEffectDeadlineMs, stopGraceMs: config.stopGraceMs,
            timerSpinUs: config.timerSpinUs, schedPriority: config.schedPriority, hooks: .publishing(to: hub))
        exits.withLock { $0 = { node, reason in engine.processEnded(node, reason: reason) } }
        if let reason = engine.realtimeUnavailableReason {
            hub.log("fault timing: SCHED_OTHER, since \(reason); a fault's applied stamp may then trail its "
                    + "syscall by up to about 1 ms on a busy host", priority: config.schedPriority > 0 ? 5 : 6)
        } else {
            hub.log("fault timing: SCHED_FIFO priority \(config.schedPriority) from each fault's last wait to its applied stamp")
        }
        // Experiments get clusters of their own (notify sockets in a directory of their own), so
        // the configured cluster keeps running beside them.
        let experimentRuntime = paths.runtimeDir + "/experiments"
        _ = DaemonPaths.makeDirectories(experimentRuntime)
        let experiments = ExperimentManager(environment: ExperimentEnvironment(
            nodeBinary: nodeBinary, runtimeDir: experimentRuntime, stateDir: paths.stateDir, childEnvironment: environment,
            timerSpinUs: config.timerSpinUs, schedPriority: config.schedPriority, stopGraceMs: config.stopGraceMs,
            faultEffectDeadlineMs: config.faultEffectDeadlineMs, group: group), mainHub: hub)
        let context = DaemonContext(config: config, configFile: options.configFile, supervisor: supervisor,
                                    engine: engine, hub: hub, experiments: experiments, paths: paths, runID: runID)
        configBox.follow(context)
        return context
    }

    /// supervisor_started, with the values in force, defaults resolved: the paths actually used,
    /// the binary actually run.
    private static func announceStart(_ context: DaemonContext, nodeBinary: String) {
        var started = Event(kind: .supervisorStarted, runID: context.runID)
        started.pid = getpid()
        started.version = kvsupervisorVersion
        started.path = context.configFile
        var settings = context.config.settingValues
        settings["supervisor.socket"] = context.paths.socket
        settings["supervisor.event_log"] = context.paths.eventLog
        settings["supervisor.state_dir"] = context.paths.stateDir
        settings["supervisor.runtime_dir"] = context.paths.runtimeDir
        settings["supervisor.run_id"] = context.runID
        settings["supervisor.node_binary"] = nodeBinary
        started.settings = settings
        context.hub.publish(started)
    }

    /// Runs the services until a graceful stop (or a failed start), then releases what the daemon
    /// holds: the proxies, the event loops, the socket it bound.
    private static func serve(_ context: DaemonContext, serverConfig: VarlinkServerConfig, inbox: SignalInbox?, links: LinkTable,
                              loops: EventLoops) async throws {
        var logger = Logger(label: "kvsupervisor")
        logger.logLevel = .warning
        let (reloads, reloadSink) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        // No gracefulShutdownSignals: SignalRouter owns SIGTERM/SIGINT, caught since main began.
        let controlServer = VarlinkServer(config: serverConfig)
        let services = ServiceGroup(configuration: .init(
            services: [
                .init(service: ReportPumpService(supervisor: context.supervisor)),
                .init(service: ControlService(server: controlServer, group: loops.control,
                                              handler: ControlHandler(context: context))),
                .init(service: WatchdogService(context: context)),
                .init(service: ClusterService(context: context, reloads: reloads),
                      successTerminationBehavior: .gracefullyShutdownGroup),
            ],
            logger: logger))
        if inbox == nil { context.hub.log("cannot install signal handlers; SIGTERM and SIGHUP act by their defaults", priority: 3) }
        let router = SignalRouter(context: context, services: services, reloads: reloadSink,
                                  testHooks: getenv("KVSUPERVISOR_TEST_HOOKS").map { String(cString: $0) } == "1")
        // The router is a child of this task group, not a service: it must take SIGTERM while the
        // services start, and it ends when they have.
        let outcome: Result<Void, any Error> = await withTaskGroup(of: Void.self) { group in
            if let inbox { group.addTask { await router.run(inbox.signals()) } }
            defer { group.cancelAll() }
            do { try await services.run(); return .success(()) } catch { return .failure(error) }
        }
        // Only the socket this supervisor bound: the path may have been replaced by another's.
        let boundOwnSocket = context.config.socketPath != nil || serverConfig.listenFD == nil
        do {
            try outcome.get()
        } catch {
            await context.supervisor.stopAll(graceMs: 1000)
            context.hub.close()
            await links.closeAll()
            if boundOwnSocket { controlServer.removeOwnSocket() }
            throw StartError.setup("\(error)")
        }
        await links.closeAll()
        try? await loops.links.shutdownGracefully()
        try? await loops.control.shutdownGracefully()
        if boundOwnSocket { controlServer.removeOwnSocket() }
    }

    /// The parent's environment minus what belongs to the daemon alone (systemd's notify, watchdog
    /// and listen variables), so each child gets a clean NOTIFY_SOCKET of its own.
    static func childEnvironment() -> [String] {
        var result: [String] = []
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            let dropped = ["NOTIFY_SOCKET=", "WATCHDOG_", "LISTEN_", "KVSUPERVISOR_PID="]
            if !dropped.contains(where: { s.hasPrefix($0) }) { result.append(s) }
            p += 1
        }
        return result
    }

    /// A binary installed next to this one (kvsupervisor and kvnode ship together).
    static func siblingExecutable(_ name: String) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return name }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = path.lastIndex(of: "/") else { return name }
        return String(path[...slash]) + name
    }
}

/// The config as the spec builder reads it: the boot config until the context exists, then the live one.
final class ConfigBox: Sendable {
    private let boot: ClusterConfig
    private let context = Mutex<DaemonContext?>(nil)
    init(_ c: ClusterConfig) { boot = c }
    func follow(_ c: DaemonContext) { context.withLock { $0 = c } }
    var value: ClusterConfig { context.withLock { $0?.config } ?? boot }
}
