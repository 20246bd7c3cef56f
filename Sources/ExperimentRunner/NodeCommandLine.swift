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
}
