import Core
import TOML

/// The store an experiment starts for itself: its replication mode, its nodes and groups (or
/// pairs), and the timing that sets how fast it fails over. The failover and linearizability
/// experiments read it from their spec by the same rules (`ExperimentSpecParser.layout`).
public struct StoreLayout: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        case raft
        /// The original's name manager and storage pairs: `groups` pairs (A:B, C:D, ...) and a coordinator.
        case primaryBackup = "primary-backup"
    }

    public var mode: Mode
    /// Storage nodes: 3 or 5 for Raft; 2 per pair for primary-backup (its coordinator besides).
    public var nodes: Int
    /// Raft groups, or primary-backup pairs.
    public var groups: Int
    /// sync, election_ms, election_max_ms, raft_heartbeat_ms; the rest at their defaults.
    public var raft: RaftSettings
    /// Primary-backup mode's timing and replication path.
    public var primaryBackup: PrimaryBackupSettings

    public init(mode: Mode = .raft, nodes: Int = 3, groups: Int = 3, raft: RaftSettings = RaftSettings(),
                primaryBackup: PrimaryBackupSettings = PrimaryBackupSettings()) {
        self.mode = mode; self.nodes = nodes; self.groups = groups; self.raft = raft; self.primaryBackup = primaryBackup
    }

    /// The storage nodes: A, B, C, ... (primary-backup's pair g is the 2g-th and the next).
    public var storageNodes: [NodeID] { (0..<nodes).map { NodeID(validating: String(UnicodeScalar(UInt8(65 + $0))))! } }
    /// Every supervised node: the storage nodes, and primary-backup's coordinator NM first.
    public var allNodes: [NodeID] { mode == .primaryBackup ? ["NM"] + storageNodes : storageNodes }

    /// The store in words: its layout and the settings that set its failover time.
    public var description: String {
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
    static let primaryBackupKeys = ["pb_check_interval_ms", "pb_fail_after_ms", "replication_path"]
    /// The Raft settings a spec may set, by their [cluster] names.
    static let raftKeys = [RaftSettings.Field.sync, .election, .electionMax, .heartbeat].map(RaftSettings.configKey)
    static let layoutKeys = ["mode", "nodes", "groups"] + raftKeys + primaryBackupKeys

    /// mode, nodes, groups and the mode's own settings, checked by the same rules as [cluster]'s.
    static func layout(_ t: SpecTable, defaultRaftGroups: Int) throws(ConfigError) -> StoreLayout {
        var l = StoreLayout(groups: defaultRaftGroups)
        if let v = t.table["mode"] {
            guard let m = v.string.flatMap(StoreLayout.Mode.init(rawValue:)) else {
                throw t.fail("mode", "'\(v.string ?? v.typeName)' is not a replication mode; use \"raft\" or \"primary-backup\"")
            }
            l.mode = m
        }
        switch l.mode {
        case .primaryBackup:
            if t.table["nodes"] != nil {
                throw t.fail("nodes", "primary-backup runs `groups` pairs of two storage nodes and a coordinator; set groups, not nodes")
            }
            if let key = raftKeys.first(where: { t.table[$0] != nil }) { throw t.fail(key, "is a Raft setting; mode is \"primary-backup\"") }
            l.groups = try t.int("groups", default: 1, 1...8)
            l.nodes = 2 * l.groups
            l.primaryBackup = try primaryBackupSettings(t)
        case .raft:
            if let key = primaryBackupKeys.first(where: { t.table[$0] != nil }) {
                throw t.fail(key, "only applies with mode = \"primary-backup\"")
            }
            l.nodes = try t.int("nodes", default: 3, 3...5)
            if l.nodes == 4 { throw t.fail("nodes", "4 tolerates no more failures than 3; use 3 or 5") }
            l.groups = try t.int("groups", default: defaultRaftGroups, 1...KeyGroups.maxGroups)
            l.raft = try raftSettings(t)
        }
        return l
    }

    /// Primary-backup's timing and replication path, as the [cluster] keys of the same names.
    private static func primaryBackupSettings(_ t: SpecTable) throws(ConfigError) -> PrimaryBackupSettings {
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
        return pb
    }

    /// The Raft settings the spec names, checked by the same rules as [cluster]'s.
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
