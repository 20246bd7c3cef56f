import Core
import Raft

/// Spreads leadership over the nodes when a node runs several groups: group g prefers the voter
/// at g mod n (voters sorted), so 3 groups on 3 nodes lead one each. A leader hands its group to
/// the preferred voter once that voter has been caught up and answering for `settleNs` (so a node
/// that just came back, or flaps, is not handed a group at once), at most once per `retryNs`.
/// Leadership only ever moves toward the group's fixed preference, never away from it, so two
/// nodes cannot hand a group back and forth. Pure: times come in, a transfer target comes out.
struct LeaderBalancer: Sendable {
    var settleNs: Int64
    var retryNs: Int64
    private var caughtUpSince: MonotonicNanos?
    private var lastAttempt: MonotonicNanos?

    init(settleNs: Int64, retryNs: Int64) { self.settleNs = settleNs; self.retryNs = retryNs }

    /// Group `group`'s preferred leader among `voters`.
    static func preferred(group: Int, voters: [ReplicaID]) -> ReplicaID {
        let sorted = voters.sorted()
        return sorted[group % sorted.count]
    }

    /// Whom to hand the group to now, if anyone.
    mutating func decide(now: MonotonicNanos, leading: Bool, me: ReplicaID, preferred: ReplicaID, preferredCaughtUp: Bool,
                         transferring: Bool) -> ReplicaID? {
        guard leading, preferred != me, preferredCaughtUp else {
            caughtUpSince = nil
            return nil
        }
        let since = caughtUpSince ?? now
        caughtUpSince = since
        guard !transferring, now - since >= settleNs else { return nil }
        if let last = lastAttempt, now - last < retryNs { return nil }
        lastAttempt = now
        return preferred
    }
}
