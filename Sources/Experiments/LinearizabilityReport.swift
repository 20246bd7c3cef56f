import Core
import Linearizability

/// A linearizability run's report from its files alone (spec, history, events, nemesis actions,
/// check): summary.txt, and report.html with the verdict, the counterexamples and the timeline,
/// split into pages of `pageSeconds`.
public enum LinearizabilityReport {
    public static let pageSeconds = 10

    /// The report from the run directory's files, read by `read` (nil: not there); `context`
    /// is given whether check.json was found (the run's one "trial").
    public static func files(spec: LinearizabilitySpec, read: (String) -> String?, context: (_ checked: Bool) -> RunContext) -> [ReportFile] {
        let check = read("check.json").flatMap { try? LinearizabilityCheck.decode($0) }
        let history = read("history.jsonl").flatMap { try? JSONLHistory.parseKV($0) } ?? []
        let excluded = read("excluded.jsonl").flatMap { try? JSONLHistory.parseKV($0) } ?? []
        let events = (read("events.jsonl") ?? "").split(separator: "\n").compactMap { try? Event.decode(jsonLine: $0) }
        let strikes = (read("nemesis.jsonl") ?? "").split(separator: "\n").count
        return files(spec: spec, context: context(check != nil), check: check, history: history, excluded: excluded, events: events,
                     nemesisLines: strikes)
    }

    /// `excluded`: the operations that surely took no effect, left out of the check (drawn as failed).
    public static func files(spec: LinearizabilitySpec, context c: RunContext, check: LinearizabilityCheck?,
                             history: [Operation<KVModel.Input, KVModel.Output>], excluded: [Operation<KVModel.Input, KVModel.Output>] = [],
                             events: [Event], nemesisLines: Int) -> [ReportFile] {
        let counted = counts(history, excluded: excluded, seconds: spec.durationS)
        return [ReportFile(name: "summary.txt", text: summary(spec: spec, context: c, check: check, counts: counted, nemesisLines: nemesisLines)),
                ReportFile(name: "report.html", text: html(spec: spec, context: c, check: check, history: history, excluded: excluded,
                                                           counts: counted, events: events, nemesisLines: nemesisLines))]
    }

    /// The verdict in one line: what `kvctl experiment status` and the page's headline say.
    public static func headline(_ check: LinearizabilityCheck?) -> String {
        guard let check else { return "no verdict: the run did not finish its history" }
        let failing = check.reports.filter { $0.verdict == .notLinearizable }.map(\.key)
        let unknown = check.reports.filter { $0.verdict == .unknown }.map(\.key)
        switch check.verdict {
        case .linearizable:
            return "LINEARIZABLE: \(check.operations) operations on \(check.reports.count) keys, checked in \(FixedText.fixed(check.elapsedMs, 0)) ms"
        case .notLinearizable:
            return "NOT LINEARIZABLE: key\(failing.count == 1 ? "" : "s") \(failing.joined(separator: ", ")) of \(check.reports.count); "
                + "\(check.operations) operations; see the counterexample"
        case .unknown:
            return check.operations == 0 ? "UNKNOWN: no operation was recorded"
                : "UNKNOWN: the check reached a limit on key\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", ")) (never a guess)"
        }
    }

    static func counts(_ history: [Operation<KVModel.Input, KVModel.Output>], excluded: [Operation<KVModel.Input, KVModel.Output>],
                       seconds: Int) -> String {
        let ok = history.filter { $0.outcome == .ok }.count, fail = history.filter { $0.outcome == .fail }.count
        let perSecond = Double(history.count + excluded.count) / Double(max(1, seconds))
        return "\(history.count) operations checked: \(ok) ok, \(fail) cas whose compare failed, \(history.count - ok - fail) unknown; "
            + "\(excluded.count) more took no effect (refused, never sent, a read unanswered) and are left out; "
            + "\(FixedText.fixed(perSecond, 0)) operations/s reached"
    }

    static func whatRan(_ spec: LinearizabilitySpec, nemesisLines: Int) -> String {
        let rate = spec.rate == 0 ? "closed loop" : "\(spec.rate) operations/s"
        let nemesis = spec.nemesis.isEmpty ? "no nemesis"
            : spec.nemesis.map { n in
                "\(n.fault.rawValue) \(n.target) every \(n.everyMs) ms" + (n.forMs.map { " for \($0) ms" } ?? "")
                    + (n.delayMs.map { " (\($0)±\(n.jitterMs ?? 0) ms)" } ?? "")
            }.joined(separator: "; ") + " (\(nemesisLines) strikes)"
        return "\(spec.layout.description); \(spec.clients) clients on \(spec.keys) keys, \(rate), \(spec.durationS) s, reads "
            + "\(spec.readPolicy.rawValue), operation timeout \(spec.opTimeoutMs) ms; nemesis: \(nemesis); seed \(spec.seed)"
    }

