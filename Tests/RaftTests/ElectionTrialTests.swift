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

/// Figure 16's setup: no pre-vote, no check-quorum, and a fixed timeout (MIN = MAX) allowed. Each
/// election is then a vote round alone, none sooner than that floor; with every timeout equal,
/// candidates collide: every converged trial needed more than one term, and some did not converge
/// within the limit (the paper's 150-150 ms curve has the same long tail).
@Test func figureSixteensSetupRunsWithoutPreVoteOrCheckQuorum() {
    var o = ElectionTrialOptions()
    o.electionMinMs = 150
    o.electionMaxMs = 150
    o.heartbeatMs = 75
    o.delayMs = 7.5
    o.preVote = false
    o.checkQuorum = false
    o.trials = 60
    #expect(o.problem == nil)
    var withPreVote = o
    withPreVote.preVote = true
    #expect(o.floorMs < withPreVote.floorMs && o.modelMeanMs < withPreVote.modelMeanMs)
    o.limitMs = 3000
    let trials = ElectionTrials.run(o)
    let converged = trials.filter { $0.electionMs != nil }
    #expect(!converged.isEmpty && converged.count < trials.count, "\(converged.count) of \(trials.count) converged")
    #expect(converged.allSatisfy { $0.electionMs! >= o.floorMs && $0.terms > 1 })
}
