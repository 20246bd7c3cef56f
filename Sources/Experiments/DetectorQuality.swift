/// Failure-detector quality as Chen, Toueg and Aguilera define it ("On the quality of service of
/// failure detectors", 2002), measured over a window in which the monitored process was up:
/// every suspicion then is a mistake.
public struct DetectorQuality: Sendable, Equatable {
    /// Mistakes (suspicions of a process that was up) in the window.
    public var mistakes: Int
    public var windowMs: Double
    /// T_MR: mean time from the start of one mistake to the start of the next (nil with < 2).
    public var meanRecurrenceMs: Double?
    /// T_M: mean length of a mistake (nil with none).
    public var meanDurationMs: Double?
    /// P_A: the probability that a query at a random moment finds the process trusted.
    public var queryAccuracy: Double
    public var mistakesPerMinute: Double { windowMs > 0 ? Double(mistakes) / (windowMs / 60_000) : 0 }

    /// `suspicions`: (declared dead, declared alive again or nil if still suspected at the end), in
    /// monotonic ns, within [from, to].
    public init(suspicions: [(start: Int64, end: Int64?)], from: Int64, to: Int64) {
        let clipped = suspicions.map { (max(from, $0.start), min(to, $0.end ?? to)) }.filter { $0.0 < $0.1 }
            .sorted { $0.0 < $1.0 }
        mistakes = clipped.count
        windowMs = Double(to - from) / 1e6
        let durations = clipped.map { Double($0.1 - $0.0) / 1e6 }
        meanDurationMs = durations.isEmpty ? nil : durations.reduce(0, +) / Double(durations.count)
        let starts = clipped.map(\.0)
        meanRecurrenceMs = starts.count < 2 ? nil : Double(starts.last! - starts.first!) / 1e6 / Double(starts.count - 1)
        let suspected = durations.reduce(0, +)
        queryAccuracy = windowMs > 0 ? max(0, 1 - suspected / windowMs) : 1
    }

    /// Totals over several windows (a cell's delay trials): T_MR as window per mistake.
    public init(mistakes: Int, windowMs: Double, suspectedMs: Double) {
        self.mistakes = mistakes
        self.windowMs = windowMs
        meanRecurrenceMs = mistakes > 0 ? windowMs / Double(mistakes) : nil
        meanDurationMs = mistakes > 0 ? suspectedMs / Double(mistakes) : nil
        queryAccuracy = windowMs > 0 ? max(0, 1 - suspectedMs / windowMs) : 1
    }
}