    static func summary(spec: LinearizabilitySpec, context c: RunContext, check: LinearizabilityCheck?, counts: String,
                        nemesisLines: Int) -> String {
        var lines = ["linearizability run \(c.runID): \(c.state.rawValue)" + (c.reason.map { " (\($0))" } ?? ""),
                     headline(check), counts, whatRan(spec, nemesisLines: nemesisLines)]
        for r in check?.reports ?? [] where r.verdict == .notLinearizable {
            lines.append("key \(r.key): \(r.longestPrefix.count) operations linearize, then none of: "
                         + r.unplaceable.map { "process \($0.client) \($0.text)" }.joined(separator: "; ")
                         + " (state \(r.stateAfterPrefix ?? "?")); \(LinearizabilityCheck.pageName(r.key))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func html(spec: LinearizabilitySpec, context c: RunContext, check: LinearizabilityCheck?,
                     history: [Operation<KVModel.Input, KVModel.Output>], excluded: [Operation<KVModel.Input, KVModel.Output>],
                     counts: String, events: [Event], nemesisLines: Int) -> String {
        let e = SVGPlots.escape
        let bad = check?.verdict != .linearizable
        var h = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Linearizability run \(e(c.runID))</title>\n"
            + SweepHTML.css(partial: c.state != .finished || bad) + "<style>\(Timeline.css) .pages a { margin-right: .6em; }</style>\n"
            + "<h1>Linearizability run <code>\(e(c.runID))</code></h1>\n"
            + "<div class=\"headline\">\(e(headline(check)))</div>\n"
            + "<p class=\"meta\">\(e(counts)). \(e(whatRan(spec, nemesisLines: nemesisLines))).</p>\n"
        let failing = check?.reports.filter { $0.verdict == .notLinearizable } ?? []
        if !failing.isEmpty {
            h += "<h2>Counterexamples</h2><ul>"
            for r in failing {
                h += "<li>key <code>\(e(r.key))</code>: \(r.longestPrefix.count) operations linearize (state "
                    + "\(e(r.stateAfterPrefix ?? "?"))), then none of "
                    + r.unplaceable.map { "<b>process \($0.client) \(e($0.text))</b>" }.joined(separator: ", ")
                    + " can follow. <a href=\"\(LinearizabilityCheck.pageName(r.key))\">The counterexample drawn</a>"
                    + (page(of: r, history: history).map { ", <a href=\"#page-\($0)\">on the timeline</a>" } ?? "") + ".</li>"
            }
            h += "</ul>"
        }
        // The time axis: the workload's span, with the events around it.
        let all = history + excluded
        let start = all.map(\.invoke).min() ?? events.first?.tMonoNs ?? 0
        let timeout = Int64(spec.opTimeoutMs) * 1_000_000
        // To the last answer: an unknown operation's bar is cut there, and the store's shutdown comes after.
        let end = max(all.compactMap(\.complete).max() ?? start, all.map(\.invoke).max() ?? start) + 1_000_000
        var timeline = Timeline(start: start, end: end, nodes: spec.layout.allNodes.map(\.rawValue), clients: Array(0..<spec.clients))
        // Up to the workload's end: the store's shutdown after it is not part of the run.
        timeline.add(events: events.filter { $0.tMonoNs < end }, deciders: spec.layout.mode == .primaryBackup ? ["NM"] : [])
        let marked = check?.counterexampleOps ?? (context: [], culprits: [])
        timeline.add(history: all, model: KVModel(), context: marked.context, culprits: marked.culprits, unknownNs: timeout)
        let pages = timeline.pages(seconds: pageSeconds)
        h += "<h2>Timeline</h2>" + Timeline.legend
        if pages.count > 1 {
            h += "<p class=\"pages\">Pages of \(pageSeconds) s: "
                + pages.indices.map { "<a href=\"#page-\($0 + 1)\">\($0 * pageSeconds)-\(($0 + 1) * pageSeconds) s</a>" }.joined() + "</p>"
        }
        for (i, p) in pages.enumerated() {
            h += "<h3 id=\"page-\(i + 1)\">\(i * pageSeconds)-\(min(spec.durationS + 1, (i + 1) * pageSeconds)) s</h3>"
                + "<div style=\"overflow-x:auto\">" + timeline.svg(from: p.from, to: p.to) + "</div>"
        }
        h += "<h2>Sessions</h2>" + c.sessionsTable.html()
        h += "<h2>Spec</h2><pre>\(e(c.specText))</pre></body></html>\n"
        return h
    }

    /// The timeline page that shows a counterexample's culprit.
    static func page(of r: KeyReport, history: [Operation<KVModel.Input, KVModel.Output>]) -> Int? {
        guard let start = history.map(\.invoke).min(), let op = r.unplaceable.first else { return nil }
        return Int((op.invoke - start) / (Int64(pageSeconds) * 1_000_000_000)) + 1
    }
}
