import Core

/// The failover study's plots as SVG text, drawn with `SVGPlots`' pieces.
public enum FailoverPlots {
    /// Recovery time (kill to the first acknowledged write) against the kill delay: every trial
    /// a dot, each delay's median with its order-statistic interval, one colour per scenario.
    public static func recovery(_ trials: [FailoverTrial]) -> String {
        let width = 820.0, height = 440.0, x0 = 70.0, y0 = 50.0, pw = 500.0, ph = 320.0
        let points = trials.filter { $0.cell.scenario != .rapid }.compactMap { t in t.recoveryMs.map { (t, $0) } }
        let delays = Array(Set(points.map { $0.0.cell.killAfterMs })).sorted()
        let dmax = Double(max(delays.last ?? 1, 1))
        let xmin = -dmax * 0.06, xmax = dmax * 1.06
        let ymax = max(points.map(\.1).max() ?? 1, 1) * 1.1
        func px(_ v: Double) -> Double { x0 + (v - xmin) / (xmax - xmin) * pw }
        func py(_ v: Double) -> Double { y0 + ph - v / ymax * ph }
        var s = SVGPlots.open(width, height)
            + SVGPlots.text(width / 2, 24, "Recovery time vs kill delay (dots: trials; bars: median and its interval)",
                            size: 15, anchor: "middle", bold: true)
        s += SVGPlots.axes(x0, y0, pw, ph, xTicks: delays.map(Double.init), px: px,
                           yLabel: "kill to first acknowledged write (ms)", xLabel: "kill delay after the write (ms)",
                           yTicks: SVGPlots.ticks(0, ymax, 5), py: py)
        let series: [(FailoverScenario, String, Double)] = [(.acknowledged, "after the acknowledgement", -4), (.inFlight, "after the send", 4)]
        var legendY = y0 + 10
        for (k, (scenario, label, offset)) in series.enumerated() {
            let mine = points.filter { $0.0.cell.scenario == scenario }
            guard !mine.isEmpty else { continue }
            let color = SVGPlots.palette[k]
            for (i, (t, ms)) in mine.enumerated() {
                // A small spread sideways (by trial number) keeps equal values apart.
                let jitter = Double(i % 7 - 3) * 0.9
                s += "<circle cx=\"\(px(Double(t.cell.killAfterMs)) + offset + jitter)\" cy=\"\(py(ms))\" r=\"2.5\" fill=\"\(color)\" fill-opacity=\"0.45\"/>"
            }
            var line: [String] = []
            for d in delays {
                let xs = mine.filter { $0.0.cell.killAfterMs == d }.map(\.1)
                guard let m = OrderStatistics.medianCI(xs) else { continue }
                let x = px(Double(d)) + offset * 2.5
                s += "<line x1=\"\(x)\" x2=\"\(x)\" y1=\"\(py(m.low))\" y2=\"\(py(m.high))\" stroke=\"\(color)\" stroke-width=\"2\"/>"
                s += "<rect x=\"\(x - 4)\" y=\"\(py(m.median) - 4)\" width=\"8\" height=\"8\" fill=\"white\" stroke=\"\(color)\" stroke-width=\"2\"/>"
                line.append("\(x),\(py(m.median))")
            }
            s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(line.joined(separator: " "))\"/>"
            s += "<rect x=\"\(x0 + pw + 16)\" y=\"\(legendY - 4)\" width=\"8\" height=\"8\" fill=\"white\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            s += SVGPlots.text(x0 + pw + 30, legendY + 4, "kill \(label)", size: 12)
            legendY += 20
        }
        return s + "</svg>\n"
    }

    /// The trial the timeline shows: the first acknowledged write lost, if any, else of the
    /// shortest delay after the acknowledgement (write, kill and failover on one scale) the trial
    /// whose recovery is the median.
    public static func exemplar(_ trials: [FailoverTrial]) -> FailoverTrial? {
        if let lost = trials.first(where: \.lostAcknowledged) { return lost }
        let acknowledged = trials.filter { $0.cell.scenario == .acknowledged && $0.recoveryMs != nil }
        let shortest = acknowledged.map(\.cell.killAfterMs).min()
        let timed = acknowledged.filter { $0.cell.killAfterMs == shortest }.sorted { $0.recoveryMs! < $1.recoveryMs! }
        return timed.isEmpty ? trials.first : timed[timed.count / 2]
    }

