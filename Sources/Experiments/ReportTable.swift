/// A table of a report, built once and rendered for report.md and report.html alike, so that the
/// two cannot drift apart.
public struct ReportTable: Sendable, Equatable {
    public var header: [String]
    public var rows: [[String]]
    /// Columns of text, aligned left in HTML; the others hold numbers and align right.
    public var leftAligned: Set<Int>

    public init(header: [String], leftAligned: Set<Int> = [0], rows: [[String]] = []) {
        self.header = header; self.leftAligned = leftAligned; self.rows = rows
    }

    public func markdown() -> String {
        var out = "| " + header.joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: header.count) + "\n"
        for row in rows { out += "| " + row.joined(separator: " | ") + " |\n" }
        return out
    }

    public func html() -> String {
        func cell(_ tag: String, _ column: Int, _ text: String) -> String {
            "<\(tag)\(leftAligned.contains(column) ? " class=l" : "")>\(SVGPlots.escape(text))</\(tag)>"
        }
        var h = "<table><tr>" + header.enumerated().map { cell("th", $0, $1) }.joined() + "</tr>"
        for row in rows { h += "<tr>" + row.enumerated().map { cell("td", $0, $1) }.joined() + "</tr>" }
        return h + "</table>"
    }
}

extension SweepSummary {
    /// Chen, Toueg and Aguilera's measures for each cell that had delay windows; nil when none had.
    var qualityTable: ReportTable? {
        let f = SweepReport.f
        let rows = self.rows.compactMap { r -> [String]? in
            guard let q = r.result.quality else { return nil }
            return [r.result.cell.detector.rawValue, String(r.result.cell.intervalMs), String(r.result.cell.timeoutMs),
                    f(q.windowMs / 1000), String(q.mistakes), f(q.mistakesPerMinute), f(q.meanRecurrenceMs.map { $0 / 1000 }),
                    f(q.meanDurationMs), SweepReport.format4(q.queryAccuracy), f(r.median?.median)]
        }
        if rows.isEmpty { return nil }
        return ReportTable(header: ["detector", "I ms", "T ms", "window s", "mistakes", "per min", "T_MR s", "T_M ms", "P_A",
                                    "median detection ms"], rows: rows)
    }
}

extension RunContext {
    /// One row per session of the run: where and when it ran, how many trials.
    var sessionsTable: ReportTable {
        ReportTable(header: ["session", "host", "started (UTC)", "ended", "trials run"], leftAligned: [1], rows: sessions.map {
            [String($0.number), $0.host, WallTime.text($0.startedWallMs), $0.endedWallMs.map(WallTime.text) ?? "-", String($0.trials)]
        })
    }
}
