import Core

/// A failover run's figures from its trials alone (so `kvctl experiment report` can rebuild them
/// from trials.csv), and the plain-text summary in the original lab's shape.
public struct FailoverSummary: Sendable, Equatable {
    /// One group of trials: a delay of one scenario, or one of the original's scenario names.
    public struct Row: Sendable, Equatable {
        public var name: String
        public var trials: Int
        /// Acknowledged writes whose fate was read (both reads answered, or either said lost), and
        /// how many survived (Wilson 95%).
        public var survival: Proportion
        /// Acknowledged writes whose reads did not all answer and none said lost: left out of `survival`.
        public var unverified: Int
        /// Unacknowledged writes (in flight when the kill landed): survived, lost, unknown.
        public var inFlight: (survived: Int, lost: Int, unknown: Int)
        public var recoveryMs: [Double]
        public var electionMs: [Double]
        public var catchUpMs: [Double]

        public static func == (a: Row, b: Row) -> Bool {
            a.name == b.name && a.trials == b.trials && a.survival == b.survival && a.inFlight == b.inFlight
                && a.recoveryMs == b.recoveryMs && a.electionMs == b.electionMs && a.catchUpMs == b.catchUpMs
                && a.unverified == b.unverified
        }

        init(name: String, _ trials: [FailoverTrial]) {
            self.name = name
            self.trials = trials.count
            let acked = trials.filter { $0.ackMonoNs != nil }
            let read = acked.filter { $0.lostAcknowledged || ($0.survived == .yes && $0.survivedLater == .yes && $0.survivedFinal != .unknown) }
            survival = Proportion(successes: read.filter { !$0.lostAcknowledged }.count, of: read.count)
            unverified = acked.count - read.count
            let open = trials.filter { $0.ackMonoNs == nil }
            inFlight = (open.filter { $0.survived == .yes }.count, open.filter { $0.survived == .no }.count,
                        open.filter { $0.survived == .unknown }.count)
            recoveryMs = trials.compactMap(\.recoveryMs)
            electionMs = trials.compactMap(\.electionMs)
            catchUpMs = trials.compactMap(\.catchUpMs)
        }

        public var meanRecoveryMs: Double? { recoveryMs.isEmpty ? nil : recoveryMs.reduce(0, +) / Double(recoveryMs.count) }
    }

    public var overall: Row
    /// The original's scenarios: immediate, precision timed, during replication, in flight, rapid sequential.
    public var scenarios: [Row]
    /// One row per (scenario, delay) cell, in the plan's order.
    public var cells: [Row]
    /// Acknowledged writes reported lost: the failures the study exists to find.
    public var lost: [FailoverTrial]
    /// Unacknowledged writes read as lost that came back after the catch-up.
    public var reappeared: [FailoverTrial]
    /// Kill delay against recovery time, acknowledged scenario (nil: too few, or constant).
    public var delayVersusRecovery: RankCorrelation?
    /// Nodes the rapid cascade brought back between kills to keep a quorum (its rows with a restart
    /// before their write; the last row's later restart is the end's).
    public var rapidBroughtBack: Int
    /// Faults after which no leader was elected within 10 s (the store was replaced after each).
    public var withoutElection: Int

    public init(trials: [FailoverTrial]) {
        overall = Row(name: "all", trials)
        var byName: [String: [FailoverTrial]] = [:]
        var names: [String] = []
        for t in trials.sorted(by: { ($0.cell, $0.index) < ($1.cell, $1.index) }) {
            let name = Self.scenarioName(t.cell)
            if byName[name] == nil { names.append(name) }
            byName[name, default: []].append(t)
        }
        scenarios = names.map { Row(name: $0, byName[$0]!) }
        let cellKeys = Array(Set(trials.map(\.cell))).sorted()
        cells = cellKeys.map { c in Row(name: Self.cellName(c), trials.filter { $0.cell == c }) }
        lost = trials.filter(\.lostAcknowledged)
        reappeared = trials.filter(\.reappeared)
        let pairs = trials.filter { $0.cell.scenario == .acknowledged }.compactMap { t in t.recoveryMs.map { (Double(t.cell.killAfterMs), $0) } }
        delayVersusRecovery = RankCorrelation(pairs.map(\.0), pairs.map(\.1))
        rapidBroughtBack = trials.filter { t in t.cell.scenario == .rapid && t.restartMonoNs.map { $0 < t.sendMonoNs } == true }.count
        withoutElection = trials.filter { $0.killAppliedMonoNs != nil && $0.electedMonoNs == nil }.count
    }

    /// The original's names, the in-flight delays together.
    static func scenarioName(_ c: FailoverPlan.Cell) -> String {
        c.scenario == .inFlight ? "in flight" : FailoverScenario.originalName(c.scenario, killAfterMs: c.killAfterMs)
    }

    public static func cellName(_ c: FailoverPlan.Cell) -> String {
        switch c.scenario {
        case .acknowledged: return "kill \(c.killAfterMs) ms after the ack"
        case .inFlight: return "kill \(c.killAfterMs) ms after the send"
        case .rapid: return "rapid sequential"
        }
    }