    /// One trial to scale, in ms from the fault's applied instant: the write sent and
    /// acknowledged, the fault requested, applied and its effect seen, the peers' detection,
    /// leader lost, the new leader elected, the first write served, and the time without service.
    public static func timeline(_ t: FailoverTrial) -> String {
        let zero = t.killAppliedMonoNs ?? t.killRequestedMonoNs
        func ms(_ ns: Int64?) -> Double? { ns.map { Double($0 - zero) / 1e6 } }
        let marks: [(String, Double?, String)] = [
            ("write sent", ms(t.sendMonoNs), "#1f77b4"), ("write acknowledged", ms(t.ackMonoNs), "#1f77b4"),
            ("\(t.fault.rawValue) requested", ms(t.killRequestedMonoNs), "#d62728"), ("\(t.fault.rawValue) applied", ms(t.killAppliedMonoNs), "#d62728"),
            ("effect seen", ms(t.killEffectMonoNs), "#d62728"), ("peer detects (declared_dead)", ms(t.detectMonoNs), "#9467bd"),
            ("leader_lost", ms(t.leaderLostMonoNs), "#ff7f0e"),
            ("leader_elected" + (t.newLeader.map { ": \($0)" } ?? "") + (t.newTerm.map { ", term \($0)" } ?? ""), ms(t.electedMonoNs), "#2ca02c"),
            ("first write served", ms(t.firstWriteMonoNs), "#17becf"),
        ]
        let shown = marks.compactMap { m in m.1.map { (m.0, $0, m.2) } }
        let lo = min(0, shown.map(\.1).min() ?? 0), hi = max(1, shown.map(\.1).max() ?? 1)
        let span = hi - lo
        let width = 1000.0, x0 = 40.0, pw = 620.0, rowH = 22.0, top = 70.0
        let height = top + rowH * Double(shown.count) + 70
        func px(_ v: Double) -> Double { x0 + (v - (lo - span * 0.03)) / (span * 1.06) * pw }
        var s = SVGPlots.open(width, height)
            + SVGPlots.text(width / 2, 22, "One trial to scale: \(FailoverSummary.cellName(t.cell)), trial \(t.index), key \(t.key)",
                            size: 15, anchor: "middle", bold: true)
            + SVGPlots.text(width / 2, 42, "ms from the \(t.fault.rawValue) applied to \(t.leader) (term \(t.term), group \(t.group)); "
                            + "write \(t.ackMonoNs == nil ? "not acknowledged" : "acknowledged"), survived: \(t.survived.rawValue)",
                            size: 12, anchor: "middle", color: "#444")
        let axisY = top + rowH * Double(shown.count) + 8
        if let a = ms(t.killAppliedMonoNs), let w = ms(t.firstWriteMonoNs) {
            s += "<rect x=\"\(px(a))\" y=\"\(top - 12)\" width=\"\(max(1, px(w) - px(a)))\" height=\"\(axisY - top + 12)\" fill=\"#fde2e2\"/>"
            s += SVGPlots.text(px(a) + 4, top - 16, "no write served: \(SVGPlots.fmt(w - a)) ms", size: 11, color: "#a33")
        }
        for (k, m) in shown.enumerated() {
            let y = top + rowH * Double(k) + 10
            let x = px(m.1)
            s += "<line x1=\"\(x)\" x2=\"\(x)\" y1=\"\(y)\" y2=\"\(axisY)\" stroke=\"\(m.2)\" stroke-width=\"1\" stroke-dasharray=\"3,3\"/>"
            s += "<circle cx=\"\(x)\" cy=\"\(y)\" r=\"4\" fill=\"\(m.2)\"/>"
            s += SVGPlots.text(x0 + pw + 16, y + 4, "\(m.0): \(FixedText.fixed(m.1, 2)) ms", size: 12)
        }
        s += "<line x1=\"\(x0)\" x2=\"\(x0 + pw)\" y1=\"\(axisY)\" y2=\"\(axisY)\" stroke=\"#999\"/>"
        for tick in SVGPlots.ticks(lo, hi, 6) {
            s += "<line x1=\"\(px(tick))\" x2=\"\(px(tick))\" y1=\"\(axisY)\" y2=\"\(axisY + 4)\" stroke=\"#999\"/>"
            s += SVGPlots.text(px(tick), axisY + 16, SVGPlots.fmt(tick), size: 10, anchor: "middle", color: "#444")
        }
        s += SVGPlots.text(x0 + pw / 2, axisY + 34, "ms from the fault applied", size: 11, anchor: "middle", color: "#333")
        return s + "</svg>\n"
    }
}
