import SplitMix

/// What one failover trial tests: when the kill lands, relative to the write.
public enum FailoverScenario: String, Sendable, CaseIterable, Comparable {
    /// `d` ms after the write was acknowledged: an acknowledged write must survive.
    case acknowledged
    /// `d` ms after the write was sent, before its answer: it may or may not survive, and a write
    /// reported lost must never reappear.
    case inFlight = "in_flight"
    /// A cascade: the new leader killed as soon as it is elected, a write before each kill.
    case rapid

    public static func < (a: Self, b: Self) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }

    /// The original lab's scenario names, for its report's breakdown: immediate (0 ms), precision
    /// timed (10, 25, 75 ms), during replication (50, 100, 200 ms), rapid sequential.
    public static func originalName(_ scenario: Self, killAfterMs d: Int) -> String {
        switch scenario {
        case .rapid: return "rapid sequential"
        case .inFlight: return "in flight (\(d) ms after send)"
        case .acknowledged:
            switch d {
            case 0: return "immediate"
            case 10, 25, 75: return "precision timed"
            case 50, 100, 200: return "during replication"
            default: return "kill after \(d) ms"
            }
        }
    }
}

/// The trials of a failover run, in the order they run: each round runs every (scenario, delay)
/// cell once, in an order shuffled by the seed, so that a drift of the machine over the run
/// (page cache, other load) spreads over every delay instead of biasing the last ones. The rapid
/// cascade comes last, one trial per kill.
public struct FailoverPlan: Sendable, Equatable {
    public struct Cell: Sendable, Hashable, Comparable {
        public var scenario: FailoverScenario
        public var killAfterMs: Int
        public init(scenario: FailoverScenario, killAfterMs: Int) { self.scenario = scenario; self.killAfterMs = killAfterMs }
        public static func < (a: Self, b: Self) -> Bool { (a.scenario, a.killAfterMs) < (b.scenario, b.killAfterMs) }
    }
    public struct Trial: Sendable, Hashable {
        public var cell: Cell
        public var index: Int
    }

    public var cells: [Cell]
    public var trials: [Trial]

    public init(_ spec: FailoverSpec) {
        var cells = spec.killAfterMs.map { Cell(scenario: .acknowledged, killAfterMs: $0) }
        if spec.inFlight { cells += spec.killAfterMs.map { Cell(scenario: .inFlight, killAfterMs: $0) } }
        var rng = SplitMix64(seed: spec.seed)
        var trials: [Trial] = []
        for round in 0..<spec.trials {
            // Fisher-Yates on the seed's own draws: the same order from one Swift release to the next.
            var order = cells
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            trials += order.map { Trial(cell: $0, index: round) }
        }
        if spec.rapidSequential > 0 {
            let rapid = Cell(scenario: .rapid, killAfterMs: spec.rapidGapMs)
            cells.append(rapid)
            trials += (0..<spec.rapidSequential).map { Trial(cell: rapid, index: $0) }
        }
        self.cells = cells
        self.trials = trials
    }
}

/// One finished failover trial, as `trials.csv` holds it: every instant it went through
/// (monotonic ns of the supervisor's host), so that every figure of the report can be rebuilt
/// from the file alone (`kvctl experiment report`).
public struct FailoverTrial: Sendable, Equatable {
    public enum Write: String, Sendable { case ok, timeout, error }
    public enum Survival: String, Sendable { case yes, no, unknown }

