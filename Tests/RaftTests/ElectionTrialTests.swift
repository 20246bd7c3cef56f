import RaftSimulation
import Testing

/// The election-time trials: behaviour, not speed. Every trial elects a new leader, none sooner
/// than the model's floor allows, and a seed gives the same trials again.
@Test func electionTrialsConvergeNoSoonerThanTheFloor() {
    var o = ElectionTrialOptions()
    o.trials = 40
    let trials = ElectionTrials.run(o)
    #expect(trials.count == 40)
    #expect(trials.allSatisfy { $0.electionMs != nil && $0.newLeader != nil && $0.terms >= 1 })
    let fastest = trials.compactMap(\.electionMs).min() ?? 0
    #expect(fastest >= o.floorMs, "an election in \(fastest) ms, below the floor of \(o.floorMs) ms")
    #expect(trials.allSatisfy { $0.crashOffsetMs >= 0 && $0.crashOffsetMs < Double(o.heartbeatMs) })
    let again = ElectionTrials.run(o)
    #expect(again.map(\.electionMs) == trials.map(\.electionMs))
}

@Test func electionTrialOptionsSayWhatIsWrong() {
    var o = ElectionTrialOptions()
    o.electionMinMs = 300
    o.electionMaxMs = 150
    #expect(o.problem?.contains("MIN-MAX") == true)
    o = ElectionTrialOptions()
    o.heartbeatMs = 200
    #expect(o.problem?.contains("heartbeat") == true)
    o = ElectionTrialOptions()
    o.servers = 2
    #expect(o.problem?.contains("at least 3") == true)
    #expect(ElectionTrialOptions().problem == nil)
}
