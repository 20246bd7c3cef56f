import Core
import Events
import Experiments
import Faults
import NIOCore
import Supervision
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What every experiment cluster is built from: the daemon's binaries, directories and timing settings.
public struct ExperimentEnvironment: Sendable {
    public var nodeBinary: String
    /// Where the clusters' notify sockets go (a directory the daemon owns).
    public var runtimeDir: String
    /// Where `runs/` lives.
    public var stateDir: String
    public var childEnvironment: [String]
    public var timerSpinUs: Int
    public var schedPriority: Int
    public var stopGraceMs: Int
    public var faultEffectDeadlineMs: Int
    /// Carries the link proxies' heartbeats.
    public var group: any EventLoopGroup

    public init(nodeBinary: String, runtimeDir: String, stateDir: String, childEnvironment: [String], timerSpinUs: Int,
                schedPriority: Int, stopGraceMs: Int, faultEffectDeadlineMs: Int, group: any EventLoopGroup) {
        self.nodeBinary = nodeBinary; self.runtimeDir = runtimeDir; self.stateDir = stateDir
        self.childEnvironment = childEnvironment; self.timerSpinUs = timerSpinUs; self.schedPriority = schedPriority
        self.stopGraceMs = stopGraceMs; self.faultEffectDeadlineMs = faultEffectDeadlineMs; self.group = group
    }
}

/// A fresh cluster for an experiment: nodes on loopback behind link proxies of their own, their
/// own supervisor and fault engine, reporting into the run's event hub. A detection sweep's cell
/// runs heartbeat-mode nodes, the last of which faults hit while the others watch it
/// (`target`, `observers`); a failover run's cluster is a Raft store (`startRaft`).
final class ExperimentCluster: Sendable {
    let supervisor: NodeSupervisor
    let links: LinkTable
    let engine: FaultEngine
    let config: ClusterConfig
    let nodes: [NodeID]
    var target: NodeID { nodes.last! }
    var observers: [NodeID] { nodes.filter { $0 != target } }
    private let pump: Task<Void, Never>
    private let runtimeDir: String
    /// Removed at shutdown: a raft cluster's data directories.
    private let scratchDir: String?

    struct StartError: Error, CustomStringConvertible {
        var description: String
    }

    static func nodeIDs(count: Int) -> [NodeID] {
        count == 2 ? ["detector", "monitored"]
            : (1..<count).map { NodeID(validating: "detector\($0)")! } + ["monitored"]
    }

    /// A detection sweep's cell: heartbeat-mode nodes with the cell's timing and detector.
    static func start(cell: SweepPlan.Cell, spec: DetectionSweepSpec, runID: String, hub: EventHub,
                      environment env: ExperimentEnvironment, log: @escaping @Sendable (NodeID, String) -> Void) async throws
        -> ExperimentCluster {
        let ids = nodeIDs(count: spec.nodes)
        let ports = try LoopbackPorts.free(count: ids.count)
        var config = ClusterConfig(nodes: zip(ids, ports).map { NodeConfig(id: $0, port: $1) })
        config.mode = .heartbeat
        config.hbIntervalMs = cell.intervalMs
        config.hbTimeoutMs = cell.timeoutMs
        config.timerSpinUs = env.timerSpinUs
        return try await start(config: config, runID: runID, hub: hub, environment: env, scratchDir: nil, log: log) { [config] node, links in
            config.commonNodeArguments(for: node, runID: runID) + [
                "--mode", "heartbeat", "--peers", links.peerAddresses(for: node.id, among: config.nodes),
                "--detector", cell.detector.rawValue, "--phi_threshold", String(spec.phiThreshold),
            ]
        }
    }

    /// A failover run's Raft store: nodes A, B, C (D, E) with the spec's groups and Raft timing,
    /// their data under `dataDir` (removed at shutdown), the same command line the daemon gives
    /// its own raft-mode nodes.
    static func startRaft(spec: StoreLayout, runID: String, dataDir: String, hub: EventHub, environment env: ExperimentEnvironment,
                          log: @escaping @Sendable (NodeID, String) -> Void) async throws -> ExperimentCluster {
        let ids = spec.storageNodes
        let ports = try LoopbackPorts.free(count: 2 * ids.count)
        var config = ClusterConfig(nodes: ids.enumerated().map { k, id in
            NodeConfig(id: id, port: ports[2 * k], peerPort: ports[2 * k + 1], dataDir: dataDir + "/" + id.rawValue)
        })
        config.mode = .raft
        config.raft = spec.raft
        config.raft.groups = spec.groups
        config.timerSpinUs = env.timerSpinUs
        guard mkdir(dataDir, 0o755) == 0 || errno == EEXIST else {
            throw StartError(description: "cannot create \(dataDir): \(String(cString: strerror(errno)))")
        }
        do {
            return try await start(config: config, runID: runID, hub: hub, environment: env, scratchDir: dataDir, log: log) { [config] node, links in
                NodeCommandLine(config: config, links: links, stateDir: dataDir, runID: runID).arguments(for: node)
            }
        } catch {
            removeTree(dataDir)
            throw error
        }
    }

