import Core
import TOML

/// The failover-durability study, after the original lab's precision failover test: write a
/// fresh key through the leader of its Raft group, kill that leader `d` ms later, and ask whether
/// the write survived and how long the store took to serve again.
///
///     [experiment]
///     kind = "failover"
///     mode = "raft"
///     nodes = 3
///     groups = 3                    # the original's
///     kill_after_ms = [0, 10, 25, 50, 75, 100, 200]
///     trials = 30                   # per delay and scenario
///     in_flight = true              # also kill d ms after the write was sent, before its answer
///     rapid_sequential = 5          # a cascade of leader kills, a write before each
///     rapid_gap_ms = 0
///     fault = "kill"                # kill | stop | partition (of the leader)
///     sync = "fdatasync"
///     election_ms = 150             # and election_max_ms, raft_heartbeat_ms, as in [cluster]
///     seed = 1
public struct FailoverSpec: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        case raft
        /// The original's name manager and storage pairs: `groups` pairs (A:B, C:D, ...) and a coordinator.
        case primaryBackup = "primary-backup"
    }
    /// What hits the leader: a SIGKILL closes its connections at once; a SIGSTOP or a cut link
    /// closes nothing, so the followers learn of it from silence alone.
    public enum Fault: String, Sendable, CaseIterable { case kill, stop, partition }

    /// The original's seven delays.
    public static let originalDelaysMs = [0, 10, 25, 50, 75, 100, 200]

    public var mode: Mode
    public var nodes: Int
    public var groups: Int
    public var killAfterMs: [Int]
    public var trials: Int
    public var inFlight: Bool
    public var rapidSequential: Int
    public var rapidGapMs: Int
    public var fault: Fault
    /// sync, election_ms, election_max_ms, raft_heartbeat_ms; the rest at their defaults.
    public var raft: RaftSettings
    /// Primary-backup mode's timing and replication path.
    public var primaryBackup = PrimaryBackupSettings()
    public var seed: UInt64

    public init(mode: Mode = .raft, nodes: Int = 3, groups: Int = 3, killAfterMs: [Int] = originalDelaysMs, trials: Int = 10,
                inFlight: Bool = true, rapidSequential: Int = 0, rapidGapMs: Int = 0, fault: Fault = .kill,
                raft: RaftSettings = RaftSettings(), seed: UInt64 = 1) {
        self.mode = mode; self.nodes = nodes; self.groups = groups; self.killAfterMs = killAfterMs; self.trials = trials
        self.inFlight = inFlight; self.rapidSequential = rapidSequential; self.rapidGapMs = rapidGapMs; self.fault = fault
        self.raft = raft; self.seed = seed
    }
}

extension FailoverSpec {
    /// The store a run used, in words: its layout and the settings that set its failover time.
    public var storeDescription: String {
        switch mode {
        case .raft:
            return "mode raft, \(nodes) nodes, \(groups) Raft group\(groups == 1 ? "" : "s"), sync \(raft.sync.rawValue), "
                + "election timeout \(raft.electionMs)-\(raft.electionMaxMs) ms, Raft heartbeat \(raft.heartbeatMs) ms"
        case .primaryBackup:
            let pb = primaryBackup
            return "mode primary-backup, \(groups) pair\(groups == 1 ? "" : "s") and a coordinator, beats and checks every "
                + "\(pb.checkIntervalMs) ms, dead after \(pb.failAfterMs) ms, replication through \(pb.replicationPath == .direct ? "the primary's own link" : "the coordinator")"
                + " (asynchronous: acknowledged first)"
        }
    }
}

extension ExperimentSpecParser {
    static let failoverKeys = ["kind", "mode", "nodes", "groups", "kill_after_ms", "trials", "in_flight", "rapid_sequential",
                               "rapid_gap_ms", "fault", "seed"] + raftKeys + primaryBackupKeys
    static let primaryBackupKeys = ["pb_check_interval_ms", "pb_fail_after_ms", "replication_path"]
    /// The Raft settings a failover spec may set, by their [cluster] names.
    static let raftKeys = [RaftSettings.Field.sync, .election, .electionMax, .heartbeat].map(RaftSettings.configKey)

