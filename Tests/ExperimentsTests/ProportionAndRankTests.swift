import Testing
@testable import Experiments

private func close(_ a: Double, _ b: Double, _ tolerance: Double = 1e-6) -> Bool { abs(a - b) <= tolerance }

/// The example, and the edges where the normal approximation fails.
@Test func wilsonIntervalsAreThoseOfTheLiterature() {
    let all = Proportion(successes: 20, of: 20)
    #expect(close(all.low, 0.838873, 1e-5) && all.high == 1)
    let none = Proportion(successes: 0, of: 12)
    #expect(close(none.low, 0) && close(none.high, 0.242494, 1e-5))
    // 12 of 12, the original lab's published run: [75.8%, 100%].
    let original = Proportion(successes: 12, of: 12)
    #expect(close(original.low, 0.757506, 1e-5))
    let half = Proportion(successes: 15, of: 30)
    #expect(close(half.low, 0.331541, 1e-5) && close(half.high, 0.668459, 1e-5))
}

/// Against SciPy 1.17's spearmanr on the same data (t approximation above 8 pairs).
@Test func spearmanMatchesScipy() throws {
    let a = try #require(RankCorrelation([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [2, 1, 4, 3, 6, 5, 8, 7, 10, 9]))
    #expect(close(a.rho, 0.9393939393939393) && close(a.pValue, 5.4840529985136686e-05, 1e-9) && !a.exact)
    // Ties in both samples (delays repeat; recovery times may too).
    let b = try #require(RankCorrelation([0, 0, 0, 10, 10, 10, 25, 25, 25, 50, 50, 50],
                                         [1.2, 1.1, 1.3, 1.25, 1.0, 1.4, 1.3, 1.35, 1.1, 1.5, 1.2, 1.45]))
    #expect(close(b.rho, 0.4449692621826781) && close(b.pValue, 0.1472012560635523, 1e-7))
    #expect(close(RankCorrelation.regularizedBeta(x: 0.3, a: 2.5, b: 0.5), 0.018927124071945658, 1e-10))
    #expect(close(RankCorrelation.regularizedBeta(x: 0.7, a: 0.5, b: 0.5), 0.6309898804344546, 1e-10))
}

/// Up to 8 pairs the p-value counts permutations: for a perfect ranking of 5, 2 of 120 orders
/// (this one and its reverse) are as extreme.
@Test func smallSamplesGetTheExactPermutationPValue() throws {
    let r = try #require(RankCorrelation([1, 2, 3, 4, 5], [10, 20, 30, 40, 50]))
    #expect(r.exact && close(r.rho, 1) && close(r.pValue, 2.0 / 120))
    #expect(RankCorrelation([1, 2], [1, 2]) == nil && RankCorrelation([1, 2, 3], [5, 5, 5]) == nil)
}
