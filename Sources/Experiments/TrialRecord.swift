/// One finished trial, as `trials.csv` holds it: every time the trial went through, so a reader
/// can recompute any figure, and a resumed run can tell which trials are done.
public struct TrialRecord: Sendable, Equatable {
    public enum Outcome: String, Sendable { case detected, missed, window }

    public var session: Int
    public var cell: SweepPlan.Cell
    public var index: Int
    public var fault: DetectionSweepSpec.Fault
    public var phasePlannedMs: Double
    /// Fault applied minus the last heartbeat the detector heard before it.
    public var phaseObservedMs: Double?
    public var startWallMs: Int64
    public var failWallMs: Int64?
    public var failMonoNs: Int64?
    public var detectWallMs: Int64?
    public var detectMonoNs: Int64?
    public var latencyMs: Double?
    /// How late the detector acted past its own deadline (last heard + timeout).
    public var overshootMs: Double?
    public var outcome: Outcome
    /// Suspicions of a node that was up (no fault on it) during the trial.
    public var falsePositives: Int
    /// fault = "delay": suspicions in the window, the time suspected, and the window.
    public var mistakes: Int
    public var suspectedMs: Double
    public var windowMs: Double
    /// Start of the trial (end of the previous one) to its end, recovery included.
    public var durationMs: Double

    public init(session: Int, cell: SweepPlan.Cell, index: Int, fault: DetectionSweepSpec.Fault, phasePlannedMs: Double,
                phaseObservedMs: Double? = nil, startWallMs: Int64, failWallMs: Int64? = nil, failMonoNs: Int64? = nil,
                detectWallMs: Int64? = nil, detectMonoNs: Int64? = nil, latencyMs: Double? = nil, overshootMs: Double? = nil,
                outcome: Outcome, falsePositives: Int = 0, mistakes: Int = 0, suspectedMs: Double = 0, windowMs: Double = 0,
                durationMs: Double) {
        self.session = session; self.cell = cell; self.index = index; self.fault = fault; self.phasePlannedMs = phasePlannedMs
        self.phaseObservedMs = phaseObservedMs; self.startWallMs = startWallMs; self.failWallMs = failWallMs
        self.failMonoNs = failMonoNs; self.detectWallMs = detectWallMs; self.detectMonoNs = detectMonoNs
        self.latencyMs = latencyMs; self.overshootMs = overshootMs; self.outcome = outcome
        self.falsePositives = falsePositives; self.mistakes = mistakes; self.suspectedMs = suspectedMs
        self.windowMs = windowMs; self.durationMs = durationMs
    }

    /// Time spent beyond the phase wait and the detection itself: start-up, recovery, bookkeeping.
    public var overheadMs: Double { max(0, durationMs - phasePlannedMs - (latencyMs ?? 0) - windowMs) }
}

/// `trials.csv`: a header, then one row per trial, appended as each finishes.
public enum TrialsCSV {
    public static let columns = [
        "session", "detector", "hb_interval_ms", "hb_timeout_ms", "trial", "fault", "phase_planned_ms", "phase_observed_ms",
        "t_start_wall_ms", "t_fail_wall_ms", "t_fail_mono_ns", "t_detect_wall_ms", "t_detect_mono_ns", "detection_latency_ms",
        "detector_overshoot_ms", "outcome", "false_positives", "mistakes", "suspected_ms", "window_ms", "duration_ms",
        "overhead_ms",
    ]
    public static let header = columns.joined(separator: ",")

    public static func row(_ r: TrialRecord) -> String {
        func n(_ x: Double?) -> String { SweepTables.number(x) }
        func i(_ x: Int64?) -> String { x.map(String.init) ?? "" }
        return [String(r.session), r.cell.detector.rawValue, String(r.cell.intervalMs), String(r.cell.timeoutMs), String(r.index),
                r.fault.rawValue, n(r.phasePlannedMs), n(r.phaseObservedMs), String(r.startWallMs), i(r.failWallMs),
                i(r.failMonoNs), i(r.detectWallMs), i(r.detectMonoNs), n(r.latencyMs), n(r.overshootMs), r.outcome.rawValue,
                String(r.falsePositives), String(r.mistakes), n(r.suspectedMs), n(r.windowMs), n(r.durationMs),
                n(r.overheadMs)].joined(separator: ",")
    }

    public struct ParseError: Error, CustomStringConvertible {
        public var line: Int
        public var problem: String
        public var description: String { "trials.csv line \(line): \(problem)" }
    }

    /// Reads back what `row` wrote. A torn last line (the supervisor died mid-write) is dropped:
    /// that trial runs again on resume.
    public static func parse(_ text: String) throws(ParseError) -> [TrialRecord] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let complete = text.hasSuffix("\n")
        if lines.last == "" { lines.removeLast() }
        guard let first = lines.first else { return [] }
        guard first == header else { throw ParseError(line: 1, problem: "header is not \(header)") }
        var out: [TrialRecord] = []
        for (k, line) in lines.enumerated().dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let last = k == lines.count - 1
            guard f.count == columns.count, let r = record(f) else {
                if last && !complete { break }
                throw ParseError(line: k + 1, problem: "expected \(columns.count) fields of the header's types")
            }
            out.append(r)
        }
        return out
    }

    private static func record(_ f: [String]) -> TrialRecord? {
        func d(_ s: String) -> Double? { s.isEmpty ? nil : Double(s) }
        func l(_ s: String) -> Int64? { s.isEmpty ? nil : Int64(s) }
        guard let session = Int(f[0]), let detector = DetectionSweepSpec.Detector(rawValue: f[1]), let interval = Int(f[2]),
              let timeout = Int(f[3]), let index = Int(f[4]), let fault = DetectionSweepSpec.Fault(rawValue: f[5]),
              let phase = d(f[6]), let start = l(f[8]), let outcome = TrialRecord.Outcome(rawValue: f[15]),
              let fp = Int(f[16]), let mistakes = Int(f[17]), let suspected = d(f[18]), let window = d(f[19]),
              let duration = d(f[20]) else { return nil }
        return TrialRecord(
            session: session, cell: .init(intervalMs: interval, timeoutMs: timeout, detector: detector), index: index, fault: fault,
            phasePlannedMs: phase, phaseObservedMs: d(f[7]), startWallMs: start, failWallMs: l(f[9]), failMonoNs: l(f[10]),
            detectWallMs: l(f[11]), detectMonoNs: l(f[12]), latencyMs: d(f[13]), overshootMs: d(f[14]), outcome: outcome,
            falsePositives: fp, mistakes: mistakes, suspectedMs: suspected, windowMs: window, durationMs: duration)
    }
}

extension CellResult {
    /// A cell's figures from its trials. Delay trials add up to one quality window.
    public init(cell: SweepPlan.Cell, records: [TrialRecord]) {
        let mine = records.filter { $0.cell == cell }
        let window = mine.reduce(0) { $0 + $1.windowMs }
        var quality: DetectorQuality?
        if window > 0 {
            let mistakes = mine.reduce(0) { $0 + $1.mistakes }
            let suspected = mine.reduce(0) { $0 + $1.suspectedMs }
            quality = DetectorQuality(mistakes: mistakes, windowMs: window, suspectedMs: suspected)
        }
        self.init(cell: cell, latenciesMs: mine.compactMap(\.latencyMs), trials: mine.count,
                  missed: mine.filter { $0.outcome == .missed }.count,
                  falsePositives: mine.reduce(0) { $0 + $1.falsePositives }, quality: quality)
    }
}
