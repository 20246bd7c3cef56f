import Core
import Testing
@testable import Supervision

private let s: Int64 = 1_000_000_000

private func policy(_ mode: RestartMode, burst: Int = 3) -> RestartPolicy {
    RestartPolicy(mode: mode, restartSecMs: 100, maxDelayMs: 1000, burst: burst, intervalMs: 10_000)
}

@Test func noPolicyNeverRestarts() {
    var p = policy(.no)
    #expect(p.decide(.exited(code: 1), injected: false, at: 0) == .noRestart(reason: "restart policy is 'no'"))
}

@Test func onFailureFollowsSystemdCleanExitRules() {
    var p = policy(.onFailure)
    if case .noRestart = p.decide(.exited(code: 0), injected: false, at: 0) {} else { Issue.record("status 0 is clean") }
    if case .noRestart = p.decide(.signaled(signal: 15), injected: false, at: 0) {} else { Issue.record("SIGTERM is clean") }
    #expect(p.decide(.exited(code: 3), injected: false, at: 0) == .restart(afterMs: 100))
    #expect(p.decide(.signaled(signal: 9), injected: false, at: 0) == .restart(afterMs: 200), "backoff doubles")
}

@Test func injectedFaultsAreNotRepaired() {
    var p = policy(.always)
    if case .noRestart = p.decide(.signaled(signal: 9), injected: true, at: 0) {} else { Issue.record("repaired an injected kill") }
}

@Test func backoffIsCappedAndResets() {
    var p = policy(.always, burst: 100)
    var delays: [Int] = []
    for i in 0..<6 {
        if case .restart(let d) = p.decide(.exited(code: 1), injected: false, at: Int64(i) * s) { delays.append(d) }
    }
    #expect(delays == [100, 200, 400, 800, 1000, 1000])
    p.recordHealthy()
    #expect(p.decide(.exited(code: 1), injected: false, at: 7 * s) == .restart(afterMs: 100))
}

@Test func startLimitGivesUp() {
    var p = policy(.always, burst: 3)
    for i in 0..<3 { p.recordStart(at: Int64(i) * s) }
    if case .giveUp = p.decide(.exited(code: 1), injected: false, at: 3 * s) {} else { Issue.record("no start limit") }
    // Starts older than the interval no longer count.
    if case .restart = p.decide(.exited(code: 1), injected: false, at: 30 * s) {} else { Issue.record("limit did not expire") }
}

@Test func aRunLongerThanTheIntervalResetsBackoff() {
    // recordHealthy was never called: after a healthy hour the next failure still waited the max.
    var p = policy(.always, burst: 100)
    for i in 0..<4 {
        p.recordStart(at: Int64(i) * s)
        _ = p.decide(.exited(code: 1), injected: false, at: Int64(i) * s + 1)
    }
    p.recordStart(at: 10 * s)
    #expect(p.decide(.exited(code: 1), injected: false, at: 10 * s + 5) == .restart(afterMs: 1000), "a crash at once keeps backing off")
    p.recordStart(at: 20 * s)
    #expect(p.decide(.exited(code: 1), injected: false, at: 40 * s) == .restart(afterMs: 100), "up 20 s > 10 s interval: healthy")
}

@Test func reconfiguringKeepsTheStartLimitHistory() {
    var p = policy(.always, burst: 3)
    for i in 0..<3 { p.recordStart(at: Int64(i) * s) }
    var config = ClusterConfig.default
    config.restart = .always
    config.startLimitBurst = 3
    config.startLimitIntervalMs = 10_000
    config.restartSecMs = 50
    p = p.reconfigured(config)
    if case .giveUp = p.decide(.exited(code: 1), injected: false, at: 3 * s) {} else {
        Issue.record("a reload forgot the starts already counted")
    }
    #expect(p.restartSecMs == 50)
}
