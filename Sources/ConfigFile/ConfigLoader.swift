import Core
import TOML

/// Reads a kvsupervisor TOML file into a validated `ClusterConfig`. Every refusal names file, line and key.
public enum ConfigLoader {
    public static let supervisorKeys = ["socket", "event_log", "state_dir", "runtime_dir", "socket_group",
                                        "run_id", "node_binary", "stop_grace_ms", "ready_timeout_ms",
                                        "fault_effect_deadline_ms", "timer_spin_us", "sched_priority"]
    public static let clusterKeys = ["mode", "hb_interval_ms", "hb_timeout_ms", "restart", "restart_sec_ms",
                                     "restart_max_delay_ms", "start_limit_burst", "start_limit_interval_ms",
                                     "raft_heartbeat_ms", "election_ms", "election_max_ms", "tick_ms", "sync",
                                     "snapshot_entries", "read_policy", "groups"] + primaryBackupKeys
    public static let nodeKeys = ["id", "port", "host", "peer_port", "data_dir", "backup_of", "role"]
    /// [cluster] keys of primary-backup mode alone.
    public static let primaryBackupKeys = ["pb_check_interval_ms", "pb_fail_after_ms", "replication_path", "pairs"]
    public static let maxFileBytes = 1 << 20

    public static func load(path: String) throws(ConfigError) -> ClusterConfig {
        if isDirectory(path) {
            throw ConfigError(file: path, problem: "is a directory; give the config file itself (for example \(path)/kvsupervisor.toml)")
        }
        guard let text = readWholeFile(path, limit: maxFileBytes) else {
            throw ConfigError(file: path, problem: "cannot read the file (missing, unreadable or over \(maxFileBytes) bytes)")
        }
        return try parse(text: text, file: path)
    }

    public static func parse(text: String, file: String) throws(ConfigError) -> ClusterConfig {
        let root: TOMLTable
        do {
            root = try TOMLParser.parse(text)
        } catch {
            throw ConfigError(file: file, line: error.line, problem: "TOML syntax: \(error.message)")
        }
        // An empty file is more likely a mistake (a wrong path, a file not yet written) than a
        // request for the defaults, which leaving --config out gives.
        guard !root.keys.isEmpty else {
            throw ConfigError(file: file, problem: "has no settings at all; write [supervisor], [cluster] or [[node]] tables "
                              + "(an empty [cluster] table asks for the built-in cluster), or leave --config out")
        }
        var reader = Reader(file: file, root: root)
        return try reader.read(root)
    }
}

private struct Reader {
    let file: String
    let root: TOMLTable

    func fail(_ table: String?, _ index: Int? = nil, _ key: String?, _ problem: String) -> ConfigError {
        let dotted = [table, key].compactMap { $0 }.joined(separator: ".")
        return ConfigError(file: file, line: line(table: table, index: index, key: key),
                           key: dotted.isEmpty ? nil : dotted, problem: problem)
    }

    /// The line of `key` in `[table]` (or in the index-th `[[table]]`), else of the table itself.
    private func line(table: String?, index: Int?, key: String?) -> Int? {
        guard let table else { return key.flatMap { root.line(of: $0) } }
        let found: TOMLTable?
        if let index, let list = root[table]?.array, index < list.count { found = list[index].table }
        else { found = root[table]?.table }
        guard let t = found else { return root.line(of: table) }
        return key.flatMap { t.line(of: $0) } ?? t.line
    }

    func checkKeys(_ t: TOMLTable, allowed: [String], table: String?, index: Int? = nil) throws(ConfigError) {
        for key in t.keys where !allowed.contains(key) {
            var problem = "unknown key"
            if let guess = closest(key, in: allowed) { problem += " (did you mean '\(guess)'?)" }
            else { problem += " (known: \(allowed.joined(separator: ", ")))" }
            throw fail(table, index, key, problem)
        }
    }

    /// The file's three tables, each read by its own step; a missing table keeps the defaults
    /// (no [[node]]: the built-in A, B, C).
    mutating func read(_ root: TOMLTable) throws(ConfigError) -> ClusterConfig {
        try checkKeys(root, allowed: ["supervisor", "cluster", "node"], table: nil)
        var config = ClusterConfig(nodes: [])
        if let value = root["supervisor"] { try readSupervisor(value, into: &config) }
        if let value = root["cluster"] { try readCluster(value, into: &config) }
        if let value = root["node"] { try readNodes(value, into: &config) } else if config.mode == .primaryBackup {
            throw fail(nil, nil, "node", "mode primary-backup needs [[node]] tables: one with role = \"coordinator\", and pairs of "
                       + "storage nodes, each backup naming its primary with backup_of (or [cluster] pairs = [[\"A\", \"A2\"]])")
        } else { config.nodes = ClusterConfig.default.nodes }
        if config.mode == .primaryBackup { try readPairs(into: &config) }
        return config
    }

