/// The sweep's tables as the original lab wrote them (SPEC 6): `heatmap.csv` (first column
/// hb_timeout_ms, then one column per hb_interval_ms named by the number, cells the median
/// detection ms) and `scatter.csv` (one row per cell).
public struct CellResult: Sendable, Equatable {
    public var cell: SweepPlan.Cell
    /// Detection latency of each trial that saw one, ms.
    public var latenciesMs: [Double]
    public var trials: Int
    public var missed: Int
    public var falsePositives: Int
    public var quality: DetectorQuality?

    /// Every time the detector suspected the node while it was up: false positives of kill trials
    /// plus the mistakes counted in delay windows. What a person means by "false suspicions".
    public var falseSuspicions: Int { falsePositives + (quality?.mistakes ?? 0) }

    public init(cell: SweepPlan.Cell, latenciesMs: [Double], trials: Int, missed: Int, falsePositives: Int,
                quality: DetectorQuality? = nil) {
        self.cell = cell; self.latenciesMs = latenciesMs; self.trials = trials; self.missed = missed
        self.falsePositives = falsePositives; self.quality = quality
    }
}

public enum SweepTables {
    public static let scatterHeader = "hb_interval_ms,hb_timeout_ms,trials,missed,false_positives,median_detection_ms,"
        + "p90_detection_ms,p99_detection_ms,mistake_rate_per_min,mean_mistake_ms"

    public static func scatter(_ results: [CellResult]) -> String {
        var out = scatterHeader + "\n"
        for r in results {
            let q = r.quality
            out += [String(r.cell.intervalMs), String(r.cell.timeoutMs), String(r.trials), String(r.missed), String(r.falsePositives),
                    number(OrderStatistics.percentile(r.latenciesMs, 50)), number(OrderStatistics.percentile(r.latenciesMs, 90)),
                    number(OrderStatistics.percentile(r.latenciesMs, 99)), number(q?.mistakesPerMinute ?? 0),
                    number(q?.meanDurationMs ?? 0)].joined(separator: ",") + "\n"
        }
        return out
    }

    /// One detector's heatmap over `intervals` x `timeouts`; skipped cells are empty.
    public static func heatmap(_ results: [CellResult], intervals: [Int], timeouts: [Int]) -> String {
        var out = "hb_timeout_ms," + intervals.map(String.init).joined(separator: ",") + "\n"
        for t in timeouts {
            let row = intervals.map { i -> String in
                let r = results.first { $0.cell.intervalMs == i && $0.cell.timeoutMs == t }
                return r.map { number(OrderStatistics.percentile($0.latenciesMs, 50)) } ?? ""
            }
            out += String(t) + "," + row.joined(separator: ",") + "\n"
        }
        return out
    }

    /// Three decimals, no trailing zeros; empty for nothing measured.
    static func number(_ x: Double?) -> String {
        guard let x else { return "" }
        var s = String((x * 1000).rounded() / 1000)
        if s.hasSuffix(".0") { s.removeLast(2) }
        return s
    }
}