    /// The plain-text summary, in the original's shape: a title, OVERALL RESULTS, SCENARIO
    /// BREAKDOWN with success rate and average recovery per scenario; then what the original did
    /// not have: intervals, medians and p99.
    public func text(runID: String, spec: FailoverSpec) -> String {
        func seconds(_ ms: Double?) -> String { ms.map { FixedText.fixed($0 / 1000, 3) + " s" } ?? "n/a" }
        func percent(_ x: Double) -> String { FixedText.fixed(x * 100, 1) + "%" }
        func rate(_ r: Row) -> String {
            guard let share = r.survival.share else { return "no acknowledged write" }
            return "\(r.survival.successes)/\(r.survival.trials) survived (\(percent(share)), 95% CI [\(percent(r.survival.low)), "
                + "\(percent(r.survival.high))])" + (r.unverified > 0 ? ", \(r.unverified) unverified (a read went unanswered)" : "")
        }
        func times(_ r: Row) -> String {
            "average recovery \(seconds(r.meanRecoveryMs)), median \(seconds(OrderStatistics.percentile(r.recoveryMs, 50))), "
                + "p90 \(seconds(OrderStatistics.percentile(r.recoveryMs, 90))), p99 \(seconds(OrderStatistics.percentile(r.recoveryMs, 99)))"
        }
        var out = ["=== FAILOVER TEST ANALYSIS REPORT ===",
                   "run \(runID): \(spec.storeDescription), fault \(spec.fault.rawValue)",
                   "",
                   "OVERALL RESULTS",
                   "  Total tests: \(overall.trials)",
                   "  Acknowledged writes: \(rate(overall))",
                   "  Writes in flight at the kill: \(overall.inFlight.survived) survived, \(overall.inFlight.lost) lost, "
                    + "\(overall.inFlight.unknown) unknown",
                   "  Recovery (kill to the first acknowledged write): \(times(overall))",
                   "  Election (kill to leader_elected): median \(seconds(OrderStatistics.percentile(overall.electionMs, 50)))"
                    + (withoutElection > 0 ? "; \(withoutElection) with no election within 10 s" : ""),
                   "  Original lab, for comparison: 12/12 survived, average recovery 1.245 s",
                   "",
                   "SCENARIO BREAKDOWN"]
        for r in scenarios {
            out.append("  \(r.name): \(r.trials) tests, \(rate(r)), \(times(r))")
        }
        if rapidBroughtBack > 0 {
            out.append("  (rapid sequential: \(rapidBroughtBack) node\(rapidBroughtBack == 1 ? "" : "s") brought back between kills "
                       + "to keep a quorum of \(spec.nodes))")
        }
        if !lost.isEmpty {
            out.append("")
            out.append("ACKNOWLEDGED WRITES LOST: \(lost.count)")
            for t in lost.prefix(20) {
                out.append("  \(Self.cellName(t.cell)), trial \(t.index): key \(t.key) written through \(t.leader) (term \(t.term)), "
                           + (t.survived == .no ? "not found after the failover"
                              : t.survivedLater == .no ? "gone once the killed node was back" : "gone at the session's final read"))
            }
        }
        if !reappeared.isEmpty {
            out.append("")
            out.append("UNACKNOWLEDGED WRITES READ AS LOST THAT CAME BACK: \(reappeared.count) (not linearizable)")
            for t in reappeared.prefix(20) { out.append("  \(Self.cellName(t.cell)), trial \(t.index): key \(t.key)") }
        }
        if let c = delayVersusRecovery {
            out.append("")
            out.append("Kill delay vs recovery: Spearman rho \(FixedText.fixed(c.rho, 2)), p = \(FixedText.fixed(c.pValue, 3)) "
                       + "(n = \(c.n), \(c.exact ? "exact" : "t approximation"))")
        }
        return out.joined(separator: "\n") + "\n"
    }
}

extension FailoverSummary {
    /// One row per (scenario, delay) cell: survival with its Wilson interval, the unacknowledged
    /// writes' fate, election and recovery (median with its order-statistic interval and that
    /// interval's true coverage, p90, p99, max) and the restarted node's catch-up.
    public var cellTable: ReportTable {
        func ms(_ x: Double?) -> String { x.map { FixedText.fixed($0, 1) } ?? "-" }
        func percent(_ x: Double) -> String { FixedText.fixed(x * 100, 1) }
        func median(_ xs: [Double]) -> String {
            guard let m = OrderStatistics.medianCI(xs) else { return "-" }
            return "\(ms(m.median)) [\(ms(m.low)), \(ms(m.high))]" + (m.is95 ? "" : " (\(m.coverageText))")
        }
        let rows = cells.map { r -> [String] in
            let survival = r.survival.trials == 0 ? "-"
                : "\(r.survival.successes)/\(r.survival.trials) [\(percent(r.survival.low)), \(percent(r.survival.high))]"
                    + (r.unverified > 0 ? " (+\(r.unverified) unverified)" : "")
            let open = r.inFlight.survived + r.inFlight.lost + r.inFlight.unknown
            return [r.name, String(r.trials), survival,
                    open == 0 ? "-" : "\(r.inFlight.survived) / \(r.inFlight.lost) / \(r.inFlight.unknown)",
                    median(r.electionMs), median(r.recoveryMs), ms(OrderStatistics.percentile(r.recoveryMs, 90)),
                    ms(OrderStatistics.percentile(r.recoveryMs, 99)), ms(r.recoveryMs.max()), median(r.catchUpMs)]
        }
        return ReportTable(header: ["scenario", "trials", "acknowledged survived [95% CI %]", "in flight: survived / lost / unknown",
                                    "election ms, median [CI]", "recovery ms, median [CI]", "p90", "p99", "max", "catch-up ms, median [CI]"],
                           rows: rows)
    }
}
