import Core
/// report.html: one self-contained page (styles and plots inline) that says in its first lines
/// what ran and whether the detector matched theory, then the tables and the plots.
public enum SweepHTML {
    public static func page(spec: DetectionSweepSpec, plan: SweepPlan, summary: SweepSummary, context c: RunContext,
                            plots: [(title: String, svg: String)]) -> String {
        let e = SVGPlots.escape
        let f = SweepReport.f
        let partial = c.state != .finished
        var h = """
            <!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Detection sweep \(e(c.runID))</title>
            \(css(partial: partial))
            <h1>Detection sweep <code>\(e(c.runID))</code></h1>
            <div class="headline">\(e(SweepReport.headline(summary: summary, context: c)))\(partial ? "<br><b>Partial report</b>: the run is \(e(c.state.rawValue))\(c.reason.map { " (" + e($0) + ")" } ?? ""); <code>kvctl experiment resume \(e(c.runID))</code> continues it." : "")</div>
            <p class="meta">fault <b>\(spec.fault.rawValue)</b>\(spec.fault == .delay ? " (\(spec.delayMs) ms ± \(spec.jitterMs) ms)" : ""),
            detector \(spec.detectors.map { "<b>\($0.rawValue)</b>" }.joined(separator: " and ")), \(spec.nodes) nodes,
            \(spec.trials) trials per cell, \(plan.cells.count) cells, seed \(spec.seed);
            host \(e(c.sessions.map(\.host).uniqued().joined(separator: ", "))); \(c.sessions.count) session\(c.sessions.count == 1 ? "" : "s").</p>

            """
        h += "<h2>Each cell against theory</h2><p class=\"meta\">A fixed detector notices a crash between T − I and T after it, "
            + "uniformly: median T − I/2. Green: every detection in [T − I, T + 5 ms] and the median's 95% CI covers theory; amber: in "
            + "bounds, but the 95% CI misses theory, or too few trials (under 6) for a 95% interval, whose true coverage is shown; "
            + "red: a miss or a detection out of bounds. False suspicions count every suspicion of a node that was up. Overhead: a trial's time beyond its phase "
            + "wait and its detection (restart, re-trust, bookkeeping)."
            + (spec.fault == .delay ? " Under the delay d ± j of these kills theory shifts to [T − I + d − j, T + d + j], median "
               + "T − I/2 + d; a kill while the detector already suspected the node counts as detected at once." : "") + "</p>"
        h += "<table><tr><th class=l>detector</th><th>I ms</th><th>T ms</th><th>trials</th><th>missed</th><th>false suspicions</th>"
            + "<th>median ms</th><th>interval</th><th>coverage</th><th>theory T − I/2</th><th>in bounds</th><th>p90</th><th>p99</th>"
            + "<th>overshoot p99</th><th>overhead median</th></tr>"
        for r in summary.rows {
            let cell = r.result.cell
            // Red: a miss or a detection out of bounds. Amber: in bounds, but the median's CI misses theory.
            var cls = r.result.missed > 0 || r.outOfBounds > 0 ? "bad" : ""
            if cls.isEmpty, let t = r.theory, let m = r.median { cls = m.is95 && m.covers(t.medianMs) ? "good" : "warn" }
            h += "<tr class=\"\(cls)\"><td class=l>\(cell.detector.rawValue)</td><td>\(cell.intervalMs)</td><td>\(cell.timeoutMs)</td>"
                + "<td>\(r.result.trials)</td><td>\(r.result.missed)</td><td>\(r.result.falseSuspicions)</td><td>\(f(r.median?.median))</td>"
                + "<td>\(r.median.map { "[\(f($0.low)), \(f($0.high))]" } ?? "-")</td><td>\(r.median?.coverageText ?? "-")</td><td>\(f(r.theory?.medianMs))</td>"
                + "<td>\(r.theory == nil ? "-" : "\(r.result.latenciesMs.count - r.outOfBounds)/\(r.result.latenciesMs.count)")</td>"
                + "<td>\(f(r.p90))</td><td>\(f(r.p99))</td><td>\(f(r.overshootP99))</td><td>\(f(r.medianOverheadMs))</td></tr>"
        }
        h += "</table>"
        if let quality = summary.qualityTable {
            h += "<h2>Detector quality under delay</h2><p class=\"meta\">Chen, Toueg and Aguilera: T<sub>MR</sub> mistake recurrence, "
                + "T<sub>M</sub> mistake duration, P<sub>A</sub> query accuracy.</p>" + quality.html()
        }
        h += "<h2>Plots</h2>"
        for p in plots { h += "<figure><figcaption>\(e(p.title))</figcaption>\(p.svg)</figure>" }
        h += "<h2>Sessions</h2>" + c.sessionsTable.html()
        h += "<h2>Spec</h2><pre>\(e(c.specText))</pre></body></html>\n"
        return h
    }
}

extension SweepHTML {
    /// The reports' one style sheet, closing the head: the headline amber when the run is partial.
    static func css(partial: Bool) -> String {
        """
            <style>
            body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:24px 32px;color:#111;max-width:1400px}
            h1{font-size:22px;margin:0 0 8px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
            .headline{font-size:16px;padding:12px 16px;border-radius:6px;background:\(partial ? "#fff4e5" : "#eef7ee");
              border:1px solid \(partial ? "#f0b35a" : "#8cc78c")}
            .meta{color:#444;font-size:13px;margin:6px 0 0}
            table{border-collapse:collapse;font-size:13px;margin:6px 0} th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
            th{background:#f3f3f3} td.l,th.l{text-align:left} .bad{background:#fde2e2} .warn{background:#fff4d6} .good{background:#e6f4e6}
            pre{background:#f6f6f6;padding:10px;font-size:12px;overflow:auto} figure{margin:12px 0}
            figcaption{font-size:13px;color:#333;margin-bottom:4px}
            </style></head><body>
            """
    }
}

extension Array where Element: Hashable {
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