    static func failover(_ t: SpecTable) throws(ConfigError) -> FailoverSpec {
        var s = FailoverSpec()
        if let v = t.table["mode"] {
            guard let m = v.string.flatMap(FailoverSpec.Mode.init(rawValue:)) else {
                throw t.fail("mode", "'\(v.string ?? v.typeName)' is not a replication mode; use \"raft\" or \"primary-backup\"")
            }
            s.mode = m
        }
        if s.mode == .primaryBackup {
            try primaryBackup(t, &s)
        } else {
            if let key = primaryBackupKeys.first(where: { t.table[$0] != nil }) {
                throw t.fail(key, "only applies with mode = \"primary-backup\"")
            }
            s.nodes = try t.int("nodes", default: 3, 3...5)
            if s.nodes == 4 { throw t.fail("nodes", "4 tolerates no more failures than 3; use 3 or 5") }
            s.groups = try t.int("groups", default: 3, 1...KeyGroups.maxGroups)
        }
        if t.table["kill_after_ms"] != nil {
            s.killAfterMs = try t.ints("kill_after_ms", min: 0).sorted()
            if let long = s.killAfterMs.first(where: { $0 > 60_000 }) {
                throw t.fail("kill_after_ms", "\(long) ms: a kill that long after the write says nothing about replication; at most 60000")
            }
        }
        s.trials = try t.int("trials", default: 10, 1...maxTrials)
        if let v = t.table["in_flight"] {
            guard let b = v.bool else { throw t.fail("in_flight", "must be true or false") }
            s.inFlight = b
        }
        s.rapidSequential = try t.int("rapid_sequential", default: 0, 0...100)
        s.rapidGapMs = try t.int("rapid_gap_ms", default: 0, 0...60_000)
        if t.table["rapid_gap_ms"] != nil && s.rapidSequential == 0 {
            throw t.fail("rapid_gap_ms", "only applies with rapid_sequential above 0")
        }
        if let v = t.table["fault"] {
            guard let f = v.string.flatMap(FailoverSpec.Fault.init(rawValue:)) else {
                throw t.fail("fault", "'\(v.string ?? v.typeName)' is not a fault here; use kill, stop or partition")
            }
            s.fault = f
        }
        s.raft = try raftSettings(t)
        s.seed = UInt64(try t.int("seed", default: 1, 0...Int.max))
        let cells = s.killAfterMs.count * (s.inFlight ? 2 : 1)
        guard cells * s.trials + s.rapidSequential <= maxTrials else {
            throw t.fail("trials", "\(cells) scenarios x \(s.trials) trials exceed the limit of \(maxTrials)")
        }
        return s
    }

    /// The Raft settings the spec names, checked by the same rules as [cluster]'s.
    /// Primary-backup: `groups` pairs (default 1) of a primary and its backup, and a coordinator;
    /// its timing and replication path as the [cluster] keys of the same names.
    private static func primaryBackup(_ t: SpecTable, _ s: inout FailoverSpec) throws(ConfigError) {
        if t.table["nodes"] != nil {
            throw t.fail("nodes", "primary-backup runs `groups` pairs of two storage nodes and a coordinator; set groups, not nodes")
        }
        if let key = raftKeys.first(where: { t.table[$0] != nil }) { throw t.fail(key, "is a Raft setting; mode is \"primary-backup\"") }
        s.groups = try t.int("groups", default: 1, 1...8)
        s.nodes = 2 * s.groups
        var pb = PrimaryBackupSettings()
        pb.checkIntervalMs = try t.int("pb_check_interval_ms", default: pb.checkIntervalMs, 1...60_000)
        pb.failAfterMs = try t.int("pb_fail_after_ms", default: pb.failAfterMs, 1...600_000)
        if pb.failAfterMs < pb.checkIntervalMs {
            throw t.fail("pb_fail_after_ms", "\(pb.failAfterMs) is less than pb_check_interval_ms (\(pb.checkIntervalMs)): a node would be "
                         + "dead before its first beat was due")
        }
        if let v = t.table["replication_path"] {
            guard let path = v.string.flatMap(PrimaryBackupSettings.ReplicationPath.init(rawValue:)) else {
                throw t.fail("replication_path", "'\(v.string ?? v.typeName)' is not a path; use \"coordinator\" or \"direct\"")
            }
            pb.replicationPath = path
        }
        s.primaryBackup = pb
        if t.table["rapid_sequential"] != nil {
            throw t.fail("rapid_sequential", "needs mode = \"raft\": a pair has one node to spare, so a second kill in a row takes its keys down")
        }
    }

    private static func raftSettings(_ t: SpecTable) throws(ConfigError) -> RaftSettings {
        var r = RaftSettings()
        if let v = t.table[RaftSettings.configKey(.sync)] {
            guard let m = v.string.flatMap(SyncMode.init(rawValue:)) else {
                throw t.fail("sync", "'\(v.string ?? v.typeName)' is not a sync mode; use \"fdatasync\" or \"none\"")
            }
            r.sync = m
        }
        for f in [RaftSettings.Field.heartbeat, .election, .electionMax] {
            let key = RaftSettings.configKey(f)
            guard t.table[key] != nil, let range = RaftSettings.range(f) else { continue }
            let n = try t.int(key, default: 0, range)
            switch f {
            case .heartbeat: r.heartbeatMs = n
            case .election: r.electionMs = n
            default: r.electionMaxMs = n
            }
        }
        // election_ms alone: the maximum follows it, as kvnode's default pair does (twice).
        if t.table[RaftSettings.configKey(.election)] != nil && t.table[RaftSettings.configKey(.electionMax)] == nil {
            r.electionMaxMs = 2 * r.electionMs
        }
        if let p = r.problem(naming: RaftSettings.configKey) { throw t.fail(RaftSettings.configKey(p.field), p.message) }
        return r
    }
}
