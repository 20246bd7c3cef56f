import Core
import Linearizability
import Testing
@testable import Experiments

private let ms: Int64 = 1_000_000

private func event(_ kind: EventKind, _ node: NodeID, at t: Int64, _ set: (inout Event) -> Void = { _ in }) -> Event {
    var e = Event(kind: kind, runID: "r", node: node, at: Stamp(wallMs: 0, monoNs: t * ms))
    set(&e)
    return e
}

@Test func nodeLanesShowLeadershipDownPausedCutAndDetectionsFromTheEvents() {
    var t = Timeline(start: 0, end: 10_000 * ms, nodes: ["A", "B", "C"], clients: [0])
    t.add(events: [
        event(.leaderElected, "A", at: 100) { $0.group = 0; $0.term = 1 },
        event(.faultApplied, "A", at: 2000) { $0.faultID = "f1"; $0.fault = .kill; $0.applied = Stamp(wallMs: 0, monoNs: 2000 * ms) },
        event(.nodeExited, "A", at: 2001),
        event(.declaredDead, "B", at: 2300) { $0.peer = "A" },
        event(.leaderElected, "B", at: 2400) { $0.group = 0; $0.term = 2 },
        event(.nodeStarted, "A", at: 3000),
        event(.faultApplied, "C", at: 4000) { $0.faultID = "f2"; $0.fault = .stop },
        event(.faultCleared, "C", at: 4500) { $0.faultID = "f2"; $0.fault = .stop },
        event(.faultApplied, "B", at: 5000) { $0.faultID = "f3"; $0.fault = .partition; $0.peers = ["A", "C"] },
    ])
    let spans = t.spans.map { "\($0.lane) \($0.kind.rawValue) \($0.from / ms)-\($0.to / ms) \($0.label)" }
    #expect(spans == ["A leader 100-2001 g0 t1", "A down 2001-3000 down", "B leader 2400-10000 g0 t2", "C paused 4000-4500 paused",
                      "B cut 5000-10000 cut off from A,C"])
    #expect(t.marks.map { "\($0.lane) \($0.at / ms) \($0.label)" } == ["A 2000 kill", "B 2300 declared A dead"])
}

@Test func clientLanesMarkTheCounterexampleAndAPageDrawsOnlyItsWindow() {
    var t = Timeline(start: 0, end: 20_000 * ms, nodes: ["A"], clients: [0, 1])
    typealias Op = Linearizability.Operation<KVModel.Input, KVModel.Output>
    let history: [Op] = [
        Op(client: 0, key: "k", input: .put("0-1"), output: .done, outcome: .ok, invoke: 1000 * ms, complete: 1010 * ms),
        Op(client: 3, key: "k", input: .get, output: .value(nil), outcome: .ok, invoke: 12_000 * ms, complete: 12_002 * ms),
        Op(client: 1, key: "k", input: .put("1-1"), output: nil, outcome: .unknown, invoke: 15_000 * ms, complete: nil),
    ]
    t.add(history: history, model: KVModel(), context: [.init(client: 0, invoke: 1000 * ms)],
          culprits: [.init(client: 3, invoke: 12_000 * ms)], unknownNs: 500 * ms)
    // Process 3 of 2 clients is client 1's lane; an unknown outcome is drawn until the client gave up.
    #expect(t.bars.map(\.client) == [0, 1, 1] && t.bars[2].to == 15_500 * ms && t.bars.map(\.role) == [.context, .culprit, .none])
    #expect(t.pages(seconds: 10).map { [$0.from / ms, $0.to / ms] } == [[0, 10_000], [10_000, 20_000]])
    let first = t.svg(from: 0, to: 10_000 * ms), second = t.svg(from: 10_000 * ms, to: 20_000 * ms)
    #expect(first.contains("class='ok hl'") && !first.contains("class='ok culprit'") && !first.contains("class='culprit-mark'"))
    #expect(second.contains("class='ok culprit'") && second.contains("culprit-mark") && second.contains("process 3 k: get -&gt; absent"))
    #expect(second.contains("class='unknown'"))
}

/// A leader band ends at the leader's own leader_lost (one group: no group field), or at the
/// coordinator's naming it; a follower that lost sight of the leader ends nothing.
@Test func aLeaderBandEndsAtItsOwnLossOrTheCoordinatorsNotAFollowers() {
    var raft = Timeline(start: 0, end: 5000 * ms, nodes: ["A", "B", "C"], clients: [])
    raft.add(events: [
        event(.leaderElected, "A", at: 100) { $0.term = 1; $0.leader = "A" },
        event(.leaderLost, "C", at: 1000) { $0.leader = "A" },
        event(.leaderLost, "A", at: 2000) { $0.leader = "A"; $0.term = 1 },
    ])
    #expect(raft.spans.map { "\($0.lane) \($0.from / ms)-\($0.to / ms)" } == ["A 100-2000"])
    var pb = Timeline(start: 0, end: 5000 * ms, nodes: ["NM", "A", "B"], clients: [])
    pb.add(events: [
        event(.leaderElected, "NM", at: 100) { $0.term = 1; $0.leader = "A"; $0.group = 0 },
        event(.leaderLost, "NM", at: 3000) { $0.leader = "A"; $0.group = 0 },
    ], deciders: ["NM"])
    #expect(pb.spans.map { "\($0.lane) \($0.from / ms)-\($0.to / ms)" } == ["A 100-3000"])
}
