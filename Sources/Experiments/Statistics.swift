/// Order statistics for the reports: no distribution assumed.
public enum OrderStatistics {
    /// The p-th percentile (nearest rank), p in 0...100.
    public static func percentile(_ xs: [Double], _ p: Double) -> Double? {
        guard !xs.isEmpty else { return nil }
        let sorted = xs.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(sorted.count - 1, max(0, rank - 1))]
    }

    /// The median and its 95% confidence interval from the binomial order statistics (normal
    /// approximation), as the reports compare each cell's median with theory.
    public static func medianCI(_ xs: [Double]) -> (median: Double, low: Double, high: Double)? {
        guard !xs.isEmpty else { return nil }
        let s = xs.sorted(), n = Double(s.count)
        let half = 1.96 * n.squareRoot() / 2
        let lo = max(0, Int((n / 2 - half).rounded(.down)))
        let hi = min(s.count - 1, Int((n / 2 + half).rounded(.up)))
        return (percentile(s, 50)!, s[lo], s[hi])
    }
}

/// A fixed-timeout detector's latency in theory: a kill at a uniform phase of the interval I is
/// noticed between T - I and T after it (the last beat came 0 to I before the kill), uniformly,
/// so the median is T - I/2. A one-way delay d shifts all of it by d (the last beat arrives d
/// late); a jitter j widens the bounds by j each way.
public struct DetectionTheory: Sendable, Equatable {
    public var intervalMs: Double
    public var timeoutMs: Double
    public var delayMs: Double
    public var jitterMs: Double
    public init(intervalMs: Int, timeoutMs: Int, delayMs: Int = 0, jitterMs: Int = 0) {
        self.intervalMs = Double(intervalMs); self.timeoutMs = Double(timeoutMs)
        self.delayMs = Double(delayMs); self.jitterMs = Double(jitterMs)
    }
    public var lowMs: Double { timeoutMs - intervalMs + delayMs - jitterMs }
    public var highMs: Double { timeoutMs + delayMs + jitterMs }
    public var medianMs: Double { timeoutMs - intervalMs / 2 + delayMs }
    /// Whether a measured latency fits, with `slackMs` for wake-up and scheduling.
    public func admits(_ ms: Double, slackMs: Double) -> Bool { ms >= lowMs - slackMs && ms <= highMs + slackMs }
}
