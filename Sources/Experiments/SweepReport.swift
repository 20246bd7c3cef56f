import Core
#if canImport(Glibc)
import Glibc
#endif

/// What a report says about where and when a run ran.
public struct RunContext: Sendable {
    public struct Session: Sendable {
        public var number: Int
        public var startedWallMs: Int64
        public var endedWallMs: Int64?
        public var host: String
        public var trials: Int
        public init(number: Int, startedWallMs: Int64, endedWallMs: Int64?, host: String, trials: Int) {
            self.number = number; self.startedWallMs = startedWallMs; self.endedWallMs = endedWallMs; self.host = host
            self.trials = trials
        }
    }
    public var runID: String
    public var state: ControlProtocol.RunState
    public var reason: String?
    public var specText: String
    public var sessions: [Session]
    public var total: Int
    public init(runID: String, state: ControlProtocol.RunState, reason: String?, specText: String, sessions: [Session], total: Int) {
        self.runID = runID; self.state = state; self.reason = reason; self.specText = specText; self.sessions = sessions
        self.total = total
    }
}

/// report.md: what ran, where, the tables, and how each cell compares with theory.
public enum SweepReport {
    public static func markdown(spec: DetectionSweepSpec, plan: SweepPlan, summary: SweepSummary, context c: RunContext) -> String {
        var out = "# Detection sweep \(c.runID)\n\n"
        out += "**\(headline(summary: summary, context: c))**\n\n"
        if c.state != .finished {
            out += "> This report is partial: the run is \(c.state.rawValue)" + (c.reason.map { " (\($0))" } ?? "") + ". "
                + "`kvctl experiment resume \(c.runID)` continues it.\n\n"
        }
        out += "## What ran\n\n"
        out += "- fault `\(spec.fault.rawValue)`" + (spec.fault == .delay ? " (\(spec.delayMs) ms +- \(spec.jitterMs) ms, "
            + "\(spec.windowMs) ms windows, then a kill under the same delay)" : "") + ", detector "
            + spec.detectors.map { "`\($0.rawValue)`" }.joined(separator: " and ")
            + (spec.detectors.contains(.phi) ? " (phi threshold \(spec.phiThreshold))" : "") + "\n"
        out += "- \(spec.nodes) nodes (the last is the one faults hit), \(spec.trials) trials per cell, seed \(spec.seed), "
            + "\(plan.cells.count) cells, \(plan.trials.count) trials\n"
        if !plan.skipped.isEmpty {
            out += "- skipped (timeout not above interval): " + plan.skipped.map { "I=\($0.intervalMs) T=\($0.timeoutMs)" }
                .joined(separator: ", ") + "\n"
        }
        out += "\n## Sessions\n\n" + c.sessionsTable.markdown()
        out += "\n## Detection latency against theory\n\n"
        out += "A fixed detector with interval I and timeout T notices a crash between T - I and T after it, uniformly: "
            + "median T - I/2. The interval beside each median is from order statistics, with its exact coverage: 95% or more "
            + "from 6 trials up; with fewer no interval reaches 95%, so [min, max] is given with the lower coverage it has. "
            + "False suspicions count every suspicion of a node that was up (in kill trials and in delay windows). Overhead is a trial's time beyond its phase wait "
            + "and its detection (restart, re-trust, bookkeeping)."
            + (spec.fault == .delay ? " Under the delay d +- j the kills happened in, theory shifts: [T - I + d - j, T + d + j], median "
               + "T - I/2 + d; a kill while the detector already suspected the node counts as detected at once (T_D = 0)." : "")
            + "\n\n"
        out += "| detector | I ms | T ms | trials | missed | false suspicions | median ms [interval] | coverage | theory median "
            + "| in [T-I, T+5] | p90 | p99 | overshoot p99 | overhead median |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        for r in summary.rows {
            let cell = r.result.cell
            let median = r.median.map { "\(f($0.median)) [\(f($0.low)), \(f($0.high))]" } ?? "-"
            let verdict: String
            if let t = r.theory, let m = r.median {
                verdict = "\(r.result.latenciesMs.count - r.outOfBounds)/\(r.result.latenciesMs.count)"
                    + (m.is95 && !m.covers(t.medianMs) ? " (95% CI misses theory)" : "")
            } else { verdict = "-" }
            out += "| \(cell.detector.rawValue) | \(cell.intervalMs) | \(cell.timeoutMs) | \(r.result.trials) | \(r.result.missed) "
                + "| \(r.result.falseSuspicions) | \(median) | \(r.median.map { $0.coverageText } ?? "-") | \(r.theory.map { f($0.medianMs) } ?? "-") | \(verdict) | \(f(r.p90)) "
                + "| \(f(r.p99)) | \(f(r.overshootP99)) | \(f(r.medianOverheadMs)) |\n"
        }
        if let quality = summary.qualityTable {
            out += "\n## Detector quality under delay (Chen, Toueg and Aguilera)\n\n" + quality.markdown()
        }
        out += "\n## Files\n\n`spec.toml`, `events.jsonl`, `trials.csv` (every time of every trial), `heatmap.csv`, `scatter.csv`, "
            + "`heatmap.svg`, `cdf.svg`, `latency.svg`, `trial.svg` (one trial on the timeline)" + (spec.fault == .delay ? ", `tradeoff.svg`" : "")
            + ", `report.html`.\n"
        out += "\n## Spec\n\n```toml\n\(c.specText.hasSuffix("\n") ? c.specText : c.specText + "\n")```\n"
        return out
    }

    /// One sentence a person reads first.
    public static func headline(summary: SweepSummary, context c: RunContext) -> String {
        let detected = summary.rows.reduce(0) { $0 + $1.result.latenciesMs.count }
        let missed = summary.rows.reduce(0) { $0 + $1.result.missed }
        let fp = summary.rows.reduce(0) { $0 + $1.result.falseSuspicions }
        let out = summary.rows.reduce(0) { $0 + $1.outOfBounds }
        let fixed = summary.rows.filter { $0.theory != nil && $0.median != nil }
        let sized = fixed.filter { $0.median!.is95 }
        let covered = sized.filter { $0.median!.covers($0.theory!.medianMs) }.count
        var s = "\(c.state.rawValue.capitalized): \(summary.records.count) of \(c.total) trials; \(detected) detections, \(missed) missed, "
            + "\(fp) false suspicion\(fp == 1 ? "" : "s")"
        if !fixed.isEmpty {
            s += "; \(out) detections outside [T - I, T + 5 ms]"
            if !sized.isEmpty { s += "; the median's 95% CI covers theory in \(covered) of \(sized.count) cells" }
            if sized.count < fixed.count {
                s += "; \(fixed.count - sized.count) cell\(fixed.count - sized.count == 1 ? " has" : "s have") fewer than 6 detections, "
                    + "too few for a 95% interval"
            }
        }
        return s + "."
    }

    static func f(_ x: Double?) -> String {
        guard let x else { return "-" }
        return SweepTables.number((x * 10).rounded() / 10)
    }

    static func format4(_ x: Double) -> String { SweepTables.number((x * 10000).rounded() / 10000) }
}

/// Wall-clock milliseconds as people read them: "2026-11-23 11:19:02.123 UTC".
public enum WallTime {
    public static func text(_ ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let milli = Int(ms % 1000)
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):"
            + "\(two(parts.tm_sec)).\(milli < 10 ? "00" : milli < 100 ? "0" : "")\(milli) UTC"
    }
}
