import Core
import NIOPosix
import NodeRuntime
import Raft
import RaftNode
import Systemd

/// kvnode's two primary-backup runtimes: a storage node (`--mode primary-backup`) and the
/// coordinator (`--mode coordinator`, the original's name manager).
public enum PrimaryBackupMain {
    public static func runStorageNode(_ o: PBOptions) -> Never {
        let process = processOptions(o, role: "storage node")
        if let problem = o.problem(coordinator: false) { NodeProcess.fail(process, problem) }
        let output = NodeProcess.begin(process)
        let node = StorageNode(options: o, output: output)
        let ids = o.replicaIDs
        var members: [ReplicaID: KVAPI.Member] = [:]
        for (id, number) in ids { members[number] = .init(id: id.rawValue, httpURL: o.nodes[id]?.url ?? "") }
        guard let me = ids[o.id] else { NodeProcess.fail(process, "--nodes gives no address for this node (\(o.id))") }
        let api = KVAPI(selfID: o.id.rawValue, members: members, replica: StorageReplica(node: node, replicaIDs: ids, id: me),
                        defaultConsistency: .linearizable, syncMode: "none")
        do {
            try HTTPServer.start(bodyLimit: StorageNode.bodyLimit, host: o.host, port: o.port,
                                 group: MultiThreadedEventLoopGroup(numberOfThreads: 1),
                                 report: { writeStderr("kvnode \(o.id): \($0)") }, handler: node.handle(api: api))
        } catch {
            NodeProcess.fail(process, "cannot listen on \(o.host):\(o.port): \(error)")
        }
        Task { await node.runReplication() }
        node.startBeating()
        let pair = o.pairs.firstIndex { $0.primary == o.id || $0.backup == o.id }!
        NodeProcess.serve(status: "primary-backup storage node of pair \(pair) (\(o.pairs[pair].primary):\(o.pairs[pair].backup)), "
                          + "HTTP on \(o.host):\(o.port), coordinator \(o.coordinator.url), replication \(o.replicationPath)")
    }

    public static func runCoordinator(_ o: PBOptions) -> Never {
        let process = processOptions(o, role: "coordinator")
        if let problem = o.problem(coordinator: true) { NodeProcess.fail(process, problem) }
        let output = NodeProcess.begin(process)
        let coordinator = CoordinatorNode(options: o, output: output)
        do {
            try HTTPServer.start(bodyLimit: 64 << 20, host: o.host, port: o.port, group: MultiThreadedEventLoopGroup(numberOfThreads: 1),
                                 report: { writeStderr("kvnode \(o.id): \($0)") }, handler: coordinator.handle)
        } catch {
            NodeProcess.fail(process, "cannot listen on \(o.host):\(o.port): \(error)")
        }
        coordinator.startChecking()
        NodeProcess.serve(status: "primary-backup coordinator of \(o.pairs.count) pair(s) "
                          + o.pairs.map { "\($0.primary):\($0.backup)" }.joined(separator: ",")
                          + ", HTTP on \(o.host):\(o.port), check every \(o.checkIntervalMs) ms, dead after \(o.failAfterMs) ms")
    }

    /// The process part's options (its log, its events, its start line).
    private static func processOptions(_ o: PBOptions, role: String) -> NodeOptions {
        var n = NodeOptions(id: o.id, host: o.host, port: o.port, role: .peer, peers: [], hbIntervalMs: o.checkIntervalMs,
                            hbTimeoutMs: o.failAfterMs, logPath: o.logPath, runID: o.runID, eventsViaNotify: o.reportViaNotify,
                            timerSpinUs: 200)
        n.startDescription = "primary-backup \(role) on \(o.host):\(o.port)"
        return n
    }
}