    /// A primary-backup store for a failover run: a coordinator NM and `spec.groups` pairs, A:B,
    /// C:D, ... (each node's copy lives in its memory: nothing to remove afterwards).
    static func startPrimaryBackup(spec: StoreLayout, runID: String, hub: EventHub, environment env: ExperimentEnvironment,
                                   log: @escaping @Sendable (NodeID, String) -> Void) async throws -> ExperimentCluster {
        let ports = try LoopbackPorts.free(count: spec.nodes + 1)
        var nodes = [NodeConfig(id: "NM", port: ports[0], role: .coordinator)]
        for (k, id) in spec.storageNodes.enumerated() {
            nodes.append(NodeConfig(id: id, port: ports[k + 1], backupOf: k % 2 == 1 ? nodes[k].id : nil))
        }
        var config = ClusterConfig(nodes: nodes)
        config.mode = .primaryBackup
        config.primaryBackup = spec.primaryBackup
        config.timerSpinUs = env.timerSpinUs
        return try await start(config: config, runID: runID, hub: hub, environment: env, scratchDir: nil, log: log) { [config] node, links in
            NodeCommandLine(config: config, links: links, stateDir: env.runtimeDir, runID: runID).arguments(for: node)
        }
    }

    private static func start(config: ClusterConfig, runID: String, hub: EventHub, environment env: ExperimentEnvironment,
                              scratchDir: String?, log: @escaping @Sendable (NodeID, String) -> Void,
                              arguments: @escaping @Sendable (NodeConfig, LinkTable) -> [String]) async throws -> ExperimentCluster {
        // Proxies lead to the port that carries peer traffic (raft mode's peer port).
        let proxyTargets = config.nodes.map { n in NodeConfig(id: n.id, port: config.peerTrafficPort(of: n), host: n.host) }
        let links = try await LinkTable.start(nodes: proxyTargets, group: env.group)
        let makeSpec: NodeSupervisor.SpecBuilder = { node in
            ChildSpec(id: node.id, executable: env.nodeBinary, arguments: arguments(node, links), environment: env.childEnvironment)
        }
        // A directory per cluster for the notify sockets: node ids repeat from cell to cell.
        let runtimeDir = env.runtimeDir + "/c\(clusterCounter.add(1, ordering: .relaxed).newValue)"
        mkdir(runtimeDir, 0o755)
        let exits = Mutex<(@Sendable (NodeID, String) -> Void)?>(nil)
        let supervisor: NodeSupervisor
        do {
            supervisor = try NodeSupervisor(config: config, runtimeDir: runtimeDir, runID: runID, makeSpec: makeSpec,
                emit: { event in
                    hub.publish(event)
                    // A node's exit ends the stops on it, as in the daemon.
                    if event.kind == .nodeExited, let node = event.node, let forward = exits.withLock({ $0 }) {
                        forward(node, "the process exited" + (event.signal.map { " (\($0))" } ?? ""))
                    }
                }, log: log)
        } catch {
            await links.closeAll()
            throw StartError(description: "cannot set up the experiment's nodes: \(error)")
        }
        let engine = FaultEngine(supervisor: supervisor, links: links, runID: runID,
            effectDeadlineMs: env.faultEffectDeadlineMs, stopGraceMs: env.stopGraceMs, timerSpinUs: env.timerSpinUs,
            schedPriority: env.schedPriority, hooks: .publishing(to: hub))
        exits.withLock { $0 = { node, reason in engine.processEnded(node, reason: reason) } }
        let pump = Task { await supervisor.run() }
        return ExperimentCluster(supervisor: supervisor, links: links, engine: engine, config: config, pump: pump,
                                 runtimeDir: runtimeDir, scratchDir: scratchDir)
    }

    private init(supervisor: NodeSupervisor, links: LinkTable, engine: FaultEngine, config: ClusterConfig, pump: Task<Void, Never>,
                 runtimeDir: String, scratchDir: String?) {
        self.supervisor = supervisor; self.links = links; self.engine = engine; self.config = config
        self.nodes = config.nodes.map(\.id); self.pump = pump; self.runtimeDir = runtimeDir; self.scratchDir = scratchDir
    }

    /// Starts every node that is not running, the target first: an observer is ready once it has
    /// heard the target, so the last readiness is a fresh receipt of the target's heartbeat, the
    /// anchor the first trial's phase counts from. (Started the other way round, the anchor was up
    /// to an interval old, the fault landed a whole interval later, and a heartbeat arriving a
    /// millisecond late in between put the detection below T - I.)
    func startAll() async throws {
        for id in [target] + observers where !(await supervisor.isRunning(id)) { try await supervisor.start(id) }
    }

    /// The store a layout describes: Raft, its data under `dataDir`, or primary-backup.
    static func startStore(_ layout: StoreLayout, runID: String, dataDir: String, hub: EventHub, environment env: ExperimentEnvironment,
                           log: @escaping @Sendable (NodeID, String) -> Void) async throws -> ExperimentCluster {
        switch layout.mode {
        case .raft: try await startRaft(spec: layout, runID: runID, dataDir: dataDir, hub: hub, environment: env, log: log)
        case .primaryBackup: try await startPrimaryBackup(spec: layout, runID: runID, hub: hub, environment: env, log: log)
        }
    }

