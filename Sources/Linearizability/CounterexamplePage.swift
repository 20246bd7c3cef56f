/// A self-contained HTML page (inline SVG, no script, nothing fetched) that shows why a key is
/// not linearizable: one lane per client, each operation a bar from invocation to completion,
/// the order found numbered in green, the operation that cannot follow it in red.
public enum CounterexamplePage {
    public static func render(title: String, report: KeyReport) -> String {
        let ops = report.window
        let clients = Array(Set(ops.map(\.client))).sorted()
        let position = Dictionary(uniqueKeysWithValues: report.longestPrefix.enumerated().map { ($1.index, $0 + 1) })
        let culprits = Set(report.unplaceable.map(\.index))
        // Ordinal time: each distinct invocation or completion gets the next slot, so that short
        // operations between long gaps stay readable; only the order of events matters here.
        let times = Array(Set(ops.map(\.invoke) + ops.compactMap(\.complete))).sorted()
        let slot = Dictionary(uniqueKeysWithValues: times.enumerated().map { ($1, $0) })
        let step = max(34.0, min(90.0, 1000.0 / Double(max(times.count, 1))))
        let laneHeight = 44.0, left = 110.0, top = 20.0
        let openEnd = left + Double(times.count) * step + 20
        func x(_ t: Int64) -> Double { left + Double(slot[t] ?? 0) * step }

        var svg = ""
        for (lane, client) in clients.enumerated() {
            let y = top + Double(lane) * laneHeight
            svg += "<text x=\"8\" y=\"\(fmt(y + 24))\" class=\"lane\">client \(client)</text>"
            svg += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(y + laneHeight - 4))\" x2=\"\(fmt(openEnd))\" y2=\"\(fmt(y + laneHeight - 4))\" class=\"rule\"/>"
        }
        for op in ops {
            let lane = clients.firstIndex(of: op.client)!
            let y = top + Double(lane) * laneHeight + 6
            let x0 = x(op.invoke) + 2
            let x1 = op.complete.map(x) ?? openEnd
            let w = max(x1 - x0 - 2, 14)
            let kind = culprits.contains(op.index) ? "culprit" : position[op.index] != nil ? "placed" : "other"
            let dashed = op.complete == nil ? " open" : ""
            svg += "<g class=\"\(kind)\(dashed)\"><title>\(escape(op.text)) — client \(op.client), operation #\(op.index)"
                + "\(op.complete == nil ? ", never completed" : "")</title>"
            svg += "<rect x=\"\(fmt(x0))\" y=\"\(fmt(y))\" width=\"\(fmt(w))\" height=\"28\" rx=\"4\"/>"
            let tag = culprits.contains(op.index) ? "✗" : position[op.index].map(String.init) ?? "#\(op.index)"
            svg += "<text x=\"\(fmt(x0 + 4))\" y=\"\(fmt(y + 19))\">\(tag)</text></g>"
        }
        let height = top + Double(max(clients.count, 1)) * laneHeight + 10
        var rows = ""
        for op in ops {
            let mark = culprits.contains(op.index) ? "<td class=\"x\">✗ cannot come next</td>"
                : position[op.index].map { "<td class=\"n\">\($0)</td>" } ?? "<td>–</td>"
            rows += "<tr\(culprits.contains(op.index) ? " class=\"bad\"" : "")>\(mark)<td>#\(op.index)</td><td>client \(op.client)</td>"
                + "<td><code>\(escape(op.text))</code></td><td>\(op.complete == nil ? "never completed" : "")</td></tr>"
        }

        let prefixCount = report.longestPrefix.count
        let culpritText = report.unplaceable.map { "<b>\(escape($0.text))</b> by client \($0.client)" }.joined(separator: ", ")
        let shown = ops.filter { position[$0.index] != nil }.count
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escape(title)): not linearizable</title>
            <style>
            body { font: 15px/1.45 system-ui, sans-serif; margin: 24px; color: #1d1d1f; }
            h1 { font-size: 20px; margin: 0 0 6px; } p { margin: 6px 0; max-width: 70em; }
            .why { background: #fff1f0; border-left: 4px solid #d93025; padding: 8px 12px; }
            svg text { font: 12px ui-monospace, monospace; } text.lane { font-weight: 600; fill: #444; }
            .rule { stroke: #e3e3e3; }
            .placed rect { fill: #d7f5dd; stroke: #1e8e3e; } .culprit rect { fill: #fde0dd; stroke: #d93025; stroke-width: 2.5; }
            .other rect { fill: #f1f3f4; stroke: #9aa0a6; } .open rect { stroke-dasharray: 5 3; }
            table { border-collapse: collapse; margin-top: 10px; } td, th { padding: 2px 10px; text-align: left; border-bottom: 1px solid #eee; }
            td.n { color: #1e8e3e; font-weight: 600; } tr.bad td { background: #fde0dd; } td.x { color: #d93025; font-weight: 600; }
            .legend span { display: inline-block; padding: 1px 8px; margin-right: 10px; border-radius: 4px; border: 1px solid; }
            </style></head><body>
            <h1>\(escape(title)) — key \(escape(report.key.isEmpty ? "(single register)" : "\"\(report.key)\"")) is not linearizable</h1>
            <p class="why">\(prefixCount) of the key's \(report.operations) operations can take effect one at a time in the
            order numbered below (state then: <b>\(escape(report.stateAfterPrefix ?? "?"))</b>), but \(culpritText) cannot come
            next: it completed before any order of the operations still open could give its result.</p>
            <p class="legend"><span style="background:#d7f5dd;border-color:#1e8e3e">n. in the order found</span>
            <span style="background:#fde0dd;border-color:#d93025">✗ cannot be placed</span>
            <span style="background:#f1f3f4;border-color:#9aa0a6">not placed yet</span>
            <span style="border-style:dashed;border-color:#9aa0a6">never completed</span></p>
            <p>Each bar runs from the operation's invocation to its completion (events in time order, evenly spaced); an
            operation may take effect at any moment inside its bar. Shown: \(ops.count) operations around the failure
            (\(shown) of the order's last steps); hover a bar for its operation.</p>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(fmt(openEnd + 20))" height="\(fmt(height))" role="img">\(svg)</svg>
            <table><tr><th>order</th><th>op</th><th>client</th><th>operation</th><th></th></tr>\(rows)</table>
            </body></html>

            """
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    static func fmt(_ v: Double) -> String { String((v * 10).rounded() / 10) }
}
