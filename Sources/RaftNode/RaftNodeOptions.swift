import Core
import NodeRuntime
import RaftStorage

/// Everything raft mode needs beyond the heartbeat node's options.
public struct RaftNodeOptions: Sendable {
    public struct Member: Sendable, Equatable {
        public var id: NodeID
        /// Where clients reach its HTTP API (for redirects and /status).
        public var httpURL: String
        /// Where this node sends it Raft traffic (its peer port, or a link proxy in front of it).
        public var peerHost: String
        public var peerPort: Int
        public init(id: NodeID, httpURL: String, peerHost: String, peerPort: Int) {
            self.id = id; self.httpURL = httpURL; self.peerHost = peerHost; self.peerPort = peerPort
        }
    }

    public var id: NodeID
    public var host: String
    public var httpPort: Int
    public var peerPort: Int
    public var peers: [Member]
    public var dataDir: String
    /// Timing, sync and read policy: the same value the config file and the supervisor use.
    public var settings: RaftSettings
    /// Raft groups on the same peers (each key in one: `KeyGroups`); every member runs the same number.
    public var groups: Int { settings.groups }
    public var runID: String
    /// Report role, term, leader and indexes on NOTIFY_SOCKET (`KV_RAFT=`), as kvsupervisor asks.
    public var reportViaNotify = false
    /// How clients reach this node's HTTP API (its own /status leader_addr); default http://host:port,
    /// or http://127.0.0.1:port when listening on every address.
    public var advertiseURL: String?
    /// Names the cluster in each peer connection's hello, with the members: a connection from a
    /// cluster of other members, or with another token, is refused.
    public var clusterToken = "kvnode"

    /// What the hello says: the token and every member's id, in order.
    var clusterID: String {
        clusterToken + "/" + ([id] + peers.map(\.id)).map(\.rawValue).sorted().joined(separator: ",") + (groups > 1 ? "/groups=\(groups)" : "")
    }

    public init(id: NodeID, host: String, httpPort: Int, peerPort: Int, peers: [Member], dataDir: String,
                settings: RaftSettings = RaftSettings(), runID: String = "manual") {
        self.id = id; self.host = host; self.httpPort = httpPort; self.peerPort = peerPort; self.peers = peers
        self.dataDir = dataDir; self.settings = settings; self.runID = runID
    }

    /// Each member's replica id: its place among all ids in sorted order, from 1. Every member
    /// computes the same mapping from the same membership.
    var replicaIDs: [NodeID: Int] {
        let all = ([id] + peers.map(\.id)).map(\.rawValue).sorted()
        return Dictionary(uniqueKeysWithValues: all.enumerated().map { (NodeID(validating: $0.element)!, $0.offset + 1) })
    }

    /// A problem with the options, said as what to change; nil when they make sense.
    public func problem() -> String? {
        if peers.contains(where: { $0.id == id }) { return "--peers lists this node's own id \(id)" }
        if Set(peers.map(\.id)).count != peers.count { return "--peers lists an id twice" }
        if let p = settings.problem(naming: RaftSettings.flag) { return "\(RaftSettings.flag(p.field)) \(p.message)" }
        if settings.requestTimeoutMs < 1 { return "--request-timeout-ms must be at least 1" }
        return nil
    }
}
