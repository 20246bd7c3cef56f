import Core
import Linearizability

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

    /// One trial on the lab's timeline (the drawing linearizability runs use), from its recorded
    /// instants alone: the old leader's band until the fault and its fault after, the write from
    /// send to answer, the peers' detection, leader_lost and election, the first write served;
    /// every moment numbered and listed in ms from the fault's applied instant.
    public static func timeline(_ t: FailoverTrial) -> String {
        let zero = t.killAppliedMonoNs ?? t.killRequestedMonoNs
        let moments = [t.sendMonoNs, t.ackMonoNs, t.killRequestedMonoNs, t.killAppliedMonoNs, t.killEffectMonoNs, t.detectMonoNs,
                       t.leaderLostMonoNs, t.electedMonoNs, t.firstWriteMonoNs].compactMap { $0 }
        let lo = moments.min() ?? zero, hi = moments.max() ?? zero
        let pad = max((hi - lo) / 20, 1_000_000)
        let (start, end) = (lo - pad, hi + pad)
        let other = t.newLeader.map { $0 == t.leader ? "peers" : $0 } ?? "peers"
        var tl = Timeline(start: start, end: end, nodes: [t.leader, other], clients: [0])
        tl.add(span: .init(lane: t.leader, from: start, to: zero, kind: .leader, label: "g\(t.group) t\(t.term)"))
        let kind: Timeline.SpanKind = t.fault == .kill ? .down : t.fault == .stop ? .paused : .cut
        tl.add(span: .init(lane: t.leader, from: zero, to: end, kind: kind, label: t.fault.rawValue))
        if let e = t.electedMonoNs {
            tl.add(span: .init(lane: other, from: e, to: end, kind: .leader, label: "g\(t.group) t\(t.newTerm ?? 0)"))
        }
        func at(_ ns: Int64?, _ lane: String, _ what: String) {
            guard let ns else { return }
            tl.marks.append(.init(lane: lane, at: ns, label: "\(what): \(FixedText.fixed(Double(ns - zero) / 1e6, 2)) ms"))
        }
        at(t.killRequestedMonoNs, t.leader, "\(t.fault.rawValue) requested")
        at(t.killAppliedMonoNs, t.leader, "\(t.fault.rawValue) applied")
        at(t.killEffectMonoNs, t.leader, "effect seen")
        at(t.detectMonoNs, other, "a peer declares \(t.leader) dead")
        at(t.leaderLostMonoNs, other, "leader_lost")
        at(t.electedMonoNs, other, "leader_elected" + (t.newLeader.map { ": \($0)" } ?? "") + (t.newTerm.map { ", term \($0)" } ?? ""))
        at(t.sendMonoNs, "client 0", "write sent")
        at(t.ackMonoNs, "client 0", "write acknowledged")
        at(t.firstWriteMonoNs, "client 0", "first write served")
        tl.bars.append(.init(client: 0, from: t.sendMonoNs, to: t.ackMonoNs ?? end, outcome: t.ackMonoNs == nil ? .unknown : .ok,
                             text: "write \(t.key): survived \(t.survived.rawValue)", role: t.lostAcknowledged ? .culprit : .none))
        if let w = t.firstWriteMonoNs {
            tl.bars.append(.init(client: 0, from: w - 500_000, to: w, outcome: .ok, text: "first write served", role: .none))
        }
        return tl.svg(from: start, to: end, width: 1000, charts: false, numbered: true,
                      title: "\(FailoverSummary.cellName(t.cell)), trial \(t.index), key \(t.key): \(t.fault.rawValue) of \(t.leader) (term \(t.term), "
                          + "group \(t.group)); write \(t.ackMonoNs == nil ? "not acknowledged" : "acknowledged"), survived: \(t.survived.rawValue)")
    }
}
