import Testing
@testable import Experiments

private let ms: Int64 = 1_000_000

@Test func detectorQualityFromSuspicionsOfALiveProcess() {
    // A 60 s window with three mistakes of 100, 200 and 300 ms starting at 10, 20 and 40 s.
    let q = DetectorQuality(suspicions: [(10_000 * ms, 10_100 * ms), (20_000 * ms, 20_200 * ms), (40_000 * ms, 40_300 * ms)],
                            from: 0, to: 60_000 * ms)
    #expect(q.mistakes == 3 && q.mistakesPerMinute == 3)
    #expect(q.meanDurationMs == 200)
    #expect(q.meanRecurrenceMs == 15_000)
    #expect(abs(q.queryAccuracy - (1 - 600.0 / 60_000)) < 1e-12)
    // A suspicion still open at the end counts until the end; none at all is perfect accuracy.
    let open = DetectorQuality(suspicions: [(59_000 * ms, nil)], from: 0, to: 60_000 * ms)
    #expect(open.meanDurationMs == 1000 && open.meanRecurrenceMs == nil)
    #expect(DetectorQuality(suspicions: [], from: 0, to: 1000 * ms).queryAccuracy == 1)
}

@Test func tablesHaveTheOriginalLabsShape() {
    let spec = DetectionSweepSpec(intervalsMs: [50, 100, 200], timeoutsMs: [100, 300], trials: 3)
    let plan = SweepPlan(spec)
    let results = plan.cells.map { cell in
        CellResult(cell: cell, latenciesMs: [Double(cell.timeoutMs) - Double(cell.intervalMs) / 2, Double(cell.timeoutMs) - 10,
                                             Double(cell.timeoutMs - cell.intervalMs) + 5],
                   trials: 3, missed: 0, falsePositives: 0)
    }
    let heatmap = SweepTables.heatmap(results, intervals: spec.intervalsMs, timeouts: spec.timeoutsMs)
    #expect(heatmap == """
        hb_timeout_ms,50,100,200
        100,75,,
        300,275,250,200

        """)
    let scatter = SweepTables.scatter(results).split(separator: "\n")
    #expect(scatter.first.map(String.init) == SweepTables.scatterHeader)
    #expect(scatter.count == 1 + plan.cells.count)
    #expect(scatter.dropFirst().allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == 10 })
    #expect(scatter[1] == "50,100,3,0,0,75,90,90,0,0")
}

@Test func aReportTableRendersTheSameCellsAsMarkdownAndEscapedHTML() {
    let table = ReportTable(header: ["session", "host", "trials"], leftAligned: [1], rows: [["1", "a<b>&c", "12"], ["2", "d", "-"]])
    #expect(table.markdown() == """
        | session | host | trials |
        |---|---|---|
        | 1 | a<b>&c | 12 |
        | 2 | d | - |

        """)
    #expect(table.html() == "<table><tr><th>session</th><th class=l>host</th><th>trials</th></tr>"
            + "<tr><td>1</td><td class=l>a&lt;b&gt;&amp;c</td><td>12</td></tr><tr><td>2</td><td class=l>d</td><td>-</td></tr></table>")
}
