/// What a reload may do with each setting, and the settings a new file changes.
public enum SettingScope: String, Sendable, Codable {
    /// Read by the supervisor whenever it acts (restart policy, stop grace): applied at once.
    case live
    /// Passed to each kvnode on its command line: applied only by restarting the running nodes.
    case nodes
    /// Read once when kvsupervisor starts (sockets, paths, the node list): needs a restart of it.
    case supervisor
}

/// One setting a reload found changed, and what became of it (the `changes` of config_reloaded
/// and of the Reload reply).
public struct SettingChange: Sendable, Codable, Equatable {
    public enum Outcome: String, Sendable, Codable { case applied, refused }
    public var key: String
    public var old: String
    public var new: String
    public var outcome: Outcome
    /// How it was applied (live, nodes restarted) or why it was refused and what to do instead.
    public var reason: String

    public init(key: String, old: String, new: String, outcome: Outcome, reason: String) {
        self.key = key; self.old = old; self.new = new; self.outcome = outcome; self.reason = reason
    }
}

extension ClusterConfig {
    /// A setting's TOML key, scope, value as text, and how to carry a value from one config to another.
    public struct Setting: Sendable {
        public let key: String
        public let scope: SettingScope
        let text: @Sendable (ClusterConfig) -> String
        let copy: @Sendable (inout ClusterConfig, ClusterConfig) -> Void
    }

    private static func setting<T: Equatable & Sendable>(_ key: String, _ scope: SettingScope,
                                                         get: @escaping @Sendable (ClusterConfig) -> T,
                                                         set: @escaping @Sendable (inout ClusterConfig, T) -> Void) -> Setting {
        Setting(key: key, scope: scope, text: { c in Self.describe(get(c)) }, copy: { to, from in set(&to, get(from)) })
    }

    private static func raftKey(_ f: RaftSettings.Field) -> String { "cluster." + RaftSettings.configKey(f) }

    private static func describe<T>(_ v: T) -> String {
        if let o = v as? String? { return o ?? "(default)" }
        if let m = v as? any RawRepresentable { return "\(m.rawValue)" }
        return "\(v)"
    }

