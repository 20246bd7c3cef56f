/// io.kvsupervisor's parameters and replies as types (Sources/Daemon/io.kvsupervisor.varlink is
/// the IDL they follow). The daemon encodes replies and decodes parameters with these; kvctl does
/// the reverse. Integers are Int64/Int: a monotonic-ns stamp stays exact past 2^53.
public enum ControlProtocol {
    /// No parameters, or a reply with none (StartNode, StopNode, RestartNode).
    public struct Empty: Codable, Sendable { public init() {} }

    public struct Status: Codable, Sendable, Equatable {
        public var state: String
        public var version: String
        public var uptimeMs: Int64
        public var nodesReady: Int
        public var nodesTotal: Int
        public var activeFaults: Int
        public var scheduledFaults: Int
        public var runID: String
        public var mode: String
        public var eventLog: String
        public var pid: Int32
        /// The file the configuration came from; nil for the built-in default.
        public var configFile: String?

        public init(state: String, version: String, uptimeMs: Int64, nodesReady: Int, nodesTotal: Int, activeFaults: Int,
                    scheduledFaults: Int, runID: String, mode: String, eventLog: String, pid: Int32, configFile: String?) {
            self.state = state; self.version = version; self.uptimeMs = uptimeMs; self.nodesReady = nodesReady
            self.nodesTotal = nodesTotal; self.activeFaults = activeFaults; self.scheduledFaults = scheduledFaults
            self.runID = runID; self.mode = mode; self.eventLog = eventLog; self.pid = pid; self.configFile = configFile
        }

        enum CodingKeys: String, CodingKey {
            case state, version, uptimeMs = "uptime_ms", nodesReady = "nodes_ready", nodesTotal = "nodes_total"
            case activeFaults = "active_faults", scheduledFaults = "scheduled_faults", runID = "run_id", mode
            case eventLog = "event_log", pid, configFile = "config_file"
        }
    }

    public struct ExitStatus: Codable, Sendable, Equatable {
        public var code: Int32?
        public var signal: String?
        public init(code: Int32? = nil, signal: String? = nil) { self.code = code; self.signal = signal }
    }

    public struct Node: Codable, Sendable, Equatable {
        public var id: String
        public var pid: Int32?
        public var state: String
        public var port: Int
        public var restarts: Int
        public var lastExit: ExitStatus?
        public var raft: RaftView?

        public init(id: String, pid: Int32?, state: String, port: Int, restarts: Int, lastExit: ExitStatus?, raft: RaftView? = nil) {
            self.id = id; self.pid = pid; self.state = state; self.port = port; self.restarts = restarts; self.lastExit = lastExit
            self.raft = raft
        }

        enum CodingKeys: String, CodingKey { case id, pid, state, port, restarts, lastExit = "last_exit", raft }
    }

    public struct Nodes: Codable, Sendable { public var nodes: [Node]; public init(nodes: [Node]) { self.nodes = nodes } }
    /// StartNode, StopNode, RestartNode: the node as it is when the action returns.
    public struct NodeReply: Codable, Sendable { public var node: Node; public init(node: Node) { self.node = node } }

    /// A fault in force ("active": applied, not yet undone) or waiting for its time ("scheduled").
    public struct Fault: Codable, Sendable, Equatable {
        public var faultID: String
        public var state: String
        public var fault: String
        public var node: String
        public var affected: [String]
        public var requested: Stamp
        /// Scheduled: when it will be applied (requested + after_ms).
        public var due: Stamp?
        public var applied: Stamp?
        public var afterMs: Int?
        public var forMs: Int?
        public var delayMs: Int?
        public var jitterMs: Int?

        public init(faultID: String, state: String, fault: String, node: String, affected: [String], requested: Stamp,
                    due: Stamp? = nil, applied: Stamp?, afterMs: Int?, forMs: Int?, delayMs: Int?, jitterMs: Int?) {
            self.faultID = faultID; self.state = state; self.fault = fault; self.node = node; self.affected = affected
            self.requested = requested; self.due = due; self.applied = applied; self.afterMs = afterMs
            self.forMs = forMs; self.delayMs = delayMs; self.jitterMs = jitterMs
        }

