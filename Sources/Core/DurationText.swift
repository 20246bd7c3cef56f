/// Parses durations as people type them: "150ms", "2s", "1.5s", "500us", "1m", "1h". A unit is
/// required: a bare "150" could mean milliseconds or seconds, so it is refused with a hint.
public enum DurationText {
    public enum Problem: Error, Equatable, Sendable {
        case empty, noUnit, negative, notADuration
        case overLimit(maxMs: Int)
        case underLimit(minMs: Int)
    }

    private static let units: [(String, Double)] = [("us", 0.001), ("µs", 0.001), ("ms", 1), ("s", 1000), ("m", 60_000),
                                                    ("h", 3_600_000)]

    /// Milliseconds, possibly fractional, or why the text is not a duration.
    public static func parse(_ text: String) -> Result<Double, Problem> {
        let t = text.trimmingSpaces()
        if t.isEmpty { return .failure(.empty) }
        for (suffix, factor) in units where t.hasSuffix(suffix) {
            guard let n = Double(t.dropLast(suffix.count)), n.isFinite else { return .failure(.notADuration) }
            return n < 0 ? .failure(.negative) : .success(n * factor)
        }
        if let n = Double(t), n.isFinite { return .failure(n < 0 ? .negative : .noUnit) }
        return .failure(.notADuration)
    }

    public static func milliseconds(_ text: String) -> Double? { try? parse(text).get() }

    /// Whole milliseconds within min...max, or an error naming the flag the user typed.
    public static func wholeMilliseconds(_ text: String, flag: String, min: Int = 0, max: Int = Int(Int32.max)) throws(DurationError) -> Int {
        let problem: Problem
        switch parse(text) {
        case .success(let ms):
            let whole = Int(ms.rounded())
            if whole > max { problem = .overLimit(maxMs: max) }
            else if whole < min { problem = .underLimit(minMs: min) }
            else { return whole }
        case .failure(let p): problem = p
        }
        throw DurationError(flag: flag, text: text, problem: problem)
    }

    public static func wholeMilliseconds(_ text: String) -> Int? { try? wholeMilliseconds(text, flag: "") }

    /// "1h", "2s", "150ms", "1.5s": the shortest exact spelling, for limits in messages.
    public static func format(ms: Int) -> String {
        for (suffix, factor) in [("h", 3_600_000), ("m", 60_000), ("s", 1000)] where ms >= factor && ms % factor == 0 {
            return "\(ms / factor)\(suffix)"
        }
        return "\(ms)ms"
    }
}

/// A duration flag the user got wrong, said in the user's own terms.
public struct DurationError: Error, CustomStringConvertible, Sendable {
    public let flag: String
    public let text: String
    public let problem: DurationText.Problem

    public init(flag: String, text: String, problem: DurationText.Problem) {
        self.flag = flag; self.text = text; self.problem = problem
    }

    public var description: String {
        let name = flag.isEmpty ? "'\(text)'" : "\(flag) '\(text)'"
        switch problem {
        case .empty: return "\(flag.isEmpty ? "a duration" : flag) is empty; write e.g. 50ms, 2s or 1.5s"
        case .noUnit: return "\(name) has no unit; write \(text.trimmingSpaces())ms or \(text.trimmingSpaces())s"
        case .negative: return "\(name) is negative; a duration is 0 or more, e.g. 50ms"
        case .notADuration: return "\(name) is not a duration; write e.g. 50ms, 2s, 1.5s or 1m"
        case .overLimit(let max): return "\(name) is over the limit of \(DurationText.format(ms: max))"
        case .underLimit(let min): return "\(name) is under the minimum of \(DurationText.format(ms: min))"
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
