#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Every kind of event the lab records. Raw values are the JSONL `event` field and journal `KV_EVENT`.
public enum EventKind: String, Sendable, Codable, CaseIterable {
    case supervisorStarted = "supervisor_started"
    case supervisorStopping = "supervisor_stopping"
    case configReloaded = "config_reloaded"
    case configRejected = "config_rejected"
    case nodeStarted = "node_started"
    case nodeReady = "node_ready"
    case nodeExited = "node_exited"
    case nodeRestartScheduled = "node_restart_scheduled"
    case faultRequested = "fault_requested"
    case faultApplied = "fault_applied"
    case faultFailed = "fault_failed"
    case faultCleared = "fault_cleared"
    case suspect
    case declaredDead = "declared_dead"
    case declaredAlive = "declared_alive"
    case leaderElected = "leader_elected"
    case leaderLost = "leader_lost"
    /// Retired: never emitted (kept so that the journal MESSAGE_IDs of later kinds stay put).
    case writeAcked = "write_acked"
    case experimentStarted = "experiment_started"
    case experimentProgress = "experiment_progress"
    case experimentFinished = "experiment_finished"
    /// A node found a torn final WAL record on start and cut it off (`offset`, `path`, `reason`).
    case walTruncated = "wal_truncated"
    /// A scheduled fault taken back before its time (`kvctl faults cancel`).
    case faultCancelled = "fault_cancelled"
    /// kvnode's own log (`--log_path`): a seed detector cannot connect to its `--peer_addr`.
    case peerUnreachable = "peer_unreachable"
    /// kvnode's own log (`--log_path`): heartbeat lines sent in the last second (`count`).
    case heartbeatsSent = "heartbeats_sent"
    /// Primary-backup: an active node's writes confirmed by its standby in the last second (`count`),
    /// with their lag from acknowledgement to applied on the standby (`lag_ms_max`, `lag_ms_mean`)
    /// and what is still unconfirmed (`queued`).
    case replicationLag = "replication_lag"
    /// Primary-backup: the coordinator asked `peer` to copy its pair in full from `leader`.
    case syncStarted = "sync_started"
    /// Primary-backup: `peer` holds the full copy and follows the stream.
    case syncFinished = "sync_finished"
    /// Primary-backup: a returning primary serves its pair again, after its sync and the hand-back.
    case primaryResumed = "primary_resumed"

    /// Kinds that are emitted: what `--kinds` accepts.
    public static var emitted: [EventKind] { allCases.filter { $0 != .writeAcked } }
}

/// Ground truth for a detection: was the peer really down (by a fault) when it was declared dead?
public enum DetectionLabel: String, Sendable, Codable {
    case trueDetection = "true_detection"
    case falseSuspicion = "false_suspicion"
}

/// One event, schema version 1. Fields that do not apply to a kind are absent, not null.
public struct Event: Sendable, Codable, Equatable {
    public var v: Int = 1
    public var runID: String
    public var kind: EventKind
    public var node: NodeID?
    public var peer: NodeID?
    public var tWallMs: WallMillis
    public var tMonoNs: MonotonicNanos

    // Detection (from the node; the supervisor adds the correlation fields).
    public var silenceMs: Double?
    public var lastHeardMonoNs: MonotonicNanos?
    public var timeoutMs: Int?
    public var tFailMonoNs: MonotonicNanos?
    public var detectionLatencyMs: Double?
    public var detectorOvershootMs: Double?
    public var label: DetectionLabel?

    // Faults.
    public var faultID: String?
    public var fault: FaultKind?
    public var requested: Stamp?
    public var applied: Stamp?
    /// How long the applying syscall or proxy switch took; `applied` is its end. A long one means
    /// the thread lost its CPU meanwhile (to the host, on a VM), so `applied` is late by up to this.
    public var applyNs: Int64?
    public var effect: Stamp?
    public var delayMs: Int?
    public var jitterMs: Int?
    public var forMs: Int?
    /// fault_requested / fault_cancelled of a scheduled fault: how long after the request it was due.
    public var afterMs: Int?
    public var peers: [NodeID]?
    /// A network fault on one direction of the node's links only.
    public var direction: LinkDirection?

    // Processes.
    public var pid: Int32?
    public var exitCode: Int32?
    public var signal: String?
    public var restartInMs: Int?

    /// Free text for kinds that need a reason (fault_failed, config_rejected).
    public var reason: String?

    // Raft.
    /// The leader elected or lost.
    public var leader: NodeID?
    public var term: UInt64?
    /// The Raft group the election is about (a node runs one replica per group).
    public var group: Int?
    /// leader_elected: since the previous leader was lost (the supervisor's earliest sign of it:
    /// the kill of the leader, or the first leader_lost since the last election).
    public var sinceLostMs: Double?
    /// config_reloaded: each changed setting and what became of it.
    public var changes: [SettingChange]?
    /// heartbeats_sent, replication_lag: how many.
    public var count: Int?
    /// replication_lag.
    public var lagMsMax: Double?
    public var lagMsMean: Double?
    public var queued: Int?
    /// supervisor_started: the version and every setting in force (key -> value), so a log explains itself.
    public var version: String?
    public var settings: [String: String]?
    // WAL; config_reloaded / config_rejected: the file.
    public var path: String?
    public var offset: Int?

    enum CodingKeys: String, CodingKey {
        case v, runID = "run_id", kind = "event", node, peer, tWallMs = "t_wall_ms", tMonoNs = "t_mono_ns"
        case silenceMs = "silence_ms", lastHeardMonoNs = "last_heard_mono_ns", timeoutMs = "timeout_ms"
        case tFailMonoNs = "t_fail_mono_ns", detectionLatencyMs = "detection_latency_ms"
        case detectorOvershootMs = "detector_overshoot_ms", label
        case faultID = "fault_id", fault, requested, applied, applyNs = "apply_ns", effect
        case delayMs = "delay_ms", jitterMs = "jitter_ms", forMs = "for_ms", afterMs = "after_ms", peers, direction
        case pid, exitCode = "exit_code", signal, restartInMs = "restart_in_ms", reason
        case leader, term, group, sinceLostMs = "since_lost_ms", changes, version, settings, count, path, offset
        case lagMsMax = "lag_ms_max", lagMsMean = "lag_ms_mean", queued
    }

    public init(kind: EventKind, runID: String, node: NodeID? = nil, peer: NodeID? = nil, at stamp: Stamp = .now()) {
        self.kind = kind
        self.runID = runID
        self.node = node
        self.peer = peer
        self.tWallMs = stamp.wallMs
        self.tMonoNs = stamp.monoNs
    }

    public var stamp: Stamp { Stamp(wallMs: tWallMs, monoNs: tMonoNs) }

    /// One JSONL line, without the newline.
    public func jsonLine() -> String {
        let data = (try? Event.encoder.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    public static func decode(jsonLine: some StringProtocol) throws -> Event {
        try JSONDecoder().decode(Event.self, from: Data(jsonLine.utf8))
    }

    private static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return e
    }()
}

extension Stamp {
    enum CodingKeys: String, CodingKey { case wallMs = "wall_ms", monoNs = "mono_ns" }
}
