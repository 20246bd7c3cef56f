/// What can be done to a node. Signal faults act on the process; network faults on its link proxies.
public enum FaultKind: String, Sendable, Codable, CaseIterable {
    case kill, stop, cont, term, delay, partition, restart, heal

    /// Faults after which the node is down (crashed or paused) until something brings it back.
    public var takesNodeDown: Bool { self == .kill || self == .stop || self == .term }
    public var isNetwork: Bool { self == .delay || self == .partition }
}

/// One direction of a node's links (each node sends its messages on its own outbound connection):
/// `out`, what it sends; `in`, what the others send it. A network fault on one direction only is a
/// one-way partition or delay.
public enum LinkDirection: String, Sendable, Codable, CaseIterable { case out, `in` }

/// A request to inject a fault, validated: `FaultSpec.validate` is the only way to build one from outside.
public struct FaultSpec: Sendable, Codable, Equatable {
    public var kind: FaultKind
    public var node: NodeID
    public var afterMs: Int
    public var forMs: Int?
    public var delayMs: Int?
    public var jitterMs: Int?
    public var peers: [NodeID]?
    /// Set when the target was given as `leader`: the term in which `node` led when it was resolved.
    public var leaderTerm: UInt64?
    /// "leader --key": the key's Raft group, whose leader `node` was.
    public var leaderGroup: Int?
    /// Network faults: one direction of the node's links only (nil: both).
    public var direction: LinkDirection?

    public init(kind: FaultKind, node: NodeID, afterMs: Int = 0, forMs: Int? = nil,
                delayMs: Int? = nil, jitterMs: Int? = nil, peers: [NodeID]? = nil, leaderTerm: UInt64? = nil,
                direction: LinkDirection? = nil) {
        self.kind = kind; self.node = node; self.afterMs = afterMs; self.forMs = forMs
        self.delayMs = delayMs; self.jitterMs = jitterMs; self.peers = peers; self.leaderTerm = leaderTerm
        self.direction = direction
    }

    /// Limits that keep a typo from scheduling something for a week.
    public static let maxAfterMs = 3_600_000
    public static let maxDelayMs = 60_000

    /// Checks the combination of parameters; returns a sentence saying what is wrong, or nil.
    public func problem(knownNodes: Set<NodeID>) -> String? {
        if !knownNodes.contains(node) { return "no node '\(node)'" }
        if afterMs < 0 || afterMs > Self.maxAfterMs { return "after_ms must be 0...\(Self.maxAfterMs)" }
        if let f = forMs, f <= 0 || f > Self.maxAfterMs { return "for_ms must be 1...\(Self.maxAfterMs)" }
        if forMs != nil && ![.stop, .delay, .partition].contains(kind) {
            return "for_ms only applies to stop, delay and partition"
        }
        if kind == .restart && afterMs > 0 { return "restart cannot be scheduled (after_ms must be 0)" }
        if direction != nil && !kind.isNetwork { return "direction only applies to partition and delay" }
        switch kind {
        case .delay:
            guard let d = delayMs else { return "delay needs delay_ms (e.g. kvctl inject delay B 150ms)" }
            if d <= 0 || d > Self.maxDelayMs { return "delay_ms must be 1...\(Self.maxDelayMs)" }
            if let j = jitterMs, j < 0 || j > d { return "jitter_ms must be 0...delay_ms" }
        case .partition:
            if let p = peers {
                if p.isEmpty { return "peers must name at least one node" }
                if let unknown = p.first(where: { !knownNodes.contains($0) }) { return "no node '\(unknown)' in peers" }
                if p.contains(node) { return "a node cannot be partitioned from itself" }
            }
        default:
            if delayMs != nil || jitterMs != nil { return "delay_ms and jitter_ms only apply to delay" }
            if peers != nil { return "peers only applies to partition" }
        }
        return nil
    }
}
