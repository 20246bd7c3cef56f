/// Numbers as reports print them (FoundationEssentials has no String(format:)).
public enum FixedText {
    /// `x` with exactly `digits` decimals.
    public static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return String(x) }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let n = Int64((abs(x) * scale).rounded())
        let sign = x < 0 && n != 0 ? "-" : ""
        guard digits > 0 else { return sign + String(n) }
        let s = String(n)
        let padded = String(repeating: "0", count: max(0, digits + 1 - s.count)) + s
        return sign + padded.dropLast(digits) + "." + padded.suffix(digits)
    }
}
