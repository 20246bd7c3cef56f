#if canImport(Glibc)
import Glibc
#endif

/// Order statistics for the reports: no distribution assumed.
public enum OrderStatistics {
    /// The p-th percentile (nearest rank), p in 0...100.
    public static func percentile(_ xs: [Double], _ p: Double) -> Double? {
        guard !xs.isEmpty else { return nil }
        let sorted = xs.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(sorted.count - 1, max(0, rank - 1))]
    }

    /// The median and a distribution-free interval for it: order statistics x(k) and x(n+1-k),
    /// which cover the true median with probability P(k <= B <= n-k), B ~ Binomial(n, 1/2), exactly.
    /// k is the largest with coverage >= 95%; below 6 samples none reaches 95% (n = 5: 93.75%), so
    /// the interval is [min, max] with its true, lower coverage, which the reports print beside it.
    public static func medianCI(_ xs: [Double]) -> MedianInterval? {
        guard !xs.isEmpty else { return nil }
        let s = xs.sorted(), n = s.count
        // coverage(k) = 1 - 2 P(B <= k - 1) by symmetry: one pass up the lower tail finds the
        // largest k, in O(k), rather than summing the middle again for every candidate.
        var k = 1, tail = pmf(n: n, j: 0)
        while k + 1 <= n - (k + 1), 1 - 2 * (tail + pmf(n: n, j: k)) >= 0.95 {
            tail += pmf(n: n, j: k)
            k += 1
        }
        return MedianInterval(median: percentile(s, 50)!, low: s[k - 1], high: s[n - k], coverage: k <= n - k ? max(0, 1 - 2 * tail) : 0)
    }

    /// P(k <= B <= n - k) for B ~ Binomial(n, 1/2): the coverage of [x(k), x(n+1-k)].
    public static func coverage(n: Int, k: Int) -> Double {
        guard k >= 1, k <= n - k else { return 0 }
        return max(0, 1 - 2 * (0..<k).reduce(0.0) { $0 + pmf(n: n, j: $1) })
    }

    /// P(B = j), from logs (C(n, j) / 2^n), so that large n neither over- nor underflows.
    static func pmf(n: Int, j: Int) -> Double {
        exp(lgamma(Double(n + 1)) - lgamma(Double(j + 1)) - lgamma(Double(n - j + 1)) + Double(n) * log(0.5))
    }
}

/// A median with an order-statistic interval and that interval's exact coverage.
public struct MedianInterval: Sendable, Equatable {
    public var median: Double
    public var low: Double
    public var high: Double
    /// The probability that [low, high] covers the true median (0.95 or more from 6 samples up).
    public var coverage: Double
    /// Whether it may be called a 95% confidence interval.
    public var is95: Bool { coverage >= 0.95 }
    public func covers(_ x: Double) -> Bool { low <= x && x <= high }
    /// "96.9%", as the reports print a coverage.
    public var coverageText: String { "\((coverage * 1000).rounded() / 10)%" }
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
