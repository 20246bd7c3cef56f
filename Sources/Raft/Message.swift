/// A message between replicas. `term` is the sender's term, except for a pre-vote request and its
/// answer, which carry the term the sender would campaign in (it does not raise its own).
public struct Message: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        case preVote(lastIndex: LogIndex, lastTerm: Term)
        case preVoteResponse(granted: Bool)
        /// `transfer`: sent on a leader's TimeoutNow, so voters set their leader lease aside.
        case vote(lastIndex: LogIndex, lastTerm: Term, transfer: Bool)
        case voteResponse(granted: Bool)
        /// `round`: the leader's latest ReadIndex round; the answer echoes it, confirming that the
        /// follower still took this leader for leader when the round began.
        case append(prevIndex: LogIndex, prevTerm: Term, entries: [Entry], commit: LogIndex, round: UInt64)
        /// `conflictIndex`/`conflictTerm`: on a reject, where the follower's log parts from the
        /// leader's, so that the leader skips a whole term per round trip (Raft §5.3, the optimization).
        case appendResponse(success: Bool, matchIndex: LogIndex, conflictIndex: LogIndex, conflictTerm: Term?, round: UInt64)
        /// InstallSnapshot (Raft §7): for a follower that needs entries the leader has compacted.
        /// Answered with an appendResponse.
        case snapshot(Snapshot)
        /// Leadership transfer (Raft §3.10): campaign now, without pre-vote or waiting.
        case timeoutNow
    }

    public var from: ReplicaID
    public var to: ReplicaID
    public var term: Term
    public var kind: Kind

    public init(from: ReplicaID, to: ReplicaID, term: Term, kind: Kind) {
        self.from = from; self.to = to; self.term = term; self.kind = kind
    }

    public var description: String {
        let head = "\(from)->\(to) "
        switch kind {
        case .preVote(let i, let t): return head + "PreVote term=\(term) last=\(t)/\(i)"
        case .preVoteResponse(let g): return head + "PreVoteResp term=\(term) \(g ? "granted" : "rejected")"
        case .vote(let i, let t, let transfer): return head + "Vote term=\(term) last=\(t)/\(i)" + (transfer ? " transfer" : "")
        case .voteResponse(let g): return head + "VoteResp term=\(term) \(g ? "granted" : "rejected")"
        case .append(let pi, let pt, let es, let c, let round):
            return head + "App term=\(term) prev=\(pt)/\(pi) commit=\(c)" + (round > 0 ? " round=\(round)" : "")
                + (es.isEmpty ? "" : " entries=[\(es.map(\.description).joined(separator: ", "))]")
        case .appendResponse(let ok, let m, let ci, let ct, let round):
            return head + "AppResp term=\(term) " + (ok ? "match=\(m)" : "reject conflict=\(ct.map(String.init(describing:)) ?? "-")/\(ci)")
                + (round > 0 ? " round=\(round)" : "")
        case .snapshot(let s): return head + "Snapshot term=\(term) \(s)"
        case .timeoutNow: return head + "TimeoutNow term=\(term)"
        }
    }
}
