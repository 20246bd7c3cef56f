import Testing
@testable import Experiments

/// A trial of `cell`: acknowledged (or not), surviving (or not), recovering in `recoveryMs`.
private func trial(_ scenario: FailoverScenario, _ delay: Int, _ index: Int, acked: Bool = true, survived: FailoverTrial.Survival = .yes,
                   recoveryMs: Int64 = 30) -> FailoverTrial {
    let kill: Int64 = 2_000_000_000
    return FailoverTrial(
        session: 1, cell: .init(scenario: scenario, killAfterMs: delay), index: index, fault: .kill, group: 0, key: "k\(delay)-\(index)",
        leader: "A", term: 3, startWallMs: 0, sendMonoNs: 1_000_000_000, ackMonoNs: acked ? 1_001_000_000 : nil, write: acked ? .ok : .timeout,
        killRequestedMonoNs: kill - 1_000_000, killAppliedMonoNs: kill, electedMonoNs: kill + 20_000_000, newLeader: "B", newTerm: 4,
        firstWriteMonoNs: kill + recoveryMs * 1_000_000, survived: survived, survivedLater: survived, durationMs: 500)
}

@Test func theSummaryHasTheOriginalsShapeAndSaysWhatItCannotClaim() {
    var trials: [FailoverTrial] = []
    for d in [0, 10, 50] { for i in 0..<3 { trials.append(trial(.acknowledged, d, i, recoveryMs: Int64(20 + d + i))) } }
    trials.append(trial(.inFlight, 10, 0, acked: false, survived: .no))
    trials.append(trial(.inFlight, 10, 1, acked: false, survived: .yes))
    let s = FailoverSummary(trials: trials)
    #expect(s.overall.survival == Proportion(successes: 9, of: 9) && s.overall.inFlight == (1, 1, 0))
    #expect(s.scenarios.map(\.name) == ["immediate", "precision timed", "during replication", "in flight"])
    #expect(s.cells.count == 4 && s.lost.isEmpty)
    let text = s.text(runID: "r1", spec: FailoverSpec())
    let lines = text.split(separator: "\n").map(String.init)
    #expect(lines.first == "=== FAILOVER TEST ANALYSIS REPORT ===")
    #expect(lines.contains("OVERALL RESULTS") && lines.contains("SCENARIO BREAKDOWN"))
    // 9 of 9 is not "100%": its Wilson interval says how sure that is.
    #expect(lines.contains { $0.contains("Acknowledged writes: 9/9 survived (100.0%, 95% CI [70.1%, 100.0%])") }, "\(text)")
    #expect(lines.contains { $0.hasPrefix("  immediate: 3 tests, 3/3 survived") && $0.contains("average recovery 0.021 s") }, "\(text)")
    #expect(lines.contains { $0.contains("Writes in flight at the kill: 1 survived, 1 lost, 0 unknown") })
    #expect(lines.contains { $0.hasPrefix("Kill delay vs recovery: Spearman rho 0.") })
}

@Test func aLostAcknowledgedWriteIsNamedWithItsKeyAndLeader() {
    let lostOne = trial(.acknowledged, 0, 2, survived: .no)
    let s = FailoverSummary(trials: [trial(.acknowledged, 0, 0), trial(.acknowledged, 0, 1), lostOne])
    #expect(s.lost == [lostOne] && s.overall.survival.successes == 2)
    let text = s.text(runID: "r1", spec: FailoverSpec())
    #expect(text.contains("ACKNOWLEDGED WRITES LOST: 1") && text.contains("key k0-2 written through A (term 3)"))
}

/// The table a report shows: a row per cell, intervals with their true coverage when under 95%.
@Test func theCellTableHasARowPerCellAndSaysItsIntervalsCoverage() {
    var trials = (0..<3).map { trial(.acknowledged, 25, $0, recoveryMs: Int64(30 + $0)) }
    trials.append(trial(.inFlight, 25, 0, acked: false, survived: .unknown))
    let table = FailoverSummary(trials: trials).cellTable
    #expect(table.rows.count == 2 && table.header.count == table.rows[0].count)
    #expect(table.rows[0][0] == "kill 25 ms after the ack" && table.rows[0][2] == "3/3 [43.9, 100.0]")
    // Three samples: [min, max] covers the median with 75%, and the table says so.
    #expect(table.rows[0][5] == "31.0 [30.0, 32.0] (75.0%)", "\(table.rows[0])")
    #expect(table.rows[1][3] == "0 / 0 / 1" && table.rows[1][2] == "-")
    #expect(table.markdown().hasPrefix("| scenario | trials |"))
}

