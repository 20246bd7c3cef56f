extension SweepReport {
    /// Every file of a sweep's report, from its spec, plan and trials alone: what the supervisor
    /// writes at the end of each session and `kvctl experiment report` writes again.
    public static func files(spec: DetectionSweepSpec, plan: SweepPlan, summary: SweepSummary, context: RunContext) -> [ReportFile] {
        var plots: [(String, String, String)] = [
            ("heatmap.svg", "Median detection latency per cell", SVGPlots.heatmap(summary, spec: spec)),
            ("latency.svg", "Detection latency vs timeout", SVGPlots.latency(summary, spec: spec)),
            ("cdf.svg", "Latency distribution per cell against theory", SVGPlots.cdf(summary, spec: spec)),
        ]
        if let t = SweepTimeline.exemplar(summary.records), let svg = SweepTimeline.svg(t) {
            plots.append(("trial.svg", "One trial on the timeline: \(t.cell), trial \(t.index + 1) (the cell's median detection)", svg))
        }
        if spec.fault == .delay {
            plots.insert(("tradeoff.svg", "Mistakes vs detection latency under the same delay", SVGPlots.tradeoff(summary, spec: spec)), at: 0)
        }
        return summary.tables(spec: spec).map { ReportFile(name: $0.name, text: $0.text) }
            + plots.map { ReportFile(name: $0.0, text: $0.2) }
            + [ReportFile(name: "report.md", text: markdown(spec: spec, plan: plan, summary: summary, context: context)),
               ReportFile(name: "report.html", text: SweepHTML.page(spec: spec, plan: plan, summary: summary, context: context,
                                                                             plots: plots.map { ($0.1, $0.2) }))]
    }
}
