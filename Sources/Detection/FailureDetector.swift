import Core

/// Which detector a node runs, chosen at start: one interface over the fixed-timeout and the
/// phi-accrual detector, so the node's timing thread arms its timer the same way for both.
public enum FailureDetector: Sendable {
    case fixed(HeartbeatDetector)
    case phi(PhiAccrualDetector)

    public enum Kind: String, Sendable, CaseIterable { case fixed, phi }

    /// The detector for a heartbeat interval I and timeout T. phi takes T - I as Akka's acceptable
    /// heartbeat pause and I/10 as its minimum deviation (Akka's defaults keep that ratio: 1 s
    /// beats, 100 ms), so a phi cell at (I, T) declares a silent peer dead a little after T and
    /// stretches that when the beats arrive irregularly.
    public init(kind: Kind, peers: [NodeID], intervalMs: Int, timeoutMs: Int, phiThreshold: Double = 8) {
        switch kind {
        case .fixed:
            self = .fixed(HeartbeatDetector(peers: peers, timeoutNs: Int64(timeoutMs) * 1_000_000))
        case .phi:
            let interval = Int64(intervalMs) * 1_000_000
            self = .phi(PhiAccrualDetector(peers: peers, settings: .init(
                threshold: phiThreshold, minStdDevNs: max(100_000, interval / 10),
                acceptablePauseNs: Int64(max(0, timeoutMs - intervalMs)) * 1_000_000, firstIntervalEstimateNs: interval)))
        }
    }

    public mutating func watch(_ peer: NodeID) {
        switch self {
        case .fixed(var d): d.watch(peer); self = .fixed(d)
        case .phi(var d): d.watch(peer); self = .phi(d)
        }
    }

    public mutating func heartbeat(from peer: NodeID, at now: MonotonicNanos) -> Detection? {
        switch self {
        case .fixed(var d): defer { self = .fixed(d) }; return d.heartbeat(from: peer, at: now)
        case .phi(var d): defer { self = .phi(d) }; return d.heartbeat(from: peer, at: now)
        }
    }

    public func deadline(of peer: NodeID) -> MonotonicNanos? {
        switch self {
        case .fixed(let d): return d.deadline(of: peer)
        case .phi(let d): return d.deadline(of: peer)
        }
    }

    public var earliestDeadline: MonotonicNanos? {
        switch self {
        case .fixed(let d): return d.earliestDeadline
        case .phi(let d): return d.earliestDeadline
        }
    }

    public mutating func expireDue(at now: MonotonicNanos) -> [Detection] {
        switch self {
        case .fixed(var d): defer { self = .fixed(d) }; return d.expireDue(at: now)
        case .phi(var d): defer { self = .phi(d) }; return d.expireDue(at: now)
        }
    }
}