        enum CodingKeys: String, CodingKey {
            case faultID = "fault_id", state, fault, node, affected, requested, due, applied, afterMs = "after_ms"
            case forMs = "for_ms", delayMs = "delay_ms", jitterMs = "jitter_ms"
        }
    }

    public struct FaultIDParameter: Codable, Sendable {
        public var faultID: String
        public init(faultID: String) { self.faultID = faultID }
        enum CodingKeys: String, CodingKey { case faultID = "fault_id" }
    }

    public struct Faults: Codable, Sendable { public var faults: [Fault]; public init(faults: [Fault]) { self.faults = faults } }

    public struct InjectParameters: Codable, Sendable {
        public var node: String
        /// With node "leader": the leader of this key's Raft group.
        public var key: String?
        public var fault: String
        public var afterMs: Int?
        public var forMs: Int?
        public var delayMs: Int?
        public var jitterMs: Int?
        public var peers: [String]?
        /// partition, delay: "out" (what the node sends) or "in" (what it receives) only.
        public var direction: String?

        public init(node: String, fault: String, afterMs: Int? = nil, forMs: Int? = nil, delayMs: Int? = nil,
                    jitterMs: Int? = nil, peers: [String]? = nil, key: String? = nil, direction: String? = nil) {
            self.node = node; self.fault = fault; self.afterMs = afterMs; self.forMs = forMs; self.delayMs = delayMs
            self.jitterMs = jitterMs; self.peers = peers; self.key = key; self.direction = direction
        }

        enum CodingKeys: String, CodingKey {
            case node, key, fault, afterMs = "after_ms", forMs = "for_ms", delayMs = "delay_ms", jitterMs = "jitter_ms", peers, direction
        }
    }

    public struct InjectReply: Codable, Sendable {
        public var faultID: String
        public var appliedWallMs: Int64?
        public var appliedMonoNs: Int64?
        /// The node hit: the one named, or the leader that `leader` resolved to.
        public var node: String?
        /// For `leader`: the term in which that node was leader when the fault was requested.
        public var term: UInt64?
        /// For `leader` with a key: the key's Raft group.
        public var group: Int?

        public init(faultID: String, applied: Stamp?, node: String? = nil, term: UInt64? = nil, group: Int? = nil) {
            self.faultID = faultID
            appliedWallMs = applied?.wallMs
            appliedMonoNs = applied?.monoNs
            self.node = node
            self.term = term
            self.group = group
        }

        enum CodingKeys: String, CodingKey {
            case faultID = "fault_id", appliedWallMs = "applied_wall_ms", appliedMonoNs = "applied_mono_ns", node, term, group
        }
    }

    /// Heal(node: ?string) and the node methods' (node: string) parameters.
    public struct NodeParameter: Codable, Sendable {
        public var node: String?
        public init(node: String?) { self.node = node }
    }

    public struct ReloadParameters: Codable, Sendable {
        public var restartNodes: Bool?
        public init(restartNodes: Bool?) { self.restartNodes = restartNodes }
        enum CodingKeys: String, CodingKey { case restartNodes = "restart_nodes" }
    }

    public struct ReloadReply: Codable, Sendable {
        public var file: String
        public var changes: [SettingChange]
        public var restarted: [String]
        public init(file: String, changes: [SettingChange], restarted: [String]) {
            self.file = file; self.changes = changes; self.restarted = restarted
        }
    }

    public struct HealReply: Codable, Sendable { public var healed: [String]; public init(healed: [String]) { self.healed = healed } }

    public struct EventQuery: Codable, Sendable {
        public var limit: Int?
        public var replay: Int?
        public var kinds: [String]?
        /// Only events of this run (the supervisor's run id, or an experiment's).
        public var runID: String?
        public init(limit: Int? = nil, replay: Int? = nil, kinds: [String]? = nil, runID: String? = nil) {
            self.limit = limit; self.replay = replay; self.kinds = kinds; self.runID = runID
        }
        enum CodingKeys: String, CodingKey { case limit, replay, kinds, runID = "run_id" }
    }

    public struct EventList: Codable, Sendable { public var events: [Event]; public init(events: [Event]) { self.events = events } }
    public struct EventReply: Codable, Sendable { public var event: Event; public init(event: Event) { self.event = event } }
}
