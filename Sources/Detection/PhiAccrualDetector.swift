#if canImport(Glibc)
import Glibc
#endif
import Core

/// Phi-accrual failure detector (Hayashibara et al. 2004), as Akka computes it: the suspicion
/// level of a peer is phi = -log10(P(a heartbeat comes later than now)), with the inter-arrival
/// times of its last `windowSize` heartbeats taken as normal (the logistic approximation of the
/// CDF). A peer is declared dead when phi reaches `threshold`.
///
/// Like `HeartbeatDetector`, a pure value with the same interface: the caller arms one timer per
/// peer at `deadline(of:)`, the moment phi will reach the threshold if nothing more is heard, so
/// detection lands at that moment rather than at the next periodic check.
public struct PhiAccrualDetector: Sendable {
    public struct Settings: Sendable, Equatable {
        public var threshold: Double
        /// Inter-arrival samples kept per peer.
        public var windowSize: Int
        /// A floor on the standard deviation, so perfectly regular beats do not make phi explode.
        public var minStdDevNs: Int64
        /// Added to the mean: pauses that are normal (GC, scheduling) and must not count.
        public var acceptablePauseNs: Int64
        /// The interval assumed before a peer's second heartbeat (the configured heartbeat interval).
        public var firstIntervalEstimateNs: Int64

        public init(threshold: Double = 8, windowSize: Int = 1000, minStdDevNs: Int64 = 10_000_000,
                    acceptablePauseNs: Int64 = 0, firstIntervalEstimateNs: Int64) {
            self.threshold = threshold; self.windowSize = windowSize; self.minStdDevNs = minStdDevNs
            self.acceptablePauseNs = acceptablePauseNs; self.firstIntervalEstimateNs = firstIntervalEstimateNs
        }
    }

    private struct PeerState {
        var lastHeard: MonotonicNanos?
        var isDead = false
        var intervals: [Int64] = []
        var next = 0  // ring position once the window is full
        var sum: Double = 0
        var sumSquares: Double = 0
    }

    public let settings: Settings
    private var peers: [NodeID: PeerState]

    public init(peers: [NodeID], settings: Settings) {
        precondition(settings.threshold > 0 && settings.windowSize > 0 && settings.firstIntervalEstimateNs > 0)
        self.settings = settings
        self.peers = Dictionary(uniqueKeysWithValues: peers.map { ($0, PeerState()) })
    }

    public mutating func watch(_ peer: NodeID) {
        if peers[peer] == nil { peers[peer] = PeerState() }
    }

    /// Records a heartbeat. Returns `.alive` if the peer had been declared dead (recovery).
    public mutating func heartbeat(from peer: NodeID, at now: MonotonicNanos) -> Detection? {
        guard var s = peers[peer] else { return nil }
        let previous = s.lastHeard
        let wasDead = s.isDead
        // The silence that ended in a recovery was an outage, not an inter-arrival time.
        if let previous, !wasDead { Self.add(now - previous, to: &s, window: settings.windowSize) }
        s.lastHeard = now
        s.isDead = false
        peers[peer] = s
        if wasDead, let previous { return Detection(verdict: .alive, peer: peer, at: now, lastHeard: previous) }
        return nil
    }

    private static func add(_ interval: Int64, to s: inout PeerState, window: Int) {
        let x = Double(interval)
        if s.intervals.count < window {
            s.intervals.append(interval)
        } else {
            let old = Double(s.intervals[s.next])
            s.sum -= old
            s.sumSquares -= old * old
            s.intervals[s.next] = interval
            s.next = (s.next + 1) % window
        }
        s.sum += x
        s.sumSquares += x * x
    }

    /// Mean and standard deviation (floored) of the peer's inter-arrival times, in ns.
    private func distribution(_ s: PeerState) -> (mean: Double, std: Double) {
        let n = Double(s.intervals.count)
        let mean: Double, variance: Double
        if n == 0 {
            mean = Double(settings.firstIntervalEstimateNs)
            variance = (mean / 4) * (mean / 4)
        } else {
            mean = s.sum / n
            variance = max(0, s.sumSquares / n - mean * mean)
        }
        return (mean + Double(settings.acceptablePauseNs), max(variance.squareRoot(), Double(settings.minStdDevNs)))
    }

    /// phi for a silence of `elapsed` ns given the distribution (Akka's formula).
    static func phi(elapsed: Double, mean: Double, std: Double) -> Double {
        let y = (elapsed - mean) / std
        let e = exp(-y * (1.5976 + 0.070566 * y * y))
        let p = elapsed > mean ? e / (1 + e) : 1 - 1 / (1 + e)
        return -log10(max(p, Double.leastNonzeroMagnitude))
    }

    /// The suspicion level of `peer` now; nil if it was never heard.
    public func phi(of peer: NodeID, at now: MonotonicNanos) -> Double? {
        guard let s = peers[peer], let last = s.lastHeard else { return nil }
        let d = distribution(s)
        return Self.phi(elapsed: Double(now - last), mean: d.mean, std: d.std)
    }

    /// When phi will reach the threshold if nothing more is heard; nil if unwatched or already dead.
    public func deadline(of peer: NodeID) -> MonotonicNanos? {
        guard let s = peers[peer], !s.isDead, let last = s.lastHeard else { return nil }
        let d = distribution(s)
        // phi grows with the silence: the first nanosecond at which it reaches the threshold.
        var low = 0.0, high = d.mean + 200 * d.std
        for _ in 0..<80 where high - low > 1 {
            let mid = (low + high) / 2
            if Self.phi(elapsed: mid, mean: d.mean, std: d.std) >= settings.threshold { high = mid } else { low = mid }
        }
        return last + Int64(high.rounded(.up))
    }

    public mutating func expire(_ peer: NodeID, at now: MonotonicNanos) -> Detection? {
        guard let deadline = deadline(of: peer), now >= deadline, let last = peers[peer]?.lastHeard else { return nil }
        peers[peer]?.isDead = true
        return Detection(verdict: .dead, peer: peer, at: now, lastHeard: last)
    }

    public var earliestDeadline: MonotonicNanos? { peers.keys.compactMap { deadline(of: $0) }.min() }

    public mutating func expireDue(at now: MonotonicNanos) -> [Detection] {
        peers.keys.sorted().compactMap { expire($0, at: now) }
    }

    public func isDead(_ peer: NodeID) -> Bool { peers[peer]?.isDead ?? false }
}