    public var session: Int
    public var cell: FailoverPlan.Cell
    public var index: Int
    public var fault: FailoverSpec.Fault
    public var group: Int
    public var key: String
    /// The key's group leader the moment before the write, and its term.
    public var leader: String
    public var term: UInt64
    public var startWallMs: Int64
    public var sendMonoNs: Int64
    /// nil: no acknowledgement (in flight when the kill landed, or refused).
    public var ackMonoNs: Int64?
    public var write: Write
    /// The fault engine's three times: asked for, applied (the signal sent), effect (seen).
    public var killRequestedMonoNs: Int64
    public var killAppliedMonoNs: Int64?
    /// The fault's effect seen: the process gone (kill), stopped (stop), or the links cut.
    public var killEffectMonoNs: Int64?
    /// The first peer's declared_dead of the leader, the first leader_lost, and leader_elected of
    /// the key's group after the kill.
    public var detectMonoNs: Int64?
    public var leaderLostMonoNs: Int64?
    public var electedMonoNs: Int64?
    public var newLeader: String?
    public var newTerm: UInt64?
    /// The first write acknowledged after the kill: the store serves again.
    public var firstWriteMonoNs: Int64?
    /// Whether a linearizable read after the failover returned the value written.
    public var survived: Survival
    /// The same read once the killed node was back and caught up: an acknowledged write must still
    /// be there, and an unacknowledged one read as lost must not have come back.
    public var survivedLater: Survival
    /// A last read at the end of the session, once every group's leader was back on its node
    /// (`final-reads.csv`, merged in when the run's files are read; nil: not read).
    public var survivedFinal: Survival?
    /// The killed node brought back (started, continued or healed), and the moment its applied
    /// index reached `catchUpIndex`. In the rapid cascade: the node brought back before this kill
    /// to keep a quorum (a restart before the write), or on the last row the last one brought back
    /// at the end.
    public var restartMonoNs: Int64?
    public var caughtUpMonoNs: Int64?
    /// The index the restarted node had to apply: the largest of the commit index the old leader
    /// last reported before the kill, the write's own index, and the index of the first write the
    /// new leader served (so the node has heard from the new leader).
    public var catchUpIndex: UInt64?
    /// How long the trial waited, before its write, for a group led by its preferred node (the
    /// leader a killed node gets back from the balancer about a second after its catch-up).
    public var settleMs: Double
    /// The trial's wall time, start to end, restart and catch-up included.
    public var durationMs: Double

    public init(session: Int, cell: FailoverPlan.Cell, index: Int, fault: FailoverSpec.Fault, group: Int, key: String, leader: String,
                term: UInt64, startWallMs: Int64, sendMonoNs: Int64, ackMonoNs: Int64?, write: Write, killRequestedMonoNs: Int64,
                killAppliedMonoNs: Int64?, killEffectMonoNs: Int64? = nil, detectMonoNs: Int64? = nil, leaderLostMonoNs: Int64? = nil, electedMonoNs: Int64? = nil,
                newLeader: String? = nil, newTerm: UInt64? = nil, firstWriteMonoNs: Int64? = nil, survived: Survival,
                survivedLater: Survival = .unknown, restartMonoNs: Int64? = nil, caughtUpMonoNs: Int64? = nil, catchUpIndex: UInt64? = nil,
                settleMs: Double = 0, durationMs: Double) {
        self.session = session; self.cell = cell; self.index = index; self.fault = fault; self.group = group; self.key = key
        self.leader = leader; self.term = term; self.startWallMs = startWallMs; self.sendMonoNs = sendMonoNs
        self.ackMonoNs = ackMonoNs; self.write = write; self.killRequestedMonoNs = killRequestedMonoNs
        self.killAppliedMonoNs = killAppliedMonoNs; self.killEffectMonoNs = killEffectMonoNs; self.detectMonoNs = detectMonoNs; self.leaderLostMonoNs = leaderLostMonoNs
        self.electedMonoNs = electedMonoNs; self.newLeader = newLeader; self.newTerm = newTerm
        self.firstWriteMonoNs = firstWriteMonoNs; self.survived = survived; self.survivedLater = survivedLater
        self.restartMonoNs = restartMonoNs; self.caughtUpMonoNs = caughtUpMonoNs; self.catchUpIndex = catchUpIndex
        self.settleMs = settleMs; self.durationMs = durationMs
    }

    private func since(_ from: Int64?, _ to: Int64?) -> Double? {
        guard let from, let to else { return nil }
        return Double(to - from) / 1e6
    }
    /// Kill applied to the new leader's election.
    public var electionMs: Double? { since(killAppliedMonoNs, electedMonoNs) }
    /// Kill applied to the first acknowledged write: how long the store did not serve.
    public var recoveryMs: Double? { since(killAppliedMonoNs, firstWriteMonoNs) }
    public var detectionMs: Double? { since(killAppliedMonoNs, detectMonoNs) }
    public var catchUpMs: Double? { since(restartMonoNs, caughtUpMonoNs) }
    /// Write acknowledged (or sent, in flight) to the kill applied: the planned delay as it came out.
    public var killAfterObservedMs: Double? { since(cell.scenario == .inFlight ? sendMonoNs : ackMonoNs, killAppliedMonoNs) }
    /// An acknowledged write not read back, at once or after the catch-up: the failure the study looks for.
    public var lostAcknowledged: Bool { ackMonoNs != nil && (survived == .no || survivedLater == .no || survivedFinal == .no) }
    /// An unacknowledged write read as lost that came back later: not linearizable.
    public var reappeared: Bool { ackMonoNs == nil && survived == .no && (survivedLater == .yes || survivedFinal == .yes) }

