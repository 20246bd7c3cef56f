import Core

/// One file of a run's report (any kind's).
public struct ReportFile: Sendable {
    public var name: String
    public var text: String
    public init(name: String, text: String) { self.name = name; self.text = text }
}

/// Every file a failover run's report is made of, from its spec and its trials alone: what the
/// supervisor writes at the end of each session and `kvctl experiment report` writes again.
public enum FailoverReport {

    public static func files(spec: FailoverSpec, plan: FailoverPlan, trials: [FailoverTrial], context c: RunContext) -> [ReportFile] {
        let summary = FailoverSummary(trials: trials)
        var plots = [(name: "recovery.svg", title: "Recovery time against kill delay", svg: FailoverPlots.recovery(trials))]
        if let t = FailoverPlots.exemplar(trials) {
            plots.append(("timeline.svg", "The timeline of one trial (\(FailoverSummary.cellName(t.cell)), trial \(t.index))",
                          FailoverPlots.timeline(t)))
        }
        return [ReportFile(name: "summary.txt", text: summary.text(runID: c.runID, spec: spec)),
                ReportFile(name: "report.md", text: markdown(spec: spec, plan: plan, summary: summary, trials: trials, context: c,
                                                       plots: plots.map { ($0.name, $0.title) })),
                ReportFile(name: "report.html", text: html(spec: spec, plan: plan, summary: summary, trials: trials, context: c,
                                                     plots: plots.map { ($0.title, $0.svg) }))]
            + plots.map { ReportFile(name: $0.name, text: $0.svg) }
    }

    /// The first line of every report: how many acknowledged writes survived, and the recovery.
    static func headline(_ s: FailoverSummary) -> String {
        let r = s.overall
        let survival = r.survival.trials == 0 ? "no acknowledged write"
            : "\(r.survival.successes) of \(r.survival.trials) acknowledged writes survived "
                + "(95% CI [\(FixedText.fixed(r.survival.low * 100, 1))%, \(FixedText.fixed(r.survival.high * 100, 1))%])"
        let recovery = OrderStatistics.percentile(r.recoveryMs, 50).map { "; recovery median \(FixedText.fixed($0, 1)) ms" } ?? ""
        let unverified = r.unverified > 0 ? "; \(r.unverified) unverified (a read went unanswered)" : ""
        return survival + unverified + recovery + (s.lost.isEmpty ? "" : "; \(s.lost.count) LOST") + (s.reappeared.isEmpty ? "" : "; \(s.reappeared.count) lost writes came back")
    }

    static func whatRan(_ spec: FailoverSpec, _ plan: FailoverPlan, _ s: FailoverSummary) -> String {
        "\(spec.storeDescription); fault \(spec.fault.rawValue) of the key's \(spec.mode == .raft ? "leader" : "active node"); kill delays \(spec.killAfterMs.map(String.init).joined(separator: ", ")) ms, "
            + "\(spec.trials) trials each\(spec.inFlight ? ", after the acknowledgement and after the send" : "")"
            + (spec.rapidSequential > 0 ? ", then \(spec.rapidSequential) rapid sequential kills \(spec.rapidGapMs) ms after each write" : "")
            + (s.rapidBroughtBack > 0 ? " (\(s.rapidBroughtBack) nodes brought back between them to keep a quorum)" : "")
            + "; seed \(spec.seed); \(plan.trials.count) trials"
    }

