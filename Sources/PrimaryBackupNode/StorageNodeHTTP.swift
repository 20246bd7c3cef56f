import Core
import KVStore
import PrimaryBackup
import Raft
import RaftNode

/// The store's HTTP API over a primary-backup storage node: each pair is a "group" of the API, the
/// node answers its own pair's keys when it is active and redirects (307) every other key to its
/// pair's active node, as a Raft follower redirects to its leader.
struct StorageReplica: KVReplica {
    let node: StorageNode
    let replicaIDs: [NodeID: Int]
    /// This node's number among the storage nodes (its options were checked to name it among them).
    let id: ReplicaID
    var groupCount: Int { node.options.pairs.count }

    var statuses: [RaftStatus] {
        node.state.withLock { s in
            (0..<groupCount).map { p in
                var r = RaftStatus.initial
                r.group = p
                r.leader = replica(s.assignment?.routes[safe: p] ?? nil)
                if p == s.assignment?.pair {
                    r.role = s.isActive ? .leader : .follower
                    r.term = Term(s.assignment?.epoch ?? 0)
                    r.applied = LogIndex(s.appliedSeq)
                    r.commit = r.applied
                    r.lastIndex = r.applied
                    r.keys = s.machine.data.count
                }
                return r
            }
        }
    }

    private func replica(_ name: String?) -> ReplicaID? { name.flatMap(NodeID.init(validating:)).flatMap { replicaIDs[$0] } }

    /// A key of another pair: that pair's active node.
    private func elsewhere(_ group: Int) -> KVReply? {
        let (mine, active) = node.state.withLock { ($0.assignment?.pair, $0.assignment?.routes[safe: group] ?? nil) }
        return group == mine ? nil : .notLeader(leader: replica(active))
    }

    func read(group: Int, _ key: String, _ consistency: ReadConsistency) async -> KVReply {
        if let other = elsewhere(group) { return other }
        switch node.state.withLock({ $0.read(key, anyRole: consistency == .stale) }) {
        case .value(let v, let seq): return .value(v, index: LogIndex(seq))
        case .notActive(let active): return .notLeader(leader: replica(active))
        }
    }

    func write(group: Int, _ request: KVRequest) async -> KVReply {
        if let other = elsewhere(group) { return other }
        let outcome = node.state.withLock { $0.write(request, at: monotonicNow()) }
        switch outcome {
        case .applied(let result, let seq):
            node.kick()
            return .applied(result, index: LogIndex(seq))
        case .notActive(let active): return .notLeader(leader: replica(active))
        case .fenced: return .transferring
        }
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}

/// `GET /status` of a storage node.
struct StorageStatus: Encodable {
    var id: String
    var mode = "primary-backup"
    var pair: Int?
    /// primary (active), backup (following the active node), or unassigned (before the coordinator spoke).
    var role: String
    var active: String?
    var epoch: UInt64
    var fenced: Bool
    var standby: String?
    var applied_seq: UInt64
    var last_seq: UInt64
    var keys: Int
    var replication: Replication
    /// As raft mode's /status names them (this node's pair as its one group), for clients of both.
    var groups: [Group]
    struct Group: Encodable {
        var id: Int
        var role: String
        var applied_index: UInt64
    }
    struct Replication: Encodable {
        var path: String
        /// Writes acknowledged and not yet confirmed by the standby (what dies with this node).
        var lag_ops: UInt64
        var queued: Int
        var last_lag_ms: Double?
        var max_lag_ms_this_second: Double?
    }
}

extension StorageNode {
    /// Routes of a storage node: the pair's own endpoints, then the store's API.
    func handle(api: KVAPI) -> HTTPServer.Handler {
        { [self] method, path, query, body in
            switch (method, path) {
            case ("GET", "/status"): return status()
            case ("POST", "/pb/assign"):
                guard case .success(let a) = JSON.decode(PBWire.Assignment.self, body) else {
                    return .error(400, "POST /pb/assign takes the coordinator's assignment", "bad_body")
                }
                return .json(200, take(a))
            case ("POST", "/pb/replicate"):
                switch JSON.decode(PBWire.Replicate.self, body) {
                case .failure(let why): return .error(400, "POST /pb/replicate: \(why)", "bad_body")
                case .success(let r):
                    let ops = r.ops.compactMap { $0.decoded() }
                    guard ops.count == r.ops.count else { return .error(400, "POST /pb/replicate: an entry is not hex", "bad_body") }
                    switch state.withLock({ $0.receive(ops) }) {
                    case .success(let reply): return .json(200, reply)
                    case .failure(.active):
                        return .error(409, "\(options.id) is the pair's active node: it takes no writes from \(r.from)", "active")
                    case .failure(.syncing):
                        return .error(409, "\(options.id) is copying the pair in full: the stream resumes after the copy", "syncing")
                    }
                }
            case ("GET", "/pb/snapshot"):
                let requester = KVAPI.queryParameters(query)["for"] ?? ""
                guard let snapshot = state.withLock({ $0.snapshotForSync(for: requester) }) else {
                    return .error(409, "\(options.id) is not the active node with standby '\(requester)': a full copy goes to the standby "
                                  + "the coordinator names (GET /pb/snapshot?for=ID)", "not_active")
                }
                kick()
                return .json(200, snapshot)
            case ("GET", "/pb/applied"): return .json(200, state.withLock { $0.assignReply })
            default:
                // The pair's own routes take large batches; the store's API keeps its own limit.
                if body.count > api.limits.bodyBytes {
                    return .error(413, "the body exceeds the limit of \(api.limits.bodyBytes) bytes", "body_too_large")
                }
                return await api.handle(method: method, path: path, query: query, body: body)
            }
        }
    }

    private func status() -> APIReply {
        let window = lag.withLock { $0 }
        return state.withLock { s in
            let a = s.assignment
            return .json(200, StorageStatus(
                id: options.id.rawValue, pair: a?.pair, role: a == nil ? "unassigned" : s.isActive ? "primary" : "backup",
                active: a?.active, epoch: a?.epoch ?? 0, fenced: a?.fenced == true && s.isActive, standby: s.isActive ? a?.standby : nil,
                applied_seq: s.appliedSeq, last_seq: s.outgoing?.lastSeq ?? s.appliedSeq, keys: s.machine.data.count,
                replication: .init(path: options.replicationPath, lag_ops: s.lagOps, queued: s.outgoing?.queue.count ?? 0,
                                   last_lag_ms: window.count > 0 ? Double(window.lastNs) / 1e6 : nil,
                                   max_lag_ms_this_second: window.count > 0 ? Double(window.maxNs) / 1e6 : nil),
                groups: a.map { [.init(id: $0.pair, role: s.isActive ? "primary" : "backup", applied_index: s.appliedSeq)] } ?? []))
        }
    }
}
