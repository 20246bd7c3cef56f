import Core
import ScenarioTesting
import Testing
@testable import Detection

private let ms: Int64 = 1_000_000

@Test func declaresDeadExactlyAtTheDeadline() {
    var d = HeartbeatDetector(peers: ["B"], timeoutNs: 200 * ms)
    #expect(d.heartbeat(from: "B", at: 1000 * ms) == nil)
    #expect(d.deadline(of: "B") == 1200 * ms)
    #expect(d.expire("B", at: 1199 * ms) == nil, "one ms early is not dead")
    let dead = d.expire("B", at: 1200 * ms)
    #expect(dead?.verdict == .dead)
    #expect(dead?.silenceNs == 200 * ms)
    #expect(d.expire("B", at: 1300 * ms) == nil, "declared once")
}

@Test func heartbeatMovesTheDeadline() {
    var d = HeartbeatDetector(peers: ["B"], timeoutNs: 200 * ms)
    _ = d.heartbeat(from: "B", at: 0)
    _ = d.heartbeat(from: "B", at: 100 * ms)
    #expect(d.expire("B", at: 200 * ms) == nil, "a timer armed for the old deadline must not fire")
    #expect(d.deadline(of: "B") == 300 * ms)
}

@Test func recoveryIsReportedOnce() {
    var d = HeartbeatDetector(peers: ["B"], timeoutNs: 200 * ms)
    _ = d.heartbeat(from: "B", at: 0)
    _ = d.expire("B", at: 250 * ms)
    let alive = d.heartbeat(from: "B", at: 900 * ms)
    #expect(alive?.verdict == .alive)
    #expect(alive?.lastHeard == 0)
    #expect(d.heartbeat(from: "B", at: 950 * ms) == nil)
}

@Test func unknownAndUnheardPeersAreNotDeclared() {
    var d = HeartbeatDetector(peers: ["B"], timeoutNs: 200 * ms)
    #expect(d.deadline(of: "B") == nil, "not watched before its first heartbeat")
    #expect(d.expire("B", at: 10_000 * ms) == nil)
    #expect(d.heartbeat(from: "Z", at: 0) == nil)
    d.watch("Z")
    _ = d.heartbeat(from: "Z", at: 0)
    #expect(d.deadline(of: "Z") == 200 * ms)
}

@Test func earliestDeadlineSkipsDeadAndUnheardPeers() {
    var d = HeartbeatDetector(peers: ["A", "B", "C"], timeoutNs: 200 * ms)
    #expect(d.earliestDeadline == nil, "nobody heard yet")
    _ = d.heartbeat(from: "B", at: 50 * ms)
    _ = d.heartbeat(from: "A", at: 80 * ms)
    #expect(d.earliestDeadline == 250 * ms)
    #expect(d.expireDue(at: 249 * ms).isEmpty)
    let due = d.expireDue(at: 260 * ms)
    #expect(due.map(\.peer) == ["B"], "A's deadline (280) has not passed")
    #expect(d.earliestDeadline == 280 * ms, "a dead peer has no deadline")
    #expect(d.expireDue(at: 300 * ms).map(\.peer) == ["A"])
    #expect(d.earliestDeadline == nil)
}

/// Simulated clock: heartbeats every I, a crash at a random phase, timers fire exactly at deadlines.
/// Latency from crash to declaration must lie in [T - I, T]: the theory the benchmark compares against.
@Test(arguments: [UInt64(1), 2, 3, 42, 1234])
func latencyStaysWithinTheoreticalBounds(seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    for _ in 0..<200 {
        let interval = Int64(rng.next() % 200 + 10) * ms
        let timeout = interval + Int64(rng.next() % 400 + 1) * ms
        var d = HeartbeatDetector(peers: ["B"], timeoutNs: timeout)
        let phase = Int64(rng.next() % UInt64(interval))
        let crashAt = 10 * interval + phase
        var t: Int64 = 0
        while t < crashAt { _ = d.heartbeat(from: "B", at: t); t += interval }
        let deadline = d.deadline(of: "B")!
        let dead = d.expire("B", at: deadline)!
        let latency = dead.at - crashAt
        #expect(latency >= timeout - interval && latency <= timeout, "seed \(seed): latency \(latency) outside [T-I, T]")
    }
}
