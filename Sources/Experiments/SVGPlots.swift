/// The sweep's plots as SVG text: no library, no script, so they open anywhere and inline into
/// report.html. Every plot has labelled axes and says what the dashed lines are.
public enum SVGPlots {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
    static let font = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\""

    /// Median detection latency per cell, one grid per detector: rows timeouts, columns intervals.
    public static func heatmap(_ summary: SweepSummary, spec: DetectionSweepSpec) -> String {
        let cw = 120.0, ch = 56.0, left = 110.0, top = 58.0
        let gridW = cw * Double(spec.intervalsMs.count), gridH = ch * Double(spec.timeoutsMs.count)
        // Each detector's grid gets at least the width of its title.
        let stride = max(gridW, 300) + 40
        let width = max(640, left + stride * Double(spec.detectors.count) + 10), height = top + gridH + 50
        let medians = summary.rows.compactMap { $0.median?.median }
        let lo = medians.min() ?? 0, hi = max(medians.max() ?? 1, lo + 1)
        var s = open(width, height) + text(width / 2, 22, "Median detection latency (ms) per cell; theory T - I/2 below it", size: 15, anchor: "middle", bold: true)
        for (k, detector) in spec.detectors.enumerated() {
            let x0 = left + Double(k) * stride
            s += text(x0 + gridW / 2, top - 20, "\(detector.rawValue) detector: heartbeat interval I (ms)", size: 12, anchor: "middle")
            for (ci, interval) in spec.intervalsMs.enumerated() {
                s += text(x0 + (Double(ci) + 0.5) * cw, top - 5, "\(interval)", size: 12, anchor: "middle")
            }
            for (ri, timeout) in spec.timeoutsMs.enumerated() {
                let y = top + Double(ri) * ch
                if k == 0 { s += text(left - 10, y + ch / 2 + 4, "T = \(timeout)", size: 12, anchor: "end") }
                for (ci, interval) in spec.intervalsMs.enumerated() {
                    let x = x0 + Double(ci) * cw
                    let row = summary.rows.first { $0.result.cell == .init(intervalMs: interval, timeoutMs: timeout, detector: detector) }
                    guard let row, let m = row.median?.median else {
                        s += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cw - 2)\" height=\"\(ch - 2)\" fill=\"#eeeeee\"/>"
                        s += text(x + cw / 2, y + ch / 2 + 4, row == nil ? "skipped" : "no data", size: 11, anchor: "middle", color: "#777")
                        continue
                    }
                    let t = (m - lo) / (hi - lo)
                    s += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cw - 2)\" height=\"\(ch - 2)\" fill=\"\(heat(t))\"/>"
                    let ink = t > 0.55 ? "#ffffff" : "#111111"
                    s += text(x + cw / 2, y + 24, fmt(m), size: 16, anchor: "middle", color: ink, bold: true)
                    if let theory = row.theory { s += text(x + cw / 2, y + 42, "theory \(fmt(theory.medianMs))", size: 11, anchor: "middle", color: ink) }
                }
            }
        }
        s += text(left - 10, top - 5, "timeout", size: 12, anchor: "end")
        return s + "</svg>\n"
    }

    /// One small panel per cell: the measured latency CDF, and for a fixed detector the
    /// theoretical uniform CDF on [T - I, T] dashed beside it.
    public static func cdf(_ summary: SweepSummary, spec: DetectionSweepSpec) -> String {
        let rows = summary.rows.filter { !$0.result.latenciesMs.isEmpty }
        let cols = max(1, min(spec.intervalsMs.count, 3)), pw = 250.0, ph = 170.0, pad = 52.0
        let nrows = (rows.count + cols - 1) / cols
        let width = max(720, Double(cols) * (pw + pad) + pad), height = 50 + Double(nrows) * (ph + pad + 10)
        var s = open(width, height) + text(width / 2, 22, "Detection latency CDF per cell (solid) and theory, uniform on [T - I, T] (dashed)",
                                           size: 15, anchor: "middle", bold: true)
        for (k, r) in rows.enumerated() {
            let x0 = pad + Double(k % cols) * (pw + pad), y0 = 50 + Double(k / cols) * (ph + pad + 10)
            let cell = r.result.cell
            let xs = r.result.latenciesMs.sorted()
            let xmax = max(xs.last ?? 1, Double(cell.timeoutMs)) * 1.08
            let xmin = min(xs.first ?? 0, r.theory?.lowMs ?? xs.first ?? 0) * 0.9
            func px(_ v: Double) -> Double { x0 + (v - xmin) / (xmax - xmin) * pw }
            func py(_ p: Double) -> Double { y0 + ph - p * ph }
            s += axes(x0, y0, pw, ph, xTicks: ticks(xmin, xmax, 4), px: px, yLabel: "P(latency <= x)", xLabel: "ms")
            s += text(x0 + pw / 2, y0 - 6, "\(cell) (n=\(xs.count))", size: 12, anchor: "middle", bold: true)
            if let t = r.theory {
                s += "<polyline fill=\"none\" stroke=\"#666\" stroke-width=\"1.5\" stroke-dasharray=\"5,4\" points=\""
                    + "\(px(xmin)),\(py(0)) \(px(t.lowMs)),\(py(0)) \(px(t.highMs)),\(py(1)) \(px(xmax)),\(py(1))\"/>"
            }
            var pts = "\(px(xmin)),\(py(0))"
            for (i, v) in xs.enumerated() {
                pts += " \(px(v)),\(py(Double(i) / Double(xs.count))) \(px(v)),\(py(Double(i + 1) / Double(xs.count)))"
            }
            pts += " \(px(xmax)),\(py(1))"
            s += "<polyline fill=\"none\" stroke=\"\(palette[0])\" stroke-width=\"2\" points=\"\(pts)\"/>"
        }
        return s + "</svg>\n"
    }

    /// Median latency against timeout with interval bars (95% from 6 trials), a series per (detector, interval), and
    /// the theoretical median T - I/2 dashed in the series' colour.
    public static func latency(_ summary: SweepSummary, spec: DetectionSweepSpec) -> String {
        let width = 720.0, height = 440.0, x0 = 70.0, y0 = 50.0, pw = 480.0, ph = 320.0
        let rows = summary.rows.filter { $0.median != nil }
        let tmin = Double(spec.timeoutsMs.min() ?? 0), tmax = Double(spec.timeoutsMs.max() ?? 1)
        let xmin = tmin - max(20, (tmax - tmin) * 0.08), xmax = tmax + max(20, (tmax - tmin) * 0.08)
        let ymax = max(rows.compactMap { $0.median?.high }.max() ?? 1, tmax) * 1.1
        func px(_ v: Double) -> Double { x0 + (v - xmin) / (xmax - xmin) * pw }
        func py(_ v: Double) -> Double { y0 + ph - v / ymax * ph }
        var s = open(width, height) + text(width / 2, 24, "Median detection latency vs timeout (bars: order-statistic interval, 95% from 6 trials; dashed: T - I/2)",
                                           size: 15, anchor: "middle", bold: true)
        s += axes(x0, y0, pw, ph, xTicks: spec.timeoutsMs.map(Double.init), px: px, yLabel: "detection latency (ms)",
                  xLabel: "hb_timeout_ms", yTicks: ticks(0, ymax, 5), py: py)
        var legendY = y0 + 10
        var series = 0
        for detector in spec.detectors {
            for interval in spec.intervalsMs {
                let mine = rows.filter { $0.result.cell.detector == detector && $0.result.cell.intervalMs == interval }
                    .sorted { $0.result.cell.timeoutMs < $1.result.cell.timeoutMs }
                guard !mine.isEmpty else { continue }
                let color = palette[series % palette.count]
                series += 1
                let dash = detector == .phi ? " stroke-dasharray=\"2,2\"" : ""
                let theory = mine.compactMap { r in r.theory.map { (Double(r.result.cell.timeoutMs), $0.medianMs) } }
                if theory.count > 0 {
                    s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-opacity=\"0.6\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\" points=\""
                        + theory.map { "\(px($0.0)),\(py($0.1))" }.joined(separator: " ") + "\"/>"
                }
                let offset = Double(series - 1) * 4 - 6
                s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash) points=\""
                    + mine.map { "\(px(Double($0.result.cell.timeoutMs)) + offset),\(py($0.median!.median))" }.joined(separator: " ") + "\"/>"
                for r in mine {
                    let x = px(Double(r.result.cell.timeoutMs)) + offset, m = r.median!
                    s += "<line x1=\"\(x)\" x2=\"\(x)\" y1=\"\(py(m.low))\" y2=\"\(py(m.high))\" stroke=\"\(color)\" stroke-width=\"1.5\"/>"
                    s += "<circle cx=\"\(x)\" cy=\"\(py(m.median))\" r=\"4\" fill=\"\(detector == .phi ? "white" : color)\" stroke=\"\(color)\" stroke-width=\"2\"/>"
                }
                s += "<circle cx=\"\(x0 + pw + 20)\" cy=\"\(legendY)\" r=\"4\" fill=\"\(detector == .phi ? "white" : color)\" stroke=\"\(color)\" stroke-width=\"2\"/>"
                s += text(x0 + pw + 30, legendY + 4, "\(detector.rawValue), I = \(interval) ms", size: 12)
                legendY += 20
            }
        }
        return s + "</svg>\n"
    }

    /// Delay runs: each cell's mistake rate against its detection latency under the same delay,
    /// a curve per detector through its cells in order of timeout.
    public static func tradeoff(_ summary: SweepSummary, spec: DetectionSweepSpec) -> String {
        let width = 720.0, height = 440.0, x0 = 70.0, y0 = 50.0, pw = 480.0, ph = 320.0
        let rows = summary.rows.filter { $0.result.quality != nil && $0.median != nil }
        let xmax = max(rows.map { $0.result.quality!.mistakesPerMinute }.max() ?? 1, 1) * 1.1
        let ymax = max(rows.map { $0.median!.median }.max() ?? 1, 1) * 1.15
        func px(_ v: Double) -> Double { x0 + v / xmax * pw }
        func py(_ v: Double) -> Double { y0 + ph - v / ymax * ph }
        var s = open(width, height) + text(width / 2, 24, "Trade-off under \(spec.delayMs) +- \(spec.jitterMs) ms delay: "
                                           + "mistakes vs detection latency", size: 15, anchor: "middle", bold: true)
        s += axes(x0, y0, pw, ph, xTicks: ticks(0, xmax, 5), px: px, yLabel: "median detection latency (ms)",
                  xLabel: "false suspicions per minute", yTicks: ticks(0, ymax, 5), py: py)
        var legendY = y0 + 10
        for (k, detector) in spec.detectors.enumerated() {
            let color = palette[k % palette.count]
            for interval in spec.intervalsMs {
                let mine = rows.filter { $0.result.cell.detector == detector && $0.result.cell.intervalMs == interval }
                    .sorted { $0.result.cell.timeoutMs < $1.result.cell.timeoutMs }
                guard !mine.isEmpty else { continue }
                s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\""
                    + mine.map { "\(px($0.result.quality!.mistakesPerMinute)),\(py($0.median!.median))" }.joined(separator: " ") + "\"/>"
                for r in mine {
                    let x = px(r.result.quality!.mistakesPerMinute), y = py(r.median!.median)
                    s += "<circle cx=\"\(x)\" cy=\"\(y)\" r=\"4\" fill=\"\(color)\"/>"
                    s += text(x + 6, y - 6, "I=\(interval) T=\(r.result.cell.timeoutMs)", size: 10, color: "#444")
                }
            }
            s += "<circle cx=\"\(x0 + pw + 20)\" cy=\"\(legendY)\" r=\"4\" fill=\"\(color)\"/>"
            s += text(x0 + pw + 30, legendY + 4, detector.rawValue, size: 12)
            legendY += 20
        }
        return s + "</svg>\n"
    }

    // MARK: Pieces

    static func open(_ w: Double, _ h: Double) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" viewBox=\"0 0 \(Int(w)) \(Int(h))\">"
            + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
    }

    static func text(_ x: Double, _ y: Double, _ s: String, size: Int, anchor: String = "start", color: String = "#111",
                     bold: Bool = false) -> String {
        "<text x=\"\(x)\" y=\"\(y)\" \(font) font-size=\"\(size)\" text-anchor=\"\(anchor)\" fill=\"\(color)\""
            + (bold ? " font-weight=\"bold\"" : "") + ">\(escape(s))</text>"
    }

    static func axes(_ x0: Double, _ y0: Double, _ w: Double, _ h: Double, xTicks: [Double], px: (Double) -> Double,
                     yLabel: String, xLabel: String, yTicks: [Double] = [0, 0.5, 1], py: ((Double) -> Double)? = nil) -> String {
        let py = py ?? { y0 + h - $0 * h }
        var s = "<rect x=\"\(x0)\" y=\"\(y0)\" width=\"\(w)\" height=\"\(h)\" fill=\"none\" stroke=\"#999\"/>"
        for t in xTicks {
            s += "<line x1=\"\(px(t))\" x2=\"\(px(t))\" y1=\"\(y0 + h)\" y2=\"\(y0 + h + 4)\" stroke=\"#999\"/>"
            s += text(px(t), y0 + h + 16, fmt(t), size: 10, anchor: "middle", color: "#444")
        }
        for t in yTicks {
            s += "<line x1=\"\(x0)\" x2=\"\(x0 + w)\" y1=\"\(py(t))\" y2=\"\(py(t))\" stroke=\"#eee\"/>"
            s += text(x0 - 5, py(t) + 3, fmt(t), size: 10, anchor: "end", color: "#444")
        }
        s += text(x0 + w / 2, y0 + h + 32, xLabel, size: 11, anchor: "middle", color: "#333")
        s += "<text transform=\"translate(\(x0 - 38),\(y0 + h / 2)) rotate(-90)\" \(font) font-size=\"11\" text-anchor=\"middle\" "
            + "fill=\"#333\">\(escape(yLabel))</text>"
        return s
    }

    static func ticks(_ lo: Double, _ hi: Double, _ n: Int) -> [Double] {
        let raw = (hi - lo) / Double(n)
        guard raw > 0 else { return [lo] }
        var step = 1.0
        while step * 10 <= raw { step *= 10 }
        while step > raw { step /= 10 }
        for m in [1.0, 2.0, 5.0, 10.0] where step * m >= raw { step *= m; break }
        var out: [Double] = []
        var t = (lo / step).rounded(.up) * step
        while t <= hi + 1e-9 { out.append(t); t += step }
        return out
    }

    /// Pale yellow to dark red.
    static func heat(_ t: Double) -> String {
        let c = max(0, min(1, t))
        let r = Int(255 - 80 * c), g = Int(240 - 200 * c), b = Int(190 - 160 * c)
        return "rgb(\(r),\(g),\(b))"
    }

    static func fmt(_ x: Double) -> String {
        abs(x) >= 100 || x == x.rounded() ? String(Int(x.rounded())) : SweepTables.number((x * 10).rounded() / 10)
    }

    static func escape(_ s: String) -> String {
        s.replacingAll("&", "&amp;").replacingAll("<", "&lt;").replacingAll(">", "&gt;").replacingAll("\"", "&quot;")
    }
}

extension String {
    func replacingAll(_ a: String, _ b: String) -> String {
        guard contains(a) else { return self }
        return split(separator: a, omittingEmptySubsequences: false).joined(separator: b)
    }
}
