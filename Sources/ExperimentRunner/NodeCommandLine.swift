import Core
import Faults
import Supervision

/// The kvnode command line of a supervised node, from the running config: identity and heartbeat
/// timing for every mode, and in raft mode the store's flags. Peer traffic goes to the link
/// proxies (so faults can hold it); redirects name the peers' real HTTP addresses.
public struct NodeCommandLine: Sendable {
    public let config: ClusterConfig
    let links: LinkTable
    let stateDir: String
    let runID: String

    public init(config: ClusterConfig, links: LinkTable, stateDir: String, runID: String) {
        self.config = config; self.links = links; self.stateDir = stateDir; self.runID = runID
    }

    public func spec(for node: NodeConfig, executable: String, environment: [String]) -> ChildSpec {
        ChildSpec(id: node.id, executable: executable, arguments: arguments(for: node), environment: environment)
    }

    public func arguments(for node: NodeConfig) -> [String] {
        let peers = links.peerAddresses(for: node.id, among: config.nodes)
        let common = config.commonNodeArguments(for: node, runID: runID)
        if config.mode == .primaryBackup { return common + primaryBackupArguments(for: node) }
        guard config.mode == .raft else { return common + ["--mode", "heartbeat", "--peers", peers] }
        let others = config.nodes.filter { $0.id != node.id }
        return common + [
            "--mode", "raft", "--peer-port", String(node.effectivePeerPort),
            "--peers", others.map { "\($0.id)=http://\($0.host):\($0.port)" }.joined(separator: ","),
            "--raft-peers", peers,
            "--data-dir", node.dataDir ?? stateDir + "/nodes/" + node.id.rawValue,
            // Nodes of another supervisor's cluster (same ids, other run) cannot join this one.
            "--cluster-token", "kvsupervisor-" + runID,
        ] + config.raft.arguments
    }

    /// Primary-backup: the layout, the timing, and where this node's own requests go: through the
    /// link proxy to each node (so that partitions and delays hold them); clients are redirected
    /// to the nodes' real addresses.
    func primaryBackupArguments(for node: NodeConfig) -> [String] {
        let pb = config.primaryBackup
        let storage = config.nodes.filter { $0.role != .coordinator }
        let proxies = links.peerAddresses(for: node.id, among: config.nodes)
        var args = [
            "--pairs", config.pairs.map { "\($0.primary):\($0.backup)" }.joined(separator: ","),
            "--nodes", storage.map { "\($0.id)=http://\($0.host):\($0.port)" }.joined(separator: ","),
            "--links", proxies,
            "--pb-check-interval-ms", String(pb.checkIntervalMs), "--pb-fail-after-ms", String(pb.failAfterMs),
            "--replication-path", pb.replicationPath.rawValue,
        ]
        if node.role == .coordinator {
            args = ["--mode", "coordinator"] + args
        } else if let coordinator = config.coordinator {
            let port = links.port(from: node.id, to: coordinator.id) ?? coordinator.port
            args = ["--mode", "primary-backup", "--coordinator", "http://127.0.0.1:\(port)"] + args
        }
        return args
    }
}
