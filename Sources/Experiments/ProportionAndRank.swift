#if canImport(Glibc)
import Glibc
#endif

/// A share of successes with its Wilson score interval: 20 survivals of 20 is not "100%", it is
/// [83.9%, 100%] at 95% (Wilson 1927; unlike the normal approximation it stays inside [0, 1] and
/// is not empty at 0 or n successes).
public struct Proportion: Sendable, Equatable {
    public var successes: Int
    public var trials: Int
    public var low: Double
    public var high: Double

    /// z = 1.96: a 95% interval.
    public init(successes: Int, of trials: Int, z: Double = 1.959963984540054) {
        self.successes = successes
        self.trials = trials
        guard trials > 0 else { low = 0; high = 1; return }
        let n = Double(trials), p = Double(successes) / n, z2 = z * z
        let center = (p + z2 / (2 * n)) / (1 + z2 / n)
        let half = z / (1 + z2 / n) * (p * (1 - p) / n + z2 / (4 * n * n)).squareRoot()
        low = max(0, center - half)
        high = min(1, center + half)
    }

    public var share: Double? { trials > 0 ? Double(successes) / Double(trials) : nil }
}

/// Spearman's rank correlation of two samples (ties get their average rank) and its two-sided
/// p-value for "no monotone relation": exact, over every permutation, up to 8 pairs; above, from
/// Student's t with n - 2 degrees of freedom, t = r sqrt((n - 2) / (1 - r^2)), as SciPy computes it.
public struct RankCorrelation: Sendable, Equatable {
    public var rho: Double
    public var pValue: Double
    public var n: Int
    public var exact: Bool

    /// nil with fewer than 3 pairs, or when either sample is constant (no ranking to compare).
    public init?(_ xs: [Double], _ ys: [Double]) {
        precondition(xs.count == ys.count, "paired samples")
        n = xs.count
        guard n >= 3 else { return nil }
        let rx = Self.ranks(xs), ry = Self.ranks(ys)
        guard let r = Self.pearson(rx, ry) else { return nil }
        rho = r
        if n <= 8 {
            exact = true
            var asExtreme = 0, total = 0
            Self.permute(ry) { perm in
                total += 1
                if let p = Self.pearson(rx, perm), abs(p) >= abs(r) - 1e-12 { asExtreme += 1 }
            }
            pValue = Double(asExtreme) / Double(total)
        } else {
            exact = false
            let df = Double(n - 2)
            let t2 = abs(r) >= 1 ? Double.infinity : r * r * df / (1 - r * r)
            pValue = t2.isInfinite ? 0 : Self.regularizedBeta(x: df / (df + t2), a: df / 2, b: 0.5)
        }
    }

    /// Ranks from 1, ties sharing the mean of the ranks they span.
    static func ranks(_ xs: [Double]) -> [Double] {
        let order = xs.indices.sorted { xs[$0] < xs[$1] }
        var out = [Double](repeating: 0, count: xs.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && xs[order[j + 1]] == xs[order[i]] { j += 1 }
            let mean = Double(i + j) / 2 + 1
            for k in i...j { out[order[k]] = mean }
            i = j + 1
        }
        return out
    }

    static func pearson(_ a: [Double], _ b: [Double]) -> Double? {
        let n = Double(a.count)
        let ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for (x, y) in zip(a, b) { sab += (x - ma) * (y - mb); saa += (x - ma) * (x - ma); sbb += (y - mb) * (y - mb) }
        guard saa > 0, sbb > 0 else { return nil }
        return max(-1, min(1, sab / (saa * sbb).squareRoot()))
    }

    /// Heap's algorithm: every ordering of `xs`, each passed to `visit`.
    static func permute(_ xs: [Double], _ visit: ([Double]) -> Void) {
        var a = xs, c = [Int](repeating: 0, count: xs.count)
        visit(a)
        var i = 0
        while i < a.count {
            if c[i] < i {
                a.swapAt(i % 2 == 0 ? 0 : c[i], i)
                visit(a)
                c[i] += 1
                i = 0
            } else {
                c[i] = 0
                i += 1
            }
        }
    }

    /// I_x(a, b), the regularized incomplete beta function, by its continued fraction (Lentz's
    /// method, as in Numerical Recipes' betacf), on the side where it converges quickly.
    static func regularizedBeta(x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log(1 - x))
        if x < (a + 1) / (a + b + 2) { return front * continuedFraction(x: x, a: a, b: b) / a }
        return 1 - front * continuedFraction(x: 1 - x, a: b, b: a) / b
    }

    private static func continuedFraction(x: Double, a: Double, b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...300 {
            let m = Double(m), m2 = 2 * m
            var aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            h *= d * c
            aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-15 { break }
        }
        return h
    }
}