    /// Every setting of the file, with its scope. [[node]] entries are one setting, `node`.
    public static var settings: [Setting] {
        [
            setting("supervisor.socket", .supervisor, get: { $0.socketPath }, set: { $0.socketPath = $1 }),
            setting("supervisor.event_log", .supervisor, get: { $0.eventLogPath }, set: { $0.eventLogPath = $1 }),
            setting("supervisor.state_dir", .supervisor, get: { $0.stateDir }, set: { $0.stateDir = $1 }),
            setting("supervisor.runtime_dir", .supervisor, get: { $0.runtimeDir }, set: { $0.runtimeDir = $1 }),
            setting("supervisor.socket_group", .supervisor, get: { $0.socketGroup }, set: { $0.socketGroup = $1 }),
            setting("supervisor.run_id", .supervisor, get: { $0.runID }, set: { $0.runID = $1 }),
            setting("supervisor.node_binary", .supervisor, get: { $0.nodeBinary }, set: { $0.nodeBinary = $1 }),
            setting("supervisor.stop_grace_ms", .live, get: { $0.stopGraceMs }, set: { $0.stopGraceMs = $1 }),
            setting("supervisor.ready_timeout_ms", .live, get: { $0.readyTimeoutMs }, set: { $0.readyTimeoutMs = $1 }),
            setting("supervisor.fault_effect_deadline_ms", .supervisor, get: { $0.faultEffectDeadlineMs },
                    set: { $0.faultEffectDeadlineMs = $1 }),
            setting("supervisor.timer_spin_us", .supervisor, get: { $0.timerSpinUs }, set: { $0.timerSpinUs = $1 }),
            setting("supervisor.sched_priority", .supervisor, get: { $0.schedPriority }, set: { $0.schedPriority = $1 }),
            setting("cluster.mode", .supervisor, get: { $0.mode }, set: { $0.mode = $1 }),
            setting("cluster.hb_interval_ms", .nodes, get: { $0.hbIntervalMs }, set: { $0.hbIntervalMs = $1 }),
            setting("cluster.hb_timeout_ms", .nodes, get: { $0.hbTimeoutMs }, set: { $0.hbTimeoutMs = $1 }),
            setting("cluster.restart", .live, get: { $0.restart }, set: { $0.restart = $1 }),
            setting("cluster.restart_sec_ms", .live, get: { $0.restartSecMs }, set: { $0.restartSecMs = $1 }),
            setting("cluster.restart_max_delay_ms", .live, get: { $0.restartMaxDelayMs }, set: { $0.restartMaxDelayMs = $1 }),
            setting("cluster.start_limit_burst", .live, get: { $0.startLimitBurst }, set: { $0.startLimitBurst = $1 }),
            setting("cluster.start_limit_interval_ms", .live, get: { $0.startLimitIntervalMs },
                    set: { $0.startLimitIntervalMs = $1 }),
            setting(raftKey(.heartbeat), .nodes, get: { $0.raft.heartbeatMs }, set: { $0.raft.heartbeatMs = $1 }),
            setting(raftKey(.election), .nodes, get: { $0.raft.electionMs }, set: { $0.raft.electionMs = $1 }),
            setting(raftKey(.electionMax), .nodes, get: { $0.raft.electionMaxMs }, set: { $0.raft.electionMaxMs = $1 }),
            setting(raftKey(.tick), .nodes, get: { $0.raft.tickMs }, set: { $0.raft.tickMs = $1 }),
            setting(raftKey(.sync), .nodes, get: { $0.raft.sync }, set: { $0.raft.sync = $1 }),
            setting(raftKey(.snapshotEntries), .nodes, get: { $0.raft.snapshotEntries }, set: { $0.raft.snapshotEntries = $1 }),
            // Keys map to groups by their count: another count needs empty data directories.
            setting(raftKey(.groups), .supervisor, get: { $0.raft.groups }, set: { $0.raft.groups = $1 }),
            setting(raftKey(.readPolicy), .nodes, get: { $0.raft.readPolicy }, set: { $0.raft.readPolicy = $1 }),
            setting("cluster.pb_check_interval_ms", .nodes, get: { $0.primaryBackup.checkIntervalMs },
                    set: { $0.primaryBackup.checkIntervalMs = $1 }),
            setting("cluster.pb_fail_after_ms", .nodes, get: { $0.primaryBackup.failAfterMs }, set: { $0.primaryBackup.failAfterMs = $1 }),
            setting("cluster.replication_path", .nodes, get: { $0.primaryBackup.replicationPath },
                    set: { $0.primaryBackup.replicationPath = $1 }),
            Setting(key: "node", scope: .supervisor,
                    text: { c in
                        c.nodes.map { "\($0.id)@\($0.host):\($0.port)" + (c.mode == .raft ? "/\($0.effectivePeerPort)" : "")
                            + ($0.dataDir.map { " in \($0)" } ?? "") + ($0.backupOf.map { " backup of \($0)" } ?? "")
                            + ($0.role.map { " (\($0.rawValue))" } ?? "") }.joined(separator: ",")
                    },
                    copy: { to, from in to.nodes = from.nodes }),
        ]
    }

    /// Every setting's value, by key: what supervisor_started records.
    public var settingValues: [String: String] {
        Dictionary(uniqueKeysWithValues: Self.settings.map { ($0.key, $0.text(self)) })
    }

    /// The settings whose values differ in `new`, in file order.
    public func changedSettings(in new: ClusterConfig) -> [(setting: Setting, old: String, new: String)] {
        Self.settings.compactMap { s in
            let (a, b) = (s.text(self), s.text(new))
            return a == b ? nil : (s, a, b)
        }
    }

    /// This config with `new`'s values for the settings in `accepted` (keys), its own for the rest.
    public func taking(_ accepted: Set<String>, from new: ClusterConfig) -> ClusterConfig {
        var result = self
        for s in Self.settings where accepted.contains(s.key) { s.copy(&result, new) }
        return result
    }
}
