/// Parses durations as people type them: "150ms", "2s", "1.5s", "500us", "1m"; a bare number is milliseconds.
public enum DurationText {
    public static func milliseconds(_ text: String) -> Double? {
        let t = text.trimmingSpaces()
        let units: [(String, Double)] = [("us", 0.001), ("µs", 0.001), ("ms", 1), ("s", 1000), ("m", 60_000)]
        for (suffix, factor) in units where t.hasSuffix(suffix) {
            guard let n = Double(t.dropLast(suffix.count)), n >= 0, n.isFinite else { return nil }
            return n * factor
        }
        guard let n = Double(t), n >= 0, n.isFinite else { return nil }
        return n
    }

    /// Whole milliseconds, for flags like `--after 50ms`; nil for negative, fractional-below-1 or junk.
    public static func wholeMilliseconds(_ text: String) -> Int? {
        guard let ms = milliseconds(text), ms <= Double(Int32.max) else { return nil }
        return Int(ms.rounded())
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
