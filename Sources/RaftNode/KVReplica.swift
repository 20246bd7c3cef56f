import KVStore
import Raft

/// What the HTTP API needs of the replica behind it: who it is, its status, and a read or a write
/// answered. `RaftLoop` is the real one; `KVAPI`'s tests give it a fake in a few lines, so the
/// API's routes, limits, redirects and errors are tested without a cluster.
protocol KVReplica: Sendable {
    var id: ReplicaID { get }
    var currentStatus: RaftStatus { get }
    func read(_ key: String, _ consistency: ReadConsistency) async -> KVReply
    func write(_ request: KVRequest) async -> KVReply
}

extension RaftLoop: KVReplica {
    var currentStatus: RaftStatus { status.withLock { $0 } }
    func read(_ key: String, _ consistency: ReadConsistency) async -> KVReply { await request { .read(key: key, consistency, $0) } }
    func write(_ request: KVRequest) async -> KVReply { await self.request { .write(request, $0) } }
}
