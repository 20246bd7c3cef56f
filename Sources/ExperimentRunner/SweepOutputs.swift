import Core
import Experiments

/// Writes a sweep's tables, plots and reports into its run directory (at the end of every
/// session, so a cancelled or failed run has a partial report that says so).
enum SweepOutputs {
    static func write(to dir: RunDirectory, spec: DetectionSweepSpec, plan: SweepPlan, summary: SweepSummary,
                      manifest: RunManifest) throws(RunDirectory.IOError) {
        let records = summary.records
        let context = RunContext(
            runID: manifest.runID, state: manifest.state, reason: manifest.reason, specText: (try? dir.read("spec.toml")) ?? "",
            sessions: manifest.sessions.map { s in
                .init(number: s.number, startedWallMs: s.startedWallMs, endedWallMs: s.endedWallMs, host: s.host,
                      trials: records.filter { $0.session == s.number }.count)
            }, total: plan.trials.count)
        for table in summary.tables(spec: spec) { try dir.write(table.name, table.text) }
        var plots: [(String, String, String)] = [
            ("heatmap.svg", "Median detection latency per cell", SVGPlots.heatmap(summary, spec: spec)),
            ("latency.svg", "Detection latency vs timeout", SVGPlots.latency(summary, spec: spec)),
            ("cdf.svg", "Latency distribution per cell against theory", SVGPlots.cdf(summary, spec: spec)),
        ]
        if spec.fault == .delay {
            plots.insert(("tradeoff.svg", "Mistakes vs detection latency under the same delay", SVGPlots.tradeoff(summary, spec: spec)), at: 0)
        }
        for p in plots { try dir.write(p.0, p.2) }
        try dir.write("report.md", SweepReport.markdown(spec: spec, plan: plan, summary: summary, context: context))
        try dir.write("report.html", SweepHTML.page(spec: spec, plan: plan, summary: summary, context: context,
                                                    plots: plots.map { ($0.1, $0.2) }))
    }
}