    /// Time beyond the trial's own waits (a group to settle, the delay, the failover until both
    /// the detection and the recovery, the catch-up): connections, reads, bookkeeping.
    public var overheadMs: Double {
        max(0, durationMs - settleMs - Double(cell.killAfterMs) - max(recoveryMs ?? 0, detectionMs ?? 0) - (catchUpMs ?? 0))
    }
}

/// A failover run's `trials.csv`: a header, then one row per trial, appended as each finishes.
/// The derived columns (election_ms and after) are written for a reader's convenience and
/// recomputed from the instants when the file is read back.
public enum FailoverCSV {
    public static let columns = [
        "session", "scenario", "kill_after_ms", "trial", "fault", "group", "key", "leader", "term", "t_start_wall_ms",
        "t_send_mono_ns", "t_ack_mono_ns", "write", "t_kill_requested_mono_ns", "t_kill_applied_mono_ns", "t_kill_effect_mono_ns", "t_detect_mono_ns",
        "t_leader_lost_mono_ns", "t_elected_mono_ns", "new_leader", "new_term", "t_first_write_mono_ns", "survived",
        "survived_after_catch_up", "t_restart_mono_ns", "t_caught_up_mono_ns", "catch_up_index", "settle_ms", "duration_ms",
        "kill_after_observed_ms", "detection_ms", "election_ms", "recovery_ms", "catch_up_ms", "overhead_ms",
    ]
    public static let header = columns.joined(separator: ",")

    public static func row(_ r: FailoverTrial) -> String {
        func n(_ x: Double?) -> String { SweepTables.number(x) }
        func i(_ x: Int64?) -> String { x.map(String.init) ?? "" }
        func u(_ x: UInt64?) -> String { x.map(String.init) ?? "" }
        let what: [String] = [String(r.session), r.cell.scenario.rawValue, String(r.cell.killAfterMs), String(r.index), r.fault.rawValue,
                              String(r.group), r.key, r.leader, String(r.term), String(r.startWallMs), String(r.sendMonoNs)]
        let kill: [String] = [i(r.ackMonoNs), r.write.rawValue, String(r.killRequestedMonoNs), i(r.killAppliedMonoNs),
                              i(r.killEffectMonoNs), i(r.detectMonoNs), i(r.leaderLostMonoNs), i(r.electedMonoNs), r.newLeader ?? "",
                              u(r.newTerm), i(r.firstWriteMonoNs)]
        let after: [String] = [r.survived.rawValue, r.survivedLater.rawValue, i(r.restartMonoNs), i(r.caughtUpMonoNs), u(r.catchUpIndex),
                               n(r.settleMs), n(r.durationMs)]
        let derived: [String] = [n(r.killAfterObservedMs), n(r.detectionMs), n(r.electionMs), n(r.recoveryMs), n(r.catchUpMs),
                                 n(r.overheadMs)]
        return (what + kill + after + derived).joined(separator: ",")
    }

