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
    public typealias Mode = StoreLayout.Mode
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
    /// The store a run starts: its mode, nodes, groups and timing.
    public var layout: StoreLayout {
        StoreLayout(mode: mode, nodes: nodes, groups: groups, raft: raft, primaryBackup: primaryBackup)
    }
    /// The store a run used, in words.
    public var storeDescription: String { layout.description }
}

extension ExperimentSpecParser {
    static let failoverKeys = ["kind", "kill_after_ms", "trials", "in_flight", "rapid_sequential", "rapid_gap_ms", "fault", "seed"]
        + layoutKeys

    static func failover(_ t: SpecTable) throws(ConfigError) -> FailoverSpec {
        var s = FailoverSpec()
        let layout = try layout(t, defaultRaftGroups: 3)
        s.mode = layout.mode; s.nodes = layout.nodes; s.groups = layout.groups
        s.raft = layout.raft; s.primaryBackup = layout.primaryBackup
        if s.mode == .primaryBackup && t.table["rapid_sequential"] != nil {
            throw t.fail("rapid_sequential", "needs mode = \"raft\": a pair has one node to spare, so a second kill in a row takes its keys down")
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
        s.seed = UInt64(try t.int("seed", default: 1, 0...Int.max))
        let cells = s.killAfterMs.count * (s.inFlight ? 2 : 1)
        guard cells * s.trials + s.rapidSequential <= maxTrials else {
            throw t.fail("trials", "\(cells) scenarios x \(s.trials) trials exceed the limit of \(maxTrials)")
        }
        return s
    }
}