    /// [supervisor]: paths, the socket's group, the run id, grace and timing.
    func readSupervisor(_ value: TOMLValue, into config: inout ClusterConfig) throws(ConfigError) {
        guard let s = value.table else { throw fail(nil, nil, "supervisor", "must be a table: [supervisor]") }
        try checkKeys(s, allowed: ConfigLoader.supervisorKeys, table: "supervisor")
        config.socketPath = try path(s, "socket", "supervisor")
        config.eventLogPath = try path(s, "event_log", "supervisor")
        config.stateDir = try path(s, "state_dir", "supervisor")
        config.runtimeDir = try path(s, "runtime_dir", "supervisor")
        config.nodeBinary = try path(s, "node_binary", "supervisor")
        config.socketGroup = try string(s, "socket_group", "supervisor")
        if let run = try string(s, "run_id", "supervisor") {
            guard NodeID(validating: run) != nil else {
                throw fail("supervisor", nil, "run_id", "use 1-32 letters, digits, '-' or '_'")
            }
            config.runID = run
        }
        config.stopGraceMs = try int(s, "stop_grace_ms", "supervisor", 0...600_000) ?? config.stopGraceMs
        config.readyTimeoutMs = try int(s, "ready_timeout_ms", "supervisor", 100...600_000) ?? config.readyTimeoutMs
        config.faultEffectDeadlineMs = try int(s, "fault_effect_deadline_ms", "supervisor", 1...60_000)
            ?? config.faultEffectDeadlineMs
        config.timerSpinUs = try int(s, "timer_spin_us", "supervisor", ClusterConfig.timerSpinUsRange) ?? config.timerSpinUs
        config.schedPriority = try int(s, "sched_priority", "supervisor", ClusterConfig.schedPriorityRange)
            ?? config.schedPriority
    }

    /// [cluster]: the mode, heartbeat timing, the restart policy and Raft's settings.
    func readCluster(_ value: TOMLValue, into config: inout ClusterConfig) throws(ConfigError) {
        guard let c = value.table else { throw fail(nil, nil, "cluster", "must be a table: [cluster]") }
        try checkKeys(c, allowed: ConfigLoader.clusterKeys, table: "cluster")
        if let m = try string(c, "mode", "cluster") {
            guard let mode = NodeMode(rawValue: m) else {
                throw fail("cluster", nil, "mode", "'\(m)' is not a mode; use one of "
                    + NodeMode.allCases.map(\.rawValue).joined(separator: ", "))
            }
            config.mode = mode
        }
        config.hbIntervalMs = try int(c, "hb_interval_ms", "cluster", 1...60_000) ?? config.hbIntervalMs
        config.hbTimeoutMs = try int(c, "hb_timeout_ms", "cluster", 1...600_000) ?? config.hbTimeoutMs
        if config.hbTimeoutMs <= config.hbIntervalMs {
            throw fail("cluster", nil, "hb_timeout_ms",
                       "must be greater than hb_interval_ms (\(config.hbIntervalMs)), or every peer is declared dead between beats")
        }
        if let r = try string(c, "restart", "cluster") {
            guard let mode = RestartMode(rawValue: r) else {
                throw fail("cluster", nil, "restart", "'\(r)' is not a restart policy; use no, on-failure or always")
            }
            config.restart = mode
        }
        config.restartSecMs = try int(c, "restart_sec_ms", "cluster", 0...600_000) ?? config.restartSecMs
        config.restartMaxDelayMs = try int(c, "restart_max_delay_ms", "cluster", 0...3_600_000) ?? config.restartMaxDelayMs
        config.startLimitBurst = try int(c, "start_limit_burst", "cluster", 1...1000) ?? config.startLimitBurst
        config.startLimitIntervalMs = try int(c, "start_limit_interval_ms", "cluster", 1...3_600_000)
            ?? config.startLimitIntervalMs
        try readRaftSettings(c, into: &config.raft)
        try readPrimaryBackup(c, into: &config)
    }

    /// [cluster]'s primary-backup keys: only in that mode.
    func readPrimaryBackup(_ c: TOMLTable, into config: inout ClusterConfig) throws(ConfigError) {
        if config.mode != .primaryBackup {
            if let key = ConfigLoader.primaryBackupKeys.first(where: { c[$0] != nil }) {
                throw fail("cluster", nil, key, "only applies with mode = \"primary-backup\"")
            }
            return
        }
        var pb = config.primaryBackup
        pb.checkIntervalMs = try int(c, "pb_check_interval_ms", "cluster", 1...600_000) ?? pb.checkIntervalMs
        pb.failAfterMs = try int(c, "pb_fail_after_ms", "cluster", 1...3_600_000) ?? pb.failAfterMs
        if pb.failAfterMs <= pb.checkIntervalMs {
            throw fail("cluster", nil, "pb_fail_after_ms", "must be greater than pb_check_interval_ms (\(pb.checkIntervalMs)): a node "
                       + "beats once a check interval, so it would be declared dead between beats (the original: 15000 and 5000)")
        }
        pb.replicationPath = try choice(c, "replication_path", "cluster") ?? pb.replicationPath
        config.primaryBackup = pb
    }