    /// Reads back what `row` wrote. A torn last line (the supervisor died mid-write) is dropped:
    /// that trial runs again on resume. Keys and node ids never hold a comma (the run makes them).
    public static func parse(_ text: String) throws(TrialsCSV.ParseError) -> [FailoverTrial] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let complete = text.hasSuffix("\n")
        if lines.last == "" { lines.removeLast() }
        guard let first = lines.first else { return [] }
        guard first == header else { throw .init(line: 1, problem: "header is not \(header)") }
        var out: [FailoverTrial] = []
        for (k, line) in lines.enumerated().dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count == columns.count, let r = record(f) else {
                if k == lines.count - 1 && !complete { break }
                throw .init(line: k + 1, problem: "expected \(columns.count) fields of the header's types")
            }
            out.append(r)
        }
        return out
    }

    private static func record(_ f: [String]) -> FailoverTrial? {
        func l(_ s: String) -> Int64? { s.isEmpty ? nil : Int64(s) }
        let c = Dictionary(uniqueKeysWithValues: columns.enumerated().map { ($1, $0) })
        func v(_ name: String) -> String { f[c[name]!] }
        guard let session = Int(v("session")), let scenario = FailoverScenario(rawValue: v("scenario")),
              let delay = Int(v("kill_after_ms")), let index = Int(v("trial")), let fault = FailoverSpec.Fault(rawValue: v("fault")),
              let group = Int(v("group")), let term = UInt64(v("term")), let start = l(v("t_start_wall_ms")),
              let send = l(v("t_send_mono_ns")), let write = FailoverTrial.Write(rawValue: v("write")),
              let requested = l(v("t_kill_requested_mono_ns")), let survived = FailoverTrial.Survival(rawValue: v("survived")),
              let later = FailoverTrial.Survival(rawValue: v("survived_after_catch_up")), let duration = Double(v("duration_ms")),
              let settle = Double(v("settle_ms"))
        else { return nil }
        for name in ["t_ack_mono_ns", "t_kill_applied_mono_ns", "t_kill_effect_mono_ns", "t_detect_mono_ns", "t_leader_lost_mono_ns",
                     "t_elected_mono_ns", "t_first_write_mono_ns", "t_restart_mono_ns", "t_caught_up_mono_ns"]
        where !v(name).isEmpty && l(v(name)) == nil { return nil }
        if !v("new_term").isEmpty && UInt64(v("new_term")) == nil || !v("catch_up_index").isEmpty && UInt64(v("catch_up_index")) == nil {
            return nil
        }
        return FailoverTrial(
            session: session, cell: .init(scenario: scenario, killAfterMs: delay), index: index, fault: fault, group: group,
            key: v("key"), leader: v("leader"), term: term, startWallMs: start, sendMonoNs: send, ackMonoNs: l(v("t_ack_mono_ns")),
            write: write, killRequestedMonoNs: requested, killAppliedMonoNs: l(v("t_kill_applied_mono_ns")),
            killEffectMonoNs: l(v("t_kill_effect_mono_ns")), detectMonoNs: l(v("t_detect_mono_ns")),
            leaderLostMonoNs: l(v("t_leader_lost_mono_ns")), electedMonoNs: l(v("t_elected_mono_ns")),
            newLeader: v("new_leader").isEmpty ? nil : v("new_leader"), newTerm: UInt64(v("new_term")),
            firstWriteMonoNs: l(v("t_first_write_mono_ns")), survived: survived, survivedLater: later,
            restartMonoNs: l(v("t_restart_mono_ns")), caughtUpMonoNs: l(v("t_caught_up_mono_ns")),
            catchUpIndex: UInt64(v("catch_up_index")), settleMs: settle, durationMs: duration)
    }
}

/// `final-reads.csv`: each key of a session read once more when its trials are done, with every
/// node back and every group's leader back on its own node (a lost write that an old leader still
/// held would show there, if the store let it back). One row per trial.
public enum FinalReadsCSV {
    public static let header = "session,scenario,kill_after_ms,trial,key,final_read"

    public static func row(_ t: FailoverTrial, _ read: FailoverTrial.Survival) -> String {
        [String(t.session), t.cell.scenario.rawValue, String(t.cell.killAfterMs), String(t.index), t.key, read.rawValue]
            .joined(separator: ",")
    }

    /// The trials with their final reads merged in (matched by session, scenario, delay and
    /// trial); rows that name no trial, and a torn last line, are ignored.
    public static func merge(_ text: String, into trials: [FailoverTrial]) -> [FailoverTrial] {
        var reads: [String: FailoverTrial.Survival] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count == 6, let read = FailoverTrial.Survival(rawValue: String(f[5])) else { continue }
            reads[f[0...3].joined(separator: ",")] = read
        }
        return trials.map { t in
            var t = t
            t.survivedFinal = reads["\(t.session),\(t.cell.scenario.rawValue),\(t.cell.killAfterMs),\(t.index)"]
            return t
        }
    }
}
