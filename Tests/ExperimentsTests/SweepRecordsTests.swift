import Testing
@testable import Experiments

private let cell = SweepPlan.Cell(intervalMs: 100, timeoutMs: 300, detector: .fixed)

private func record(_ index: Int, latency: Double?, session: Int = 1) -> TrialRecord {
    TrialRecord(session: session, cell: cell, index: index, fault: .kill, phasePlannedMs: 42.125, phaseObservedMs: 42.5,
                startWallMs: 1_795_000_000_000, failWallMs: 1_795_000_000_050, failMonoNs: 9_000_000_000,
                detectWallMs: latency.map { 1_795_000_000_050 + Int64($0) }, detectMonoNs: latency.map { 9_000_000_000 + Int64($0 * 1e6) },
                latencyMs: latency, overshootMs: latency == nil ? nil : 0.02, outcome: latency == nil ? .missed : .detected,
                durationMs: 420)
}

@Test func trialRowsReadBackAsWritten() throws {
    let records = [record(0, latency: 257.5), record(1, latency: nil, session: 2)]
    let text = TrialsCSV.header + "\n" + records.map(TrialsCSV.row).joined(separator: "\n") + "\n"
    #expect(try TrialsCSV.parse(text) == records)
    #expect(records[0].overheadMs == 420 - 42.125 - 257.5)
}

@Test func aTornLastRowIsDroppedButDamageElsewhereIsRefused() throws {
    let full = TrialsCSV.header + "\n" + TrialsCSV.row(record(0, latency: 250)) + "\n"
    let torn = full + String(TrialsCSV.row(record(1, latency: 260)).prefix(30))
    #expect(try TrialsCSV.parse(torn).map(\.index) == [0])
    let damaged = TrialsCSV.header + "\n" + "1,fixed,100\n" + TrialsCSV.row(record(1, latency: 260)) + "\n"
    #expect(throws: TrialsCSV.ParseError.self) { try TrialsCSV.parse(damaged) }
    #expect(throws: TrialsCSV.ParseError.self) { try TrialsCSV.parse("session,detector\n") }
}

@Test func summaryComparesEachCellWithTheory() {
    let plan = SweepPlan(DetectionSweepSpec(intervalsMs: [100], timeoutsMs: [300], trials: 5))
    // Inside [200, 305] but one: 199 is below T - I.
    let records = [250.0, 240, 260, 199, 305].enumerated().map { record($0.offset, latency: $0.element) } + [record(5, latency: nil)]
    let s = SweepSummary(plan: plan, records: records)
    #expect(s.rows.count == 1)
    let r = s.rows[0]
    #expect(r.result.trials == 6 && r.result.missed == 1 && r.outOfBounds == 1)
    #expect(r.theory?.medianMs == 250 && r.median?.median == 250)
    #expect(s.cells[0].theoryMedianMs == 250 && s.cells[0].missed == 1)
    // Under a 30 +- 10 ms delay, theory moves by the delay and widens by the jitter.
    let delayed = SweepSummary(plan: plan, records: records, delayMs: 30, jitterMs: 10)
    #expect(delayed.rows[0].theory?.lowMs == 220 && delayed.rows[0].theory?.highMs == 340)
    #expect(delayed.rows[0].theory?.medianMs == 280)
}

@Test func delayTrialsAddUpToOneQualityWindow() {
    var a = record(0, latency: 250), b = record(1, latency: 260)
    a.mistakes = 2; a.suspectedMs = 300; a.windowMs = 30_000
    b.mistakes = 1; b.suspectedMs = 100; b.windowMs = 30_000
    let q = CellResult(cell: cell, records: [a, b]).quality!
    #expect(q.mistakes == 3 && q.mistakesPerMinute == 3 && q.meanDurationMs! == 400.0 / 3 && q.meanRecurrenceMs == 20_000)
    #expect(abs(q.queryAccuracy - (1 - 400.0 / 60_000)) < 1e-12)
}

@Test func reportsSayWhatRanAndWhetherItIsPartial() {
    let spec = DetectionSweepSpec(intervalsMs: [100], timeoutsMs: [300, 50], trials: 2)
    let plan = SweepPlan(spec)
    let summary = SweepSummary(plan: plan, records: [record(0, latency: 251)])
    let context = RunContext(runID: "exp-1", state: .cancelled, reason: "cancelled after 1 of 2 trials", specText: "[experiment]\n",
                             sessions: [.init(number: 1, startedWallMs: 1_795_000_000_000, endedWallMs: nil, host: "h", trials: 1)],
                             total: 2)
    let md = SweepReport.markdown(spec: spec, plan: plan, summary: summary, context: context)
    #expect(md.contains("This report is partial: the run is cancelled (cancelled after 1 of 2 trials)"))
    #expect(md.contains("skipped (timeout not above interval): I=100 T=50"))
    // One trial: no interval of any coverage, and no claim about theory.
    #expect(md.contains("| fixed | 100 | 300 | 1 | 0 | 0 | 251 [251, 251] | 0.0% | 250 | 1/1 |"))
    #expect(md.contains("1 cell has fewer than 6 detections, too few for a 95% interval"))
    #expect(md.contains("2026-11-18 ") && md.contains(" UTC"))
    let html = SweepHTML.page(spec: spec, plan: plan, summary: summary, context: context,
                              plots: [("Heatmap", SVGPlots.heatmap(summary, spec: spec))])
    #expect(html.contains("<b>Partial report</b>") && html.contains("<svg") && !html.contains("<script"))
    #expect(SVGPlots.escape("a<b & \"c\"") == "a&lt;b &amp; &quot;c&quot;")
}

/// A delay run's report once said "0 false suspicions" above a table of 4 mistakes (at I=100 T=120),
/// and printed a "95% CI" for 2 trials.
@Test func aDelayRunsMistakesAreItsFalseSuspicionsEverywhere() {
    let spec = DetectionSweepSpec(intervalsMs: [100], timeoutsMs: [300], trials: 2)
    let plan = SweepPlan(spec)
    var a = record(0, latency: 130), b = record(1, latency: 140)
    a.mistakes = 3; a.windowMs = 1000; b.mistakes = 1; b.windowMs = 1000
    let summary = SweepSummary(plan: plan, records: [a, b])
    #expect(summary.cells[0].falsePositives == 4 && summary.cells[0].ciCoverage == 0.5)
    let context = RunContext(runID: "exp-2", state: .finished, reason: nil, specText: "", sessions: [], total: 2)
    let headline = SweepReport.headline(summary: summary, context: context)
    #expect(headline.contains("4 false suspicions"), "\(headline)")
    #expect(!headline.contains("95% CI covers"), "\(headline)")
    let md = SweepReport.markdown(spec: spec, plan: plan, summary: summary, context: context)
    #expect(md.contains("| 4 | 130 [130, 140] | 50.0% |"), "\(md)")
    #expect(!md.contains("95% CI]"))
}