    /// Primary-backup mode's pairs: [cluster] pairs = [["A", "A2"], ...] and each [[node]]'s
    /// backup_of, which must agree; then one coordinator and every storage node in exactly one pair.
    func readPairs(into config: inout ClusterConfig) throws(ConfigError) {
        let ids = Set(config.nodes.map(\.id))
        func node(_ raw: String, _ what: String) throws(ConfigError) -> NodeID {
            guard let id = NodeID(validating: raw), ids.contains(id) else {
                throw fail("cluster", nil, "pairs", "\(what) '\(raw)' is not a [[node]] id")
            }
            return id
        }
        if let value = root["cluster"]?.table?["pairs"] {
            guard let list = value.array else { throw fail("cluster", nil, "pairs", "must be an array of [primary, backup] pairs") }
            for item in list {
                guard let two = item.array, two.count == 2, let p = two[0].string, let b = two[1].string else {
                    throw fail("cluster", nil, "pairs", "each pair is [\"primary\", \"backup\"], two node ids")
                }
                let primary = try node(p, "primary"), backup = try node(b, "backup")
                guard let k = config.nodes.firstIndex(where: { $0.id == backup }) else { continue }  // node() found it
                if let other = config.nodes[k].backupOf, other != primary {
                    throw fail("cluster", nil, "pairs", "\(backup) is the backup of \(other) in its [[node]] (backup_of) but of \(primary) here")
                }
                config.nodes[k].backupOf = primary
            }
        }
        let coordinators = config.nodes.enumerated().filter { $0.element.role == .coordinator }
        guard coordinators.count == 1 else {
            throw fail("node", coordinators.dropFirst().first?.offset, coordinators.isEmpty ? nil : "role",
                       coordinators.isEmpty ? "mode primary-backup needs one [[node]] with role = \"coordinator\" (the name manager)"
                                            : "only one node may have role = \"coordinator\"")
        }
        for (i, n) in config.nodes.enumerated() {
            if n.role == .coordinator {
                if n.backupOf != nil { throw fail("node", i, "backup_of", "the coordinator stores nothing, so it backs up nobody") }
                if config.nodes.contains(where: { $0.backupOf == n.id }) {
                    throw fail("node", i, "id", "\(n.id) is the coordinator; no node can be its backup")
                }
                continue
            }
            if let p = n.backupOf {
                guard let primary = config.nodes.first(where: { $0.id == p }) else {
                    throw fail("node", i, "backup_of", "'\(p)' is not a [[node]] id")
                }
                if p == n.id { throw fail("node", i, "backup_of", "a node cannot be its own backup") }
                if primary.backupOf != nil { throw fail("node", i, "backup_of", "\(p) is itself a backup (of \(primary.backupOf!)); back up a primary") }
                let twins = config.nodes.filter { $0.backupOf == p }.map(\.id.rawValue)
                if twins.count > 1 { throw fail("node", i, "backup_of", "\(p) has backups \(twins.joined(separator: " and ")); each primary has one") }
            }
        }
        // Then, every backup_of being sound, the primaries without a backup.
        for (i, n) in config.nodes.enumerated() where n.role == nil && n.backupOf == nil {
            if !config.nodes.contains(where: { $0.backupOf == n.id }) {
                throw fail("node", i, "id", "storage node \(n.id) has no backup: give another node backup_of = \"\(n.id)\" "
                           + "(the original paired each server with a dedicated backup)")
            }
        }
    }

