/// Who leads each Raft group, from the nodes' latest reports: for each group, the node that
/// reports itself its leader in the highest term. What `kvctl groups`, `kvctl leader --key` and
/// `inject ... leader --key` resolve with.
public struct GroupLeaders: Sendable, Equatable {
    public struct Leader: Sendable, Equatable {
        public var node: String
        public var view: RaftView.Group
    }
    /// How many groups the nodes report (1 before any report, or for a one-group store).
    public var count: Int
    public var byGroup: [Int: Leader]

    /// `groups`: the configured count, when known (the supervisor's); else the largest any node reports.
    public init(_ views: [(node: String, view: RaftView?)], groups: Int? = nil) {
        var best: [Int: Leader] = [:]
        var count = groups ?? 1
        for (node, view) in views {
            guard let view else { continue }
            if groups == nil { count = max(count, view.allGroups.count) }
            // Primary-backup reports its pairs as groups: the active node of a pair is its "primary".
            for g in view.allGroups where (g.role == "leader" || g.role == "primary") && g.term >= (best[g.id]?.view.term ?? 0) {
                best[g.id] = Leader(node: node, view: g)
            }
        }
        self.count = count
        byGroup = best
    }

    /// The group that holds `key`, and its leader if one is known.
    public func forKey(_ key: String) -> (group: Int, leader: Leader?) {
        let g = KeyGroups.group(of: key, groups: count)
        return (g, byGroup[g])
    }

    /// How many groups each node leads.
    public var ledBy: [String: Int] { byGroup.values.reduce(into: [:]) { $0[$1.node, default: 0] += 1 } }
}
