import Testing
@testable import Experiments

@Test func thePlanRunsEveryCellOnceARoundInASeededOrderAndTheCascadeLast() {
    var spec = FailoverSpec(trials: 4, rapidSequential: 3, rapidGapMs: 20)
    let plan = FailoverPlan(spec)
    #expect(plan.cells.count == 7 * 2 + 1 && plan.trials.count == 14 * 4 + 3)
    for round in 0..<4 {
        let cells = plan.trials.filter { $0.index == round && $0.cell.scenario != .rapid }.map(\.cell)
        #expect(Set(cells) == Set(plan.cells.filter { $0.scenario != .rapid }) && cells.count == 14)
    }
    #expect(plan.trials.suffix(3).map(\.cell) == Array(repeating: .init(scenario: .rapid, killAfterMs: 20), count: 3))
    // Shuffled (not the listed order), the same for the same seed, another for another.
    #expect(plan.trials.prefix(14).map(\.cell) != plan.cells.prefix(14).map { $0 })
    #expect(FailoverPlan(spec) == plan)
    spec.seed = 2
    #expect(FailoverPlan(spec).trials != plan.trials)
}

@Test func theOriginalsScenarioNamesStandForTheirDelays() {
    let names = [0, 10, 25, 50, 75, 100, 200, 30].map { FailoverScenario.originalName(.acknowledged, killAfterMs: $0) }
    #expect(names == ["immediate", "precision timed", "precision timed", "during replication", "precision timed",
                      "during replication", "during replication", "kill after 30 ms"])
    #expect(FailoverScenario.originalName(.rapid, killAfterMs: 0) == "rapid sequential")
}

private let sample = FailoverTrial(
    session: 1, cell: .init(scenario: .acknowledged, killAfterMs: 25), index: 3, fault: .kill, group: 2, key: "fo-3-25",
    leader: "B", term: 7, startWallMs: 1_765_000_000_000, sendMonoNs: 1_000_000_000, ackMonoNs: 1_002_000_000, write: .ok,
    killRequestedMonoNs: 1_003_000_000, killAppliedMonoNs: 1_027_100_000, killEffectMonoNs: 1_028_900_000, detectMonoNs: 1_027_600_000,
    leaderLostMonoNs: 1_027_700_000, electedMonoNs: 1_049_100_000, newLeader: "C", newTerm: 8, firstWriteMonoNs: 1_061_100_000,
    survived: .yes, survivedLater: .yes, restartMonoNs: 1_200_000_000, caughtUpMonoNs: 1_450_000_000, catchUpIndex: 41, durationMs: 900)

@Test func aTrialRowReadsBackAndItsFiguresComeFromItsInstants() throws {
    #expect(sample.electionMs == 22 && sample.recoveryMs == 34 && sample.catchUpMs == 250)
    #expect(sample.killAfterObservedMs == 25.1 && sample.detectionMs == 0.5)
    #expect(sample.overheadMs == 900 - 25 - 34 - 250)
    let text = FailoverCSV.header + "\n" + FailoverCSV.row(sample) + "\n"
    #expect(try FailoverCSV.parse(text) == [sample])
    #expect(FailoverCSV.row(sample).split(separator: ",", omittingEmptySubsequences: false).count == FailoverCSV.columns.count)
    // An unacknowledged write: no ack, and its outcome left unknown until read.
    var inFlight = sample
    inFlight.cell = .init(scenario: .inFlight, killAfterMs: 10)
    inFlight.ackMonoNs = nil
    inFlight.write = .timeout
    inFlight.survived = .no
    #expect(inFlight.killAfterObservedMs == 27.1)
    #expect(try FailoverCSV.parse(FailoverCSV.header + "\n" + FailoverCSV.row(inFlight) + "\n") == [inFlight])
}

@Test func aTornLastRowIsDroppedAndAnyOtherDamageIsNamed() throws {
    let row = FailoverCSV.row(sample)
    #expect(try FailoverCSV.parse(FailoverCSV.header + "\n" + row + "\n" + row.prefix(40)) == [sample])
    #expect(throws: TrialsCSV.ParseError.self) { try FailoverCSV.parse(FailoverCSV.header + "\n" + row.prefix(40) + "\n" + row + "\n") }
    #expect(throws: TrialsCSV.ParseError.self) { try FailoverCSV.parse("session,cell\n") }
}