    /// Medians of the steps recovery is made of, each from the fault applied.
    static func stepsTable(_ trials: [FailoverTrial]) -> ReportTable {
        func ms(_ from: (FailoverTrial) -> Int64?, _ to: (FailoverTrial) -> Int64?) -> [Double] {
            trials.compactMap { t in
                guard let a = from(t), let b = to(t) else { return nil }
                return Double(b - a) / 1e6
            }
        }
        func row(_ name: String, _ xs: [Double]) -> [String] {
            [name, String(xs.count), SweepReport.f(OrderStatistics.percentile(xs, 50)), SweepReport.f(OrderStatistics.percentile(xs, 90)),
             SweepReport.f(xs.max())]
        }
        return ReportTable(header: ["step (ms from the fault applied)", "trials", "median", "p90", "max"], rows: [
            row("applied past its planned instant (the fault's own timing)",
                trials.compactMap { t in t.killAfterObservedMs.map { $0 - Double(t.cell.killAfterMs) } }),
            row("effect seen (process gone, stopped, links cut)", ms(\.killAppliedMonoNs, \.killEffectMonoNs)),
            row("a peer's detector declares it dead", ms(\.killAppliedMonoNs, \.detectMonoNs)),
            row("leader_lost in the key's group", ms(\.killAppliedMonoNs, \.leaderLostMonoNs)),
            row("leader_elected in a later term", ms(\.killAppliedMonoNs, \.electedMonoNs)),
            row("first write acknowledged (recovery)", ms(\.killAppliedMonoNs, \.firstWriteMonoNs)),
            row("elected to first write", ms(\.electedMonoNs, \.firstWriteMonoNs)),
            row("restart to caught up (the killed node; not the cascade's)",
                trials.filter { $0.cell.scenario != .rapid }.compactMap(\.catchUpMs)),
        ])
    }

    static func overheadText(_ trials: [FailoverTrial]) -> String {
        let single = trials.filter { $0.cell.scenario != .rapid }
        let o = single.map(\.overheadMs), settle = single.map(\.settleMs)
        guard !o.isEmpty else { return "no trials" }
        let d = trials.map(\.durationMs)
        func f(_ xs: [Double]) -> String {
            "median \(SweepReport.f(OrderStatistics.percentile(xs, 50))) ms, p90 \(SweepReport.f(OrderStatistics.percentile(xs, 90))) ms, "
                + "max \(SweepReport.f(xs.max())) ms"
        }
        return "per trial beyond its own waits (a group led by its preferred node, the delay, the failover until both the detection "
            + "and the recovery, the catch-up): \(f(o)); the wait for a settled group: \(f(settle)); a whole trial: \(f(d)), "
            + "\(SweepReport.f(d.reduce(0, +) / 1000)) s in all"
    }

    static func correlationText(_ s: FailoverSummary) -> String {
        guard let c = s.delayVersusRecovery else { return "too few trials, or no variation, for a rank correlation" }
        return "Spearman rho \(FixedText.fixed(c.rho, 3)) between kill delay and recovery, p = \(FixedText.fixed(c.pValue, 4)) "
            + "(n = \(c.n), \(c.exact ? "exact" : "t approximation")): "
            + (c.pValue < 0.05 ? "recovery depends on when the kill lands" : "no evidence that recovery depends on when the kill lands")
    }

    static func partialNote(_ c: RunContext) -> String? {
        guard c.state != .finished else { return nil }
        return "This report is partial: the run is \(c.state.rawValue)" + (c.reason.map { " (\($0))" } ?? "")
            + ". `kvctl experiment resume \(c.runID)` continues it."
    }

    static func lostTable(_ s: FailoverSummary) -> ReportTable {
        ReportTable(header: ["scenario", "trial", "key", "leader (term)", "read after failover", "read after catch-up", "final read"],
                    leftAligned: [0, 2, 3],
                    rows: (s.lost + s.reappeared).map { t in
                        [FailoverSummary.cellName(t.cell), String(t.index), t.key, "\(t.leader) (\(t.term))", t.survived.rawValue,
                         t.survivedLater.rawValue, t.survivedFinal?.rawValue ?? "-"]
                    })
    }

    static func scenarioTable(_ s: FailoverSummary) -> ReportTable {
        ReportTable(header: ["scenario (the original's names)", "tests", "acknowledged survived", "average recovery s", "median s", "p99 s"],
                    rows: s.scenarios.map { r in
                        func sec(_ x: Double?) -> String { x.map { FixedText.fixed($0 / 1000, 3) } ?? "-" }
                        return [r.name, String(r.trials), r.survival.trials == 0 ? "-" : "\(r.survival.successes)/\(r.survival.trials)",
                                sec(r.meanRecoveryMs), sec(OrderStatistics.percentile(r.recoveryMs, 50)),
                                sec(OrderStatistics.percentile(r.recoveryMs, 99))]
                    })
    }

