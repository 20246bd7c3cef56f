import KVStore
import Raft

/// What the HTTP API needs of the replicas behind it: who they are, their groups' status, and a
/// read or a write answered by a group. `RaftLoop` is the real one; `KVAPI`'s tests give it a fake
/// in a few lines, so the API's routes, limits, redirects and errors are tested without a cluster.
package protocol KVReplica: Sendable {
    var id: ReplicaID { get }
    /// Groups 0..<groupCount; a key's is `KeyGroups.group(of:groups:)`.
    var groupCount: Int { get }
    /// Index = group.
    var statuses: [RaftStatus] { get }
    func read(group: Int, _ key: String, _ consistency: ReadConsistency) async -> KVReply
    func write(group: Int, _ request: KVRequest) async -> KVReply
}

extension KVReplica {
    /// Group 0's: what /status says at its top level.
    var currentStatus: RaftStatus { statuses[0] }
}

extension RaftLoop: KVReplica {
    func read(group: Int, _ key: String, _ consistency: ReadConsistency) async -> KVReply {
        await request { .read(group: group, key: key, consistency, $0) }
    }
    func write(group: Int, _ request: KVRequest) async -> KVReply { await self.request { .write(group: group, request, $0) } }
}
