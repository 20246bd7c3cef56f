import Core
import Raft
import Testing
@testable import RaftNode

private let ms: Int64 = 1_000_000

@Test func preferredLeadersSpreadGroupsOverTheVoters() {
    #expect((0..<3).map { LeaderBalancer.preferred(group: $0, voters: [3, 1, 2]) } == [1, 2, 3])
    #expect((0..<3).map { LeaderBalancer.preferred(group: $0, voters: [1, 2, 3, 4, 5]) } == [1, 2, 3])
    #expect((0..<4).map { LeaderBalancer.preferred(group: $0, voters: [1, 2]) } == [1, 2, 1, 2])
}

/// A leader that is not the group's preferred one: each line is a moment, what the leader sees,
/// and the transfer it starts ("-" for none).
@Test func aGroupGoesToItsPreferredLeaderOnlyOnceItHasSettled() {
    var b = LeaderBalancer(settleNs: 1000 * ms, retryNs: 5000 * ms)
    let script: [(at: Int64, leading: Bool, caughtUp: Bool, transferring: Bool, expect: String)] = [
        (0, true, false, false, "-"),        // the preferred node is down
        (100, true, true, false, "-"),       // back and caught up: it must stay so for a second
        (600, true, false, false, "-"),      // it fell behind again: the second starts over
        (700, true, true, false, "-"),
        (1600, true, true, false, "-"),
        (1700, true, true, false, "2"),      // caught up since 700: hand it over
        (1800, true, true, true, "-"),       // the transfer is under way
        (2800, true, true, false, "-"),      // it did not take (still leader): retry only after 5 s
        (6700, true, true, false, "2"),
        (6800, false, false, false, "-"),    // it took: no longer leader
    ]
    var trace: [String] = []
    for s in script {
        let t = b.decide(now: s.at * ms, leading: s.leading, me: 1, preferred: 2, preferredCaughtUp: s.caughtUp, transferring: s.transferring)
        trace.append(t.map { "\($0)" } ?? "-")
    }
    #expect(trace == script.map(\.expect))
}

@Test func thePreferredLeaderNeverHandsItsGroupAway() {
    var b = LeaderBalancer(settleNs: 0, retryNs: 0)
    for t in 0..<100 { #expect(b.decide(now: Int64(t) * ms, leading: true, me: 2, preferred: 2, preferredCaughtUp: true, transferring: false) == nil) }
}
