import Core

/// A finished (or stopped) sweep's figures per cell, beside theory: what the reply, the tables
/// and the reports all show.
public struct SweepSummary: Sendable {
    public struct Row: Sendable {
        public var result: CellResult
        public var median: MedianInterval?
        public var p90: Double?
        public var p99: Double?
        public var overshootP99: Double?
        /// Detections outside [T - I, T + slack] (fixed detector only).
        public var outOfBounds: Int
        public var theory: DetectionTheory?
        public var medianOverheadMs: Double?
    }

    /// Slack allowed past T for wake-up and delivery, as the acceptance check allows.
    public static let boundSlackMs = 5.0

    public let rows: [Row]
    public let records: [TrialRecord]

    /// A run's summary: a delay run's kills happened under its delay, which shifts theory.
    public init(spec: DetectionSweepSpec, plan: SweepPlan, records: [TrialRecord]) {
        self.init(plan: plan, records: records, delayMs: spec.fault == .delay ? spec.delayMs : 0,
                  jitterMs: spec.fault == .delay ? spec.jitterMs : 0)
    }

    /// `delayMs`/`jitterMs`: the delay the kills happened under (fault = "delay"), which shifts theory.
    public init(plan: SweepPlan, records: [TrialRecord], delayMs: Int = 0, jitterMs: Int = 0) {
        self.records = records
        rows = plan.cells.map { cell in
            let mine = records.filter { $0.cell == cell }
            let result = CellResult(cell: cell, records: mine)
            let theory = cell.detector == .fixed ? DetectionTheory(intervalMs: cell.intervalMs, timeoutMs: cell.timeoutMs, delayMs: delayMs,
                                                                          jitterMs: jitterMs) : nil
            // A kill while already suspected (delay runs) is detected at once: not a latency to bound.
            let out = theory.map { t in result.latenciesMs.filter { $0 > 0 && ($0 < t.lowMs || $0 > t.highMs + Self.boundSlackMs) }.count } ?? 0
            return Row(result: result, median: OrderStatistics.medianCI(result.latenciesMs),
                       p90: OrderStatistics.percentile(result.latenciesMs, 90), p99: OrderStatistics.percentile(result.latenciesMs, 99),
                       overshootP99: OrderStatistics.percentile(mine.compactMap(\.overshootMs), 99), outOfBounds: out, theory: theory,
                       medianOverheadMs: OrderStatistics.percentile(mine.filter { $0.outcome != .window }.map(\.overheadMs), 50))
        }
    }

    public var cells: [ControlProtocol.ExperimentCell] {
        rows.map { r in
            let q = r.result.quality
            return .init(detector: r.result.cell.detector.rawValue, hbIntervalMs: r.result.cell.intervalMs,
                         hbTimeoutMs: r.result.cell.timeoutMs, trials: r.result.trials, missed: r.result.missed,
                         falsePositives: r.result.falseSuspicions, medianMs: r.median?.median, ciLowMs: r.median?.low,
                         ciHighMs: r.median?.high, ciCoverage: r.median?.coverage, p99Ms: r.p99, theoryMedianMs: r.theory?.medianMs,
                         mistakesPerMin: q?.mistakesPerMinute, meanMistakeMs: q?.meanDurationMs, queryAccuracy: q?.queryAccuracy)
        }
    }

    /// The CSV files: heatmap.csv and scatter.csv for the first detector, as the original wrote
    /// them, and `-<detector>` copies of each when the spec asked for more than one.
    public func tables(spec: DetectionSweepSpec) -> [(name: String, text: String)] {
        var out: [(String, String)] = []
        for (k, detector) in spec.detectors.enumerated() {
            let results = rows.map(\.result).filter { $0.cell.detector == detector }
            let heat = SweepTables.heatmap(results, intervals: spec.intervalsMs, timeouts: spec.timeoutsMs)
            let scatter = SweepTables.scatter(results)
            if k == 0 { out += [("heatmap.csv", heat), ("scatter.csv", scatter)] }
            if spec.detectors.count > 1 {
                out += [("heatmap-\(detector.rawValue).csv", heat), ("scatter-\(detector.rawValue).csv", scatter)]
            }
        }
        return out
    }
}