@Test func aWriteWhoseReadWentUnansweredIsUnverifiedNotLost() {
    var open = trial(.acknowledged, 0, 3)
    open.survivedLater = .unknown
    let s = FailoverSummary(trials: [trial(.acknowledged, 0, 0), trial(.acknowledged, 0, 1, survived: .no), open])
    #expect(s.overall.survival == Proportion(successes: 1, of: 2) && s.overall.unverified == 1)
    #expect(s.text(runID: "r", spec: FailoverSpec()).contains("1/2 survived (50.0%, 95% CI [9.5%, 90.5%]), 1 unverified"))
    #expect(s.cellTable.rows[0][2].hasSuffix("(+1 unverified)"))
}

@Test func theCascadeCountsNodesBroughtBackBeforeAKillAndAFailoverWithoutElectionIsNamed() {
    var first = trial(.rapid, 0, 0), second = trial(.rapid, 0, 1), last = trial(.rapid, 0, 2)
    second.restartMonoNs = second.sendMonoNs - 5_000_000  // brought back before its write
    last.restartMonoNs = last.sendMonoNs - 5_000_000
    first.restartMonoNs = nil
    var end = last
    end.restartMonoNs = end.sendMonoNs + 900_000_000       // the end's catch-up: not a bring-back
    #expect(FailoverSummary(trials: [first, second, last]).rapidBroughtBack == 2)
    #expect(FailoverSummary(trials: [first, second, end]).rapidBroughtBack == 1)
    var stuck = trial(.acknowledged, 0, 5)
    stuck.electedMonoNs = nil
    stuck.firstWriteMonoNs = nil
    let s = FailoverSummary(trials: [trial(.acknowledged, 0, 4), stuck])
    #expect(s.withoutElection == 1 && s.overall.recoveryMs.count == 1)
    #expect(s.text(runID: "r", spec: FailoverSpec()).contains("; 1 with no election within 10 s"))
}

@Test func aComparisonPutsRunsSideBySideCellByCellAndSaysWhatIsUnmatched() {
    let raft = (0..<3).flatMap { i in [trial(.acknowledged, 0, i), trial(.acknowledged, 10, i)] }
    let pb = (0..<3).map { i in trial(.acknowledged, 0, i, survived: i == 0 ? .no : .yes, recoveryMs: 340) }
        + [trial(.acknowledged, 25, 0, recoveryMs: 350)]
    var pbSpec = FailoverSpec()
    pbSpec.mode = .primaryBackup
    pbSpec.groups = 1
    pbSpec.nodes = 2
    let runs = [FailoverComparison.Run(runID: "r-raft", spec: FailoverSpec(), trials: raft),
                FailoverComparison.Run(runID: "r-pb", spec: pbSpec, trials: pb)]
    let t = FailoverComparison.table(runs)
    #expect(t.header == ["scenario", "Raft, 3 nodes (r-raft): acknowledged survived", "recovery median",
                         "primary-backup, through the coordinator (r-pb): acknowledged survived", "recovery median"])
    // A row per cell of any run; "-" where a run lacks it; the loss is said in its cell.
    #expect(t.rows.map(\.first!) == ["kill 0 ms after the ack", "kill 10 ms after the ack", "kill 25 ms after the ack", "all"])
    #expect(t.rows[0][1] == "3/3 [43.9%, 100.0%]" && t.rows[0][2] == "30 ms", "\(t.rows)")
    #expect(t.rows[0][3] == "2/3 [20.8%, 93.9%] LOST 1" && t.rows[0][4] == "340 ms")
    #expect(t.rows[1][3] == "-" && t.rows[2][1] == "-")
    let files = FailoverComparison.files(runs)
    #expect(files.map(\.name) == ["comparison.md", "comparison.html"])
    #expect(files[0].text.contains("Acknowledged writes were lost in r-pb."))
    #expect(files[0].text.contains("Not in every run (compare like with like): kill 10 ms after the ack, kill 25 ms after the ack"))
}