    /// [[node]]: ids and ports, each unique; in raft mode the peer ports too.
    func readNodes(_ value: TOMLValue, into config: inout ClusterConfig) throws(ConfigError) {
        guard let array = value.array else { throw fail(nil, nil, "node", "must be an array of tables: [[node]]") }
        var seenIDs = Set<NodeID>(), seenPorts = Set<Int>()
        for i in 0..<array.count {
            guard let n = array[i].table else { throw fail(nil, nil, "node", "each node must be a [[node]] table") }
            try checkKeys(n, allowed: ConfigLoader.nodeKeys, table: "node", index: i)
            guard let raw = try string(n, "id", "node", index: i) else {
                throw fail("node", i, nil, "node #\(i + 1) has no id")
            }
            guard let id = NodeID(validating: raw) else {
                throw fail("node", i, "id", "'\(raw)' is not a valid id: use 1-32 letters, digits, '-' or '_'")
            }
            guard let port = try int(n, "port", "node", 1...65535, index: i) else {
                throw fail("node", i, nil, "node '\(raw)' has no port")
            }
            let host = try string(n, "host", "node", index: i) ?? "127.0.0.1"
            let peerPort = try int(n, "peer_port", "node", 1...65535, index: i)
            let dataDir = try string(n, "data_dir", "node", index: i)
            var backupOf: NodeID?
            if let raw = try string(n, "backup_of", "node", index: i) {
                guard let b = NodeID(validating: raw) else { throw fail("node", i, "backup_of", "'\(raw)' is not a valid node id") }
                backupOf = b
            }
            let role: NodeConfig.Role? = try choice(n, "role", "node", index: i)
            if config.mode != .primaryBackup, let key = backupOf != nil ? "backup_of" : role != nil ? "role" : nil {
                throw fail("node", i, key, "only applies with [cluster] mode = \"primary-backup\"")
            }
            let node = NodeConfig(id: id, port: port, host: host, peerPort: peerPort, dataDir: dataDir, backupOf: backupOf, role: role)
            guard seenIDs.insert(id).inserted else { throw fail("node", i, "id", "duplicate node id '\(raw)'") }
            guard seenPorts.insert(port).inserted else { throw fail("node", i, "port", "port \(port) is used by another node") }
            if config.mode == .raft {
                guard node.effectivePeerPort <= 65535 else {
                    throw fail("node", i, "peer_port", "port + 1000 = \(node.effectivePeerPort) is out of range: set peer_port")
                }
                guard seenPorts.insert(node.effectivePeerPort).inserted else {
                    throw fail("node", i, peerPort == nil ? "port" : "peer_port",
                               "peer port \(node.effectivePeerPort)\(peerPort == nil ? " (port + 1000)" : "") is used by another node")
                }
            }
            config.nodes.append(node)
        }
        if config.nodes.isEmpty { throw fail(nil, nil, "node", "at least one [[node]] is needed") }
    }

    /// Keys, ranges and the rules between them are RaftSettings', as kvnode checks its flags with them.
    func readRaftSettings(_ c: TOMLTable, into r: inout RaftSettings) throws(ConfigError) {
        func number(_ f: RaftSettings.Field) throws(ConfigError) -> Int? {
            try int(c, RaftSettings.configKey(f), "cluster", RaftSettings.range(f)!)
        }
        r.tickMs = try number(.tick) ?? r.tickMs
        r.heartbeatMs = try number(.heartbeat) ?? r.heartbeatMs
        r.electionMs = try number(.election) ?? r.electionMs
        r.electionMaxMs = try number(.electionMax) ?? r.electionMaxMs
        r.snapshotEntries = try number(.snapshotEntries) ?? r.snapshotEntries
        r.groups = try number(.groups) ?? r.groups
        r.sync = try choice(c, RaftSettings.configKey(.sync), "cluster") ?? r.sync
        r.readPolicy = try choice(c, RaftSettings.configKey(.readPolicy), "cluster") ?? r.readPolicy
        if let p = r.problem(naming: RaftSettings.configKey) {
            throw fail("cluster", nil, RaftSettings.configKey(p.field), p.message)
        }
    }

    /// One of an enum's raw values.
    func choice<E: RawRepresentable & CaseIterable>(_ t: TOMLTable, _ key: String, _ table: String, index: Int? = nil)
        throws(ConfigError) -> E? where E.RawValue == String {
        guard let s = try string(t, key, table, index: index) else { return nil }
        guard let e = E(rawValue: s) else {
            throw fail(table, index, key, "'\(s)': use " + E.allCases.map(\.rawValue).joined(separator: " or "))
        }
        return e
    }

    func string(_ t: TOMLTable, _ key: String, _ table: String, index: Int? = nil) throws(ConfigError) -> String? {
        guard let v = t[key] else { return nil }
        guard let s = v.string else { throw fail(table, index, key, "must be a string, not \(v.typeName)") }
        if s.isEmpty { throw fail(table, index, key, "must not be empty") }
        return s
    }

    func path(_ t: TOMLTable, _ key: String, _ table: String) throws(ConfigError) -> String? {
        guard let s = try string(t, key, table) else { return nil }
        if s.utf8.count > 107 && key == "socket" {
            throw fail(table, nil, key, "a Unix socket path is at most 107 bytes")
        }
        if s.contains("\0") { throw fail(table, nil, key, "must not contain NUL") }
        return s
    }

    func int(_ t: TOMLTable, _ key: String, _ table: String, _ range: ClosedRange<Int>,
             index: Int? = nil) throws(ConfigError) -> Int? {
        guard let v = t[key] else { return nil }
        guard let n = v.int else { throw fail(table, index, key, "must be an integer, not \(v.typeName)") }
        guard range.contains(n) else {
            throw fail(table, index, key, "\(n) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return n
    }
}
