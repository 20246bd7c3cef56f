/// Several failover runs side by side, cell by cell: the lab's answer to "why consensus?" is a
/// Raft run and a primary-backup run with the same delays, each cell's acknowledged writes that
/// survived (with its Wilson interval) and its recovery. Built from each run's spec and trials
/// alone, as `kvctl experiment compare` reads them from the run directories.
public enum FailoverComparison {
    public struct Run: Sendable {
        public var runID: String
        public var spec: FailoverSpec
        public var trials: [FailoverTrial]
        public init(runID: String, spec: FailoverSpec, trials: [FailoverTrial]) { self.runID = runID; self.spec = spec; self.trials = trials }

        /// The column's name: the store in a few words, and the run.
        var label: String {
            switch spec.mode {
            case .raft: return "Raft, \(spec.nodes) nodes (\(runID))"
            case .primaryBackup:
                return "primary-backup, \(spec.primaryBackup.replicationPath == .direct ? "direct" : "through the coordinator") (\(runID))"
            }
        }
    }

    /// The per-cell table: a row per (scenario, delay) of any run; "-" where a run has no such cell.
    public static func table(_ runs: [Run]) -> ReportTable {
        let summaries = runs.map { FailoverSummary(trials: $0.trials) }
        let cells = Array(Set(runs.flatMap { $0.trials.map(\.cell) })).sorted()
        var t = ReportTable(header: ["scenario"] + runs.flatMap { ["\($0.label): acknowledged survived", "recovery median"] })
        func figures(_ row: FailoverSummary.Row?) -> [String] {
            guard let row else { return ["-", "-"] }
            let s = row.survival
            let survival = s.trials == 0 ? "no acknowledged write"
                : "\(s.successes)/\(s.trials) [\(percent(s.low)), \(percent(s.high))]" + (s.successes < s.trials ? " LOST \(s.trials - s.successes)" : "")
            return [survival, OrderStatistics.percentile(row.recoveryMs, 50).map { ms($0) } ?? "-"]
        }
        for c in cells {
            let name = FailoverSummary.cellName(c)
            t.rows.append([name] + summaries.flatMap { s in figures(s.cells.first { $0.name == name }) })
        }
        t.rows.append(["all"] + summaries.flatMap { figures($0.overall) })
        return t
    }

    /// Cells some runs have and others lack: said, since a comparison of different delays is not one.
    static func unmatched(_ runs: [Run]) -> [String] {
        let sets = runs.map { Set($0.trials.map(\.cell)) }
        guard let all = sets.first.map({ sets.dropFirst().reduce($0) { $0.union($1) } }) else { return [] }
        let common = sets.dropFirst().reduce(sets.first ?? []) { $0.intersection($1) }
        return all.subtracting(common).sorted().map(FailoverSummary.cellName)
    }

    static func stores(_ runs: [Run]) -> [String] { runs.map { "\($0.runID): \($0.spec.storeDescription), fault \($0.spec.fault.rawValue)" } }

    public static func files(_ runs: [Run]) -> [ReportFile] {
        let t = table(runs)
        let missing = unmatched(runs)
        let note = missing.isEmpty ? nil : "Not in every run (compare like with like): " + missing.joined(separator: ", ")
        let lossy = runs.filter { FailoverSummary(trials: $0.trials).lost.count > 0 }.map(\.runID)
        let headline = lossy.isEmpty ? "No acknowledged write was lost in any run."
            : "Acknowledged writes were lost in " + lossy.joined(separator: ", ") + "."
        var md = "# Failover runs compared\n\n**\(headline)**\n\n" + stores(runs).map { "- \($0)\n" }.joined()
        md += "\nEach cell: acknowledged writes whose reads said they survived, of those read, with the Wilson 95% interval; "
            + "the median recovery (fault to the first acknowledged write).\n\n" + t.markdown()
        if let note { md += "\n\(note)\n" }
        let e = SVGPlots.escape
        var h = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Failover runs compared</title>\n"
            + SweepHTML.css(partial: !lossy.isEmpty) + "\n<h1>Failover runs compared</h1>\n"
            + "<div class=\"headline\">\(e(headline))</div>\n<ul>" + stores(runs).map { "<li>\(e($0))</li>" }.joined() + "</ul>\n"
            + "<p class=\"meta\">Each cell: acknowledged writes whose reads said they survived, of those read, with the Wilson 95% "
            + "interval; the median recovery (fault to the first acknowledged write).</p>" + t.html()
        if let note { h += "<p>\(e(note))</p>" }
        h += "</body></html>\n"
        return [ReportFile(name: "comparison.md", text: md), ReportFile(name: "comparison.html", text: h)]
    }

    /// One decimal, as the summary prints them: 43.9%, 100.0%.
    static func percent(_ x: Double) -> String {
        let tenths = Int((x * 1000).rounded())
        return "\(tenths / 10).\(tenths % 10)%"
    }

    static func ms(_ x: Double) -> String {
        x >= 1000 ? String(format1(x / 1000)) + " s" : String(format1(x)) + " ms"
    }

    private static func format1(_ x: Double) -> String {
        let v = (x * 10).rounded() / 10
        return v == v.rounded() ? String(Int(v)) : String(v)
    }
}
