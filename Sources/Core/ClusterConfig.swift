/// What the store inside each node does. `heartbeat` is failure detection only.
public enum NodeMode: String, Sendable, Codable, CaseIterable {
    case heartbeat
    case raft
    case primaryBackup = "primary-backup"
}

/// systemd's Restart= values, with the same meaning.
public enum RestartMode: String, Sendable, Codable, CaseIterable {
    case no
    case onFailure = "on-failure"
    case always
}

/// Primary-backup mode's settings ([cluster] pb_*, replication_path).
public struct PrimaryBackupSettings: Sendable, Codable, Equatable {
    /// How a completed write reaches the backup: through the coordinator, as the original's name
    /// manager relayed it, or straight from the primary.
    public enum ReplicationPath: String, Sendable, Codable, CaseIterable { case coordinator, direct }
    /// The coordinator checks every storage node's silence this often; nodes beat this often too.
    /// Lab default 100 ms (the original: 5000).
    public var checkIntervalMs = 100
    /// A node silent this long is declared dead at the next check: three missed beats, as the
    /// original's 15 s of 5-s beats. Lab default 300 ms, so a failover is measured in the same
    /// range as the Raft store's (hb_timeout_ms 200 plus an election).
    public var failAfterMs = 300
    public var replicationPath = ReplicationPath.coordinator
    public static let original = PrimaryBackupSettings(checkIntervalMs: 5000, failAfterMs: 15_000)

    public init(checkIntervalMs: Int = 100, failAfterMs: Int = 300, replicationPath: ReplicationPath = .coordinator) {
        self.checkIntervalMs = checkIntervalMs; self.failAfterMs = failAfterMs; self.replicationPath = replicationPath
    }
}

public struct NodeConfig: Sendable, Codable, Equatable {
    /// What a node is in primary-backup mode, besides a store.
    public enum Role: String, Sendable, Codable, CaseIterable {
        /// The original's name manager: registry, heartbeat monitor, routing, replication, failover.
        case coordinator
    }

    public var id: NodeID
    /// Heartbeat mode: where peers send heartbeats. Raft mode: the HTTP API.
    public var port: Int
    public var host: String
    /// Raft mode: where peers send Raft traffic and heartbeats; default port + 1000.
    public var peerPort: Int?
    /// Raft mode: the WAL and snapshots; default <state_dir>/nodes/<id>.
    public var dataDir: String?
    /// Primary-backup mode: the primary this node is the dedicated backup of.
    public var backupOf: NodeID?
    /// Primary-backup mode: the coordinator (nil: a storage node).
    public var role: Role?

    public init(id: NodeID, port: Int, host: String = "127.0.0.1", peerPort: Int? = nil, dataDir: String? = nil,
                backupOf: NodeID? = nil, role: Role? = nil) {
        self.id = id; self.port = port; self.host = host; self.peerPort = peerPort; self.dataDir = dataDir
        self.backupOf = backupOf; self.role = role
    }

    public var effectivePeerPort: Int { peerPort ?? port + 1000 }
}

/// The whole configuration, validated. `ConfigFile` builds it from TOML; `default` needs no file.
public struct ClusterConfig: Sendable, Equatable {
    // [supervisor]
    public var socketPath: String?
    public var eventLogPath: String?
    public var stateDir: String?
    public var runtimeDir: String?
    /// Group (name) whose members may use the control socket besides root.
    public var socketGroup: String?
    public var runID: String?
    /// Path of the kvnode binary; default: beside the running kvsupervisor.
    public var nodeBinary: String?
    public var stopGraceMs: Int = 3000
    public var readyTimeoutMs: Int = 10_000
    public var faultEffectDeadlineMs: Int = 1000
    /// Timing threads (fault scheduling, node heartbeats and deadlines) sleep until this long
    /// before their deadline and spin the rest, because a sleeping vCPU wakes late; 0 = never spin.
    public var timerSpinUs: Int = ClusterConfig.defaultTimerSpinUs
    public static let defaultTimerSpinUs = 200
    public static let timerSpinUsRange = 0...20_000
    /// SCHED_FIFO priority of a fault's thread from its last wait to the stamp after its syscall,
    /// when the process may use it; 0 = never. Read at start.
    public var schedPriority: Int = 1
    public static let schedPriorityRange = 0...99

    // [cluster]
    public var mode: NodeMode = .raft
    public var primaryBackup = PrimaryBackupSettings()
    public var raft = RaftSettings()
    public var hbIntervalMs: Int = 100
    public var hbTimeoutMs: Int = 200
    public var restart: RestartMode = .no
    public var restartSecMs: Int = 100
    public var restartMaxDelayMs: Int = 5000
    public var startLimitBurst: Int = 5
    public var startLimitIntervalMs: Int = 10_000

    // [[node]]
    public var nodes: [NodeConfig]

    public init(nodes: [NodeConfig]) { self.nodes = nodes }

    /// Three raft nodes A, B, C on loopback (HTTP 7101-7103, peers 8101-8103): what `kvsupervisor`
    /// runs with no config file.
    public static let `default` = ClusterConfig(nodes: [
        NodeConfig(id: "A", port: 7101), NodeConfig(id: "B", port: 7102), NodeConfig(id: "C", port: 7103),
    ])

    public var nodeIDs: [NodeID] { nodes.map(\.id) }
    public func node(_ id: NodeID) -> NodeConfig? { nodes.first { $0.id == id } }

    /// The kvnode arguments every supervised node gets, whatever its mode: identity, heartbeat
    /// timing, events on its notify socket.
    public func commonNodeArguments(for node: NodeConfig, runID: String) -> [String] {
        ["--id", node.id.rawValue, "--host", node.host, "--port", String(node.port),
         "--hb_interval_ms", String(hbIntervalMs), "--hb_timeout_ms", String(hbTimeoutMs),
         "--run_id", runID, "--events", "notify", "--timer_spin_us", String(timerSpinUs)]
    }

    /// The port that peers' traffic (heartbeats, and in raft mode Raft) goes to.
    public func peerTrafficPort(of node: NodeConfig) -> Int { mode == .raft ? node.effectivePeerPort : node.port }
}

extension ClusterConfig {
    /// Primary-backup mode's pairs (primary, its backup), in the primary's order in the file;
    /// the keys' rule is over this order.
    public var pairs: [(primary: NodeID, backup: NodeID)] {
        nodes.filter { $0.role == nil && $0.backupOf == nil }.compactMap { p in
            nodes.first { $0.backupOf == p.id }.map { (p.id, $0.id) }
        }
    }

    /// Primary-backup mode's coordinator.
    public var coordinator: NodeConfig? { nodes.first { $0.role == .coordinator } }
}