    /// Starts every node not running and waits until each is ready, at most 20 s; `feed` carries
    /// the run's events from before the start.
    func startAndAwaitReady(_ feed: EventFeed) async throws {
        try await startAll()
        var ready = Set<NodeID>()
        let all = await feed.wait(until: monotonicNow() + 20_000_000_000) { e in
            if e.kind == .nodeReady, let n = e.node { ready.insert(n) }
            return ready.count == nodes.count
        }
        guard all else { throw SweepRun.TrialError(description: "\(ready.count) of \(nodes.count) nodes ready after 20 s") }
    }

    /// Each group's leader (primary-backup: each pair's active node) as the nodes report it.
    func leaders(groups: Int) -> GroupLeaders {
        GroupLeaders(supervisor.snapshot.map { ($0.id.rawValue, $0.raft) }, groups: groups)
    }

    /// Group g has a leader (`preferred`, when given) that a request can rely on. Primary-backup:
    /// the backup must know it too: until its assignment arrives it still takes itself for the
    /// active node and refuses the stream, and a write made then waits on the backup's news, not
    /// on replication (CI saw one lost 100 ms after its acknowledgement so).
    func settled(_ g: Int, layout: StoreLayout, preferred: NodeID?) -> Bool {
        guard let leader = leaders(groups: layout.groups).byGroup[g]?.node else { return false }
        if let preferred, leader != preferred.rawValue { return false }
        guard layout.mode == .primaryBackup else { return true }
        let pair = layout.storageNodes[2 * g ..< 2 * g + 2].map(\.rawValue)
        guard let backup = pair.first(where: { $0 != leader }) else { return false }
        let view = supervisor.snapshot.first { $0.id.rawValue == backup }?.raft?.allGroups.first { $0.id == g }
        return view?.role == "backup" && view?.leader == leader
    }

    /// Stops the nodes (by their pids, SIGKILL after the grace), the proxies and the report pump,
    /// and removes what the cluster wrote.
    func shutdown(graceMs: Int) async {
        _ = engine.heal(node: nil)
        await supervisor.stopAll(graceMs: graceMs)
        supervisor.shutdownReports()
        _ = await pump.value
        await links.closeAll()
        for id in nodes { unlink("\(runtimeDir)/notify-\(id).sock") }
        rmdir(runtimeDir)
        if let scratchDir { removeTree(scratchDir) }
    }
}

/// Removes a directory and everything under it (a cluster's data: plain files and directories).
func removeTree(_ path: String) {
    for name in RunDirectory.names(in: path) {
        let child = path + "/" + name
        var st = stat()
        // lstat: a link is removed, never followed.
        if lstat(child, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { removeTree(child) } else { unlink(child) }
    }
    rmdir(path)
}

private let clusterCounter = Atomic<Int>(0)

extension FaultEngine.Hooks {
    /// A fault engine reporting to an event hub: its events, and what the hub's correlator must
    /// know to label detections (the daemon's cluster and each experiment cell wire it so).
    public static func publishing(to hub: EventHub) -> Self {
        .init(emit: { hub.publish($0) },
              applying: { r in hub.faultApplying(id: r.id, kind: r.spec.kind, node: r.spec.node, affected: r.affected,
                                                 atMonoNs: r.applied.monoNs) },
              applied: { r in hub.faultApplied(id: r.id, kind: r.spec.kind, node: r.spec.node, affected: r.affected,
                                               appliedMonoNs: r.applied.monoNs) },
              withdrawn: { id in hub.faultWithdrawn(id: id) },
              cleared: { r in hub.faultCleared(id: r.id, kind: r.spec.kind, node: r.spec.node) })
    }
}

/// Polls `condition` every `every` until it holds; `check` throws when the run is cancelled; a
/// `TrialError` naming `what` after `seconds`.
func pollUntil(_ what: String, seconds: Int, every: Duration, check: () throws -> Void, _ condition: () -> Bool) async throws {
    let deadline = monotonicNow() + Int64(seconds) * 1_000_000_000
    while !condition() {
        try check()
        if monotonicNow() > deadline { throw SweepRun.TrialError(description: "no \(what) after \(seconds) s") }
        try? await Task.sleep(for: every)
    }
}

/// Loopback ports nobody listens on now, picked at random below the ephemeral range (32768 up),
/// where a client socket's automatic port cannot take one between this check and the node's bind.
enum LoopbackPorts {
    static func free(count: Int) throws -> [Int] {
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        var ports: [Int] = []
        var attempts = 0
        while ports.count < count {
            attempts += 1
            guard attempts < 1000 else { throw ExperimentCluster.StartError(description: "no free loopback port in 20000-32000") }
            let port = Int.random(in: 20000..<32000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw ExperimentCluster.StartError(description: "socket: \(String(cString: strerror(errno)))") }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = UInt16(port).bigEndian
            let ok = withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            // Held until all are chosen, so the same port is not picked twice.
            fds.append(fd)
            if ok { ports.append(port) }
        }
        return ports
    }
}