    static let originalNote = "The original lab's published run: 12 of 12 writes survived, average recovery 1.245 s "
        + "(a consensus store on Kubernetes, its own client timing)."

    public static func markdown(spec: FailoverSpec, plan: FailoverPlan, summary s: FailoverSummary, trials: [FailoverTrial],
                                context c: RunContext, plots: [(name: String, title: String)]) -> String {
        var out = "# Failover experiment \(c.runID)\n\n**\(headline(s))**\n\n"
        if let p = partialNote(c) { out += "> \(p)\n\n" }
        out += "## What ran\n\n\(whatRan(spec, plan, s)).\n\n"
        out += "Each trial: a fresh key of a group whose leader is its preferred node, written through that leader; the fault "
            + "`kill_after_ms` after the answer (or the send); the failover watched; the key read linearizably; the node brought back "
            + "and its catch-up timed; the key read again. \(originalNote)\n\n"
        out += "## Per scenario and delay\n\nSurvival of acknowledged writes with its Wilson 95% interval; medians with their "
            + "order-statistic interval and that interval's true coverage for its n.\n\n" + s.cellTable.markdown() + "\n"
        out += "## The original's breakdown\n\n" + scenarioTable(s).markdown() + "\n"
        if !s.lost.isEmpty || !s.reappeared.isEmpty { out += "## Writes lost\n\n" + lostTable(s).markdown() + "\n" }
        out += "## What recovery is made of\n\n" + stepsTable(trials).markdown() + "\n"
        out += "## Kill delay and recovery\n\n\(correlationText(s)).\n\n"
        out += "## Overhead\n\n\(overheadText(trials)).\n\n"
        out += "## Plots\n\n" + plots.map { "- [\($0.title)](\($0.name))" }.joined(separator: "\n") + "\n\n"
        out += "## Sessions\n\n" + c.sessionsTable.markdown() + "\n## Spec\n\n```toml\n\(c.specText)\n```\n"
        return out
    }

    public static func html(spec: FailoverSpec, plan: FailoverPlan, summary s: FailoverSummary, trials: [FailoverTrial],
                            context c: RunContext, plots: [(title: String, svg: String)]) -> String {
        let e = SVGPlots.escape
        let bad = !s.lost.isEmpty || !s.reappeared.isEmpty
        var h = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Failover experiment \(e(c.runID))</title>\n"
            + SweepHTML.css(partial: c.state != .finished || bad) + "\n"
            + "<h1>Failover experiment <code>\(e(c.runID))</code></h1>\n"
            + "<div class=\"headline\">\(e(headline(s)))"
            + (partialNote(c).map { "<br><b>Partial report</b>: " + e($0) } ?? "") + "</div>\n"
            + "<p class=\"meta\">\(e(whatRan(spec, plan, s))). \(e(originalNote))</p>\n"
        h += "<h2>Per scenario and delay</h2><p class=\"meta\">Survival of acknowledged writes with its Wilson 95% interval; "
            + "medians with their order-statistic interval and that interval's true coverage for its n.</p>" + s.cellTable.html()
        h += "<h2>The original's breakdown</h2>" + scenarioTable(s).html()
        if bad { h += "<h2>Writes lost</h2>" + lostTable(s).html() }
        h += "<h2>What recovery is made of</h2>" + stepsTable(trials).html()
        h += "<h2>Kill delay and recovery</h2><p>\(e(correlationText(s))).</p>"
        h += "<h2>Overhead</h2><p>\(e(overheadText(trials))).</p>"
        h += "<h2>Plots</h2>" + plots.map { "<figure><figcaption>\(e($0.title))</figcaption>\($0.svg)</figure>" }.joined()
        h += "<h2>Sessions</h2>" + c.sessionsTable.html()
        h += "<h2>Spec</h2><pre>\(e(c.specText))</pre></body></html>\n"
        return h
    }
}