@Test func aWriteReadBackThenGoneIsLostAndALostOneThatComesBackIsNamed() {
    var vanished = sample
    vanished.survivedLater = .no
    #expect(vanished.lostAcknowledged && !sample.lostAcknowledged)
    var back = sample
    back.ackMonoNs = nil
    back.survived = .no
    back.survivedLater = .yes
    #expect(back.reappeared && !back.lostAcknowledged)
    let s = FailoverSummary(trials: [sample, vanished, back])
    #expect(s.lost == [vanished] && s.reappeared == [back])
    #expect(s.overall.survival.successes == 1 && s.overall.survival.trials == 2)
    let text = s.text(runID: "r", spec: FailoverSpec())
    #expect(text.contains("ACKNOWLEDGED WRITES LOST: 1") && text.contains("gone once the killed node was back"))
    #expect(text.contains("UNACKNOWLEDGED WRITES READ AS LOST THAT CAME BACK: 1 (not linearizable)"))
}

@Test func theReportIsEveryFileFromTheTrialsAloneAndShowsALostWrite() {
    var lost = sample
    lost.index = 4
    lost.survived = .no
    let context = RunContext(runID: "exp-1", state: .finished, reason: nil, specText: "[experiment]\nkind = \"failover\"\n",
                             sessions: [], total: 2)
    let spec = FailoverSpec(killAfterMs: [25], trials: 2, inFlight: false)
    let files = FailoverReport.files(spec: spec, plan: FailoverPlan(spec), trials: [sample, lost], context: context)
    #expect(files.map(\.name) == ["summary.txt", "report.md", "report.html", "recovery.svg", "timeline.svg"])
    let md = files[1].text, html = files[2].text
    #expect(md.hasPrefix("# Failover experiment exp-1\n\n**1 of 2 acknowledged writes survived") && md.contains("1 LOST"))
    #expect(md.contains("## Writes lost") && md.contains("fo-3-25"))
    #expect(html.ranges(of: "<svg").count == 2 && !html.contains("<script"))
    // The timeline shows the lost trial, to scale from the kill.
    #expect(FailoverPlots.exemplar([sample, lost]) == lost)
    #expect(files[4].text.contains("trial 4") && files[4].text.contains("leader_elected: C, term 8: 22.00 ms"))
    // The same trials give the same files: what `kvctl experiment report` relies on.
    #expect(FailoverReport.files(spec: spec, plan: FailoverPlan(spec), trials: [sample, lost], context: context).map(\.text)
            == files.map(\.text))
}

@Test func theSessionsFinalReadCatchesALateLossAndALateReturn() {
    var lostLater = sample
    lostLater.index = 5
    var back = sample
    back.index = 6
    back.cell = .init(scenario: .inFlight, killAfterMs: 0)
    back.ackMonoNs = nil
    back.survived = .no
    back.survivedLater = .no
    let text = FinalReadsCSV.header + "\n" + [FinalReadsCSV.row(sample, .yes), FinalReadsCSV.row(lostLater, .no),
                                               FinalReadsCSV.row(back, .yes)].joined(separator: "\n") + "\n" + "1,acknowledged,25"
    let merged = FinalReadsCSV.merge(text, into: [sample, lostLater, back])
    #expect(merged.map(\.survivedFinal) == [.yes, .no, .yes])
    #expect(!merged[0].lostAcknowledged && merged[1].lostAcknowledged && merged[2].reappeared)
    let s = FailoverSummary(trials: merged)
    #expect(s.lost == [merged[1]] && s.reappeared == [merged[2]])
    #expect(s.text(runID: "r", spec: FailoverSpec()).contains("gone at the session's final read"))
    // No final reads (a run cut short): the trials as they were.
    #expect(FinalReadsCSV.merge(FinalReadsCSV.header + "\n", into: [sample]) == [sample])
}
