import Core
import Testing
@testable import Detection

private let ms: Int64 = 1_000_000

private func detector(threshold: Double = 8) -> PhiAccrualDetector {
    PhiAccrualDetector(peers: ["B"], settings: .init(threshold: threshold, firstIntervalEstimateNs: 100 * ms))
}

@Test func regularBeatsGiveADeadlineSomeStandardDeviationsPastTheMean() {
    var d = detector()
    for i in 0...50 { _ = d.heartbeat(from: "B", at: Int64(i) * 100 * ms) }
    let last = 50 * 100 * ms
    let after = Double(d.deadline(of: "B")! - last) / Double(ms)
    // Mean 100 ms, std floored at 10 ms; phi 8 with the logistic approximation is about 5.3 std.
    #expect(after > 150 && after < 160, "deadline \(after) ms after the last beat")
    #expect(d.phi(of: "B", at: last + 100 * ms)! < 1)
    #expect(d.phi(of: "B", at: d.deadline(of: "B")!)! >= 8)
    #expect(d.phi(of: "B", at: d.deadline(of: "B")! - ms)! < 8)
    #expect(d.expire("B", at: d.deadline(of: "B")! - 1) == nil)
    let dead = d.expire("B", at: d.deadline(of: "B")!)
    #expect(dead?.verdict == .dead && d.isDead("B"))
    #expect(d.heartbeat(from: "B", at: last + 400 * ms)?.verdict == .alive)
}

@Test func jitterAndAHigherThresholdBothWaitLonger() {
    var steady = detector(), jittery = detector(), strict = detector(threshold: 12)
    var t: Int64 = 0
    for i in 0..<200 {
        t += (i % 2 == 0 ? 60 : 140) * ms  // mean 100 ms, std 40 ms
        _ = jittery.heartbeat(from: "B", at: t)
        _ = steady.heartbeat(from: "B", at: Int64(i + 1) * 100 * ms)
        _ = strict.heartbeat(from: "B", at: Int64(i + 1) * 100 * ms)
    }
    let steadyWait = steady.deadline(of: "B")! - 200 * 100 * ms
    let jitteryWait = jittery.deadline(of: "B")! - t
    let strictWait = strict.deadline(of: "B")! - 200 * 100 * ms
    #expect(jitteryWait > steadyWait + 50 * ms, "\(jitteryWait / ms) vs \(steadyWait / ms) ms")
    #expect(strictWait > steadyWait, "\(strictWait / ms) vs \(steadyWait / ms) ms")
}

@Test func anUnheardPeerHasNoDeadlineAndTheFirstBeatUsesTheEstimate() {
    var d = detector()
    #expect(d.deadline(of: "B") == nil && d.earliestDeadline == nil)
    _ = d.heartbeat(from: "B", at: 0)
    // Before a second beat: mean 100 ms (the estimate), std 25 ms.
    let wait = Double(d.deadline(of: "B")!) / Double(ms)
    #expect(wait > 200 && wait < 260, "\(wait) ms")
    #expect(d.heartbeat(from: "C", at: 5) == nil, "an unknown peer is ignored")
}

/// The node's phi detector at (I, T): regular beats every I put its deadline a little after T
/// (T - I is the acceptable pause, I/10 the deviation floor), where the fixed one's is exactly T.
@Test func failureDetectorKindsAgreeOnAQuietPeerAtTheirDeadlines() {
    let ms: Int64 = 1_000_000
    for kind in FailureDetector.Kind.allCases {
        var d = FailureDetector(kind: kind, peers: ["B"], intervalMs: 100, timeoutMs: 300)
        for k in 0...20 { _ = d.heartbeat(from: "B", at: Int64(k) * 100 * ms) }
        let last = 2000 * ms
        let deadline = d.deadline(of: "B")!
        if kind == .fixed { #expect(deadline == last + 300 * ms) } else { #expect(deadline > last + 300 * ms && deadline < last + 400 * ms) }
        #expect(d.expireDue(at: deadline - 1).isEmpty)
        let dead = d.expireDue(at: deadline)
        #expect(dead.map(\.peer) == ["B"] && dead[0].verdict == .dead)
        #expect(d.heartbeat(from: "B", at: deadline + ms)?.verdict == .alive)
    }
}
