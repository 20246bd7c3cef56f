import Core
import TOML

/// Jepsen's loop as one experiment: clients drive the store over its HTTP API while a nemesis
/// injects faults, and the history is checked at the end.
///
///     [experiment]
///     kind = "linearizability"
///     mode = "raft"                 # or "primary-backup" (groups = pairs); nodes, groups and timing as "failover"
///     clients = 5
///     keys = 8
///     ops = { get = 4, put = 4, cas = 1, delete = 1, mput = 0 }   # weights
///     rate = 200                    # operations a second over all clients; 0: each client as fast as it is answered
///     duration_s = 20
///     read_policy = "linearizable"  # or "stale": a node answers from its own copy
///     op_timeout_ms = 1000          # past it an operation's outcome is unknown
///     seed = 1
///
///     [[experiment.nemesis]]
///     fault = "partition"           # kill | stop | partition | delay | restart
///     target = "leader"             # leader | random | minority | majority | halves | key-leader | a node id
///     every_ms = 3000               # a new fault this often (the first at every_ms)
///     for_ms = 1000                 # how long it lasts (kill: the node is started again after)
///     direction = "out"             # partition, delay: only what the target sends ("out") or receives ("in")
public struct LinearizabilitySpec: Sendable, Equatable {
    public enum ReadPolicy: String, Sendable, CaseIterable { case linearizable, stale }

    /// The operations clients choose from, with their relative weights.
    public struct Mix: Sendable, Equatable {
        public var get = 4, put = 4, cas = 1, delete = 1, mput = 0
        public init() {}
        public var total: Int { self.get + put + cas + delete + mput }
    }

    public var layout: StoreLayout
    public var clients: Int
    public var keys: Int
    public var mix: Mix
    /// Operations a second over all clients; 0 for a closed loop.
    public var rate: Int
    public var durationS: Int
    public var readPolicy: ReadPolicy
    public var opTimeoutMs: Int
    public var nemesis: [NemesisSpec]
    public var seed: UInt64

    public init(layout: StoreLayout = StoreLayout(groups: 1), clients: Int = 5, keys: Int = 8, mix: Mix = Mix(), rate: Int = 200,
                durationS: Int = 20, readPolicy: ReadPolicy = .linearizable, opTimeoutMs: Int = 1000, nemesis: [NemesisSpec] = [],
                seed: UInt64 = 1) {
        self.layout = layout; self.clients = clients; self.keys = keys; self.mix = mix; self.rate = rate; self.durationS = durationS
        self.readPolicy = readPolicy; self.opTimeoutMs = opTimeoutMs; self.nemesis = nemesis; self.seed = seed
    }
}

/// One kind of fault the nemesis repeats through the run.
public struct NemesisSpec: Sendable, Equatable {
    public enum Fault: String, Sendable, CaseIterable { case kill, stop, partition, delay, restart }
    public enum Target: Sendable, Equatable, CustomStringConvertible {
        /// A random group's leader (primary-backup: a random pair's active node).
        case leader
        case random
        /// A random minority (fewer than half the storage nodes), or majority (more than half).
        case minority, majority
        /// partition only: the storage nodes split at random into a minority and a majority, cut from each other.
        case halves
        /// The leader of a random workload key's group.
        case keyLeader
        case node(NodeID)

        public var description: String {
            switch self {
            case .leader: "leader"
            case .random: "random"
            case .minority: "minority"
            case .majority: "majority"
            case .halves: "halves"
            case .keyLeader: "key-leader"
            case .node(let id): id.rawValue
            }
        }
    }

    public var fault: Fault
    public var target: Target
    public var everyMs: Int
    /// How long each lasts; nil for restart (a moment).
    public var forMs: Int?
    public var delayMs: Int?
    public var jitterMs: Int?
    /// partition and delay: one direction of the target's links only (a one-way partition).
    public var direction: LinkDirection?

    public init(fault: Fault, target: Target, everyMs: Int, forMs: Int? = nil, delayMs: Int? = nil, jitterMs: Int? = nil,
                direction: LinkDirection? = nil) {
        self.fault = fault; self.target = target; self.everyMs = everyMs; self.forMs = forMs; self.delayMs = delayMs; self.jitterMs = jitterMs
        self.direction = direction
    }
}

extension ExperimentSpecParser {
    static let linearizabilityKeys = ["kind", "clients", "keys", "ops", "rate", "duration_s", "read_policy", "op_timeout_ms",
                                      "nemesis", "seed"] + layoutKeys
    static let nemesisKeys = ["fault", "target", "every_ms", "for_ms", "delay_ms", "jitter_ms", "direction"]

    static func linearizability(_ t: SpecTable) throws(ConfigError) -> LinearizabilitySpec {
        var s = LinearizabilitySpec()
        s.layout = try layout(t, defaultRaftGroups: 1)
        s.clients = try t.int("clients", default: 5, 1...256)
        s.keys = try t.int("keys", default: 8, 1...10_000)
        s.mix = try mix(t)
        s.rate = try t.int("rate", default: 200, 0...100_000)
        s.durationS = try t.int("duration_s", default: 20, 1...3600)
        if let v = t.table["read_policy"] {
            guard let p = v.string.flatMap(LinearizabilitySpec.ReadPolicy.init(rawValue:)) else {
                throw t.fail("read_policy", "'\(v.string ?? v.typeName)' is not a read policy; use \"linearizable\" or \"stale\"")
            }
            s.readPolicy = p
        }
        s.opTimeoutMs = try t.int("op_timeout_ms", default: 1000, 10...60_000)
        s.seed = UInt64(try t.int("seed", default: 1, 0...Int.max))
        if let v = t.table["nemesis"] {
            guard let list = v.array else {
                throw t.fail("nemesis", "must be a list of faults: [[experiment.nemesis]] tables, or nemesis = [{ fault = \"kill\", ... }]")
            }
            for (i, item) in list.enumerated() {
                guard let table = item.table else { throw t.fail("nemesis", "entry \(i + 1) is \(item.typeName), not a table") }
                s.nemesis.append(try nemesis(SpecTable(table: table, file: t.file, path: "experiment.nemesis[\(i + 1)]"), layout: s.layout))
            }
        }
        return s
    }

    private static func mix(_ t: SpecTable) throws(ConfigError) -> LinearizabilitySpec.Mix {
        var m = LinearizabilitySpec.Mix()
        guard let v = t.table["ops"] else { return m }
        guard let table = v.table else { throw t.fail("ops", "must be a table of weights, e.g. ops = { get = 4, put = 4, cas = 1 }") }
        let ops = SpecTable(table: table, file: t.file, path: "experiment.ops")
        let names = ["get", "put", "cas", "delete", "mput"]
        for key in table.keys where !names.contains(key) { throw ops.fail(key, "is not an operation; use \(names.joined(separator: ", "))") }
        // Named weights replace the defaults; those not named are 0.
        m.get = try ops.int("get", default: 0, 0...1000); m.put = try ops.int("put", default: 0, 0...1000)
        m.cas = try ops.int("cas", default: 0, 0...1000); m.delete = try ops.int("delete", default: 0, 0...1000)
        m.mput = try ops.int("mput", default: 0, 0...1000)
        if m.total == 0 { throw t.fail("ops", "every weight is 0: give at least one operation a weight above 0") }
        if m.get == 0 { throw t.fail("ops", "get has weight 0: a history without reads cannot show a stale or lost value") }
        return m
    }

    private static func nemesis(_ t: SpecTable, layout: StoreLayout) throws(ConfigError) -> NemesisSpec {
        for key in t.table.keys where !nemesisKeys.contains(key) {
            throw t.fail(key, "is not a nemesis key (its keys: \(nemesisKeys.joined(separator: ", ")))")
        }
        guard let fv = t.table["fault"] else { throw t.fail("fault", "missing: kill, stop, partition, delay or restart") }
        guard let fault = fv.string.flatMap(NemesisSpec.Fault.init(rawValue:)) else {
            throw t.fail("fault", "'\(fv.string ?? fv.typeName)' is not a nemesis fault; use kill, stop, partition, delay or restart")
        }
        var target = NemesisSpec.Target.leader
        if let v = t.table["target"] {
            guard let name = v.string else { throw t.fail("target", "must be a string") }
            switch name {
            case "leader": target = .leader
            case "random": target = .random
            case "minority": target = .minority
            case "majority": target = .majority
            case "halves": target = .halves
            case "key-leader": target = .keyLeader
            default:
                guard let id = NodeID(validating: name) else {
                    throw t.fail("target", "'\(name)' is not a target; use leader, random, minority, majority, halves, key-leader or a node id")
                }
                guard layout.allNodes.contains(id) else {
                    throw t.fail("target", "no node '\(name)' in this store (its nodes: \(layout.allNodes.map(\.rawValue).joined(separator: ", ")))")
                }
                target = .node(id)
            }
        }
        if target == .halves && fault != .partition { throw t.fail("target", "halves only applies to fault = \"partition\"") }
        guard t.table["every_ms"] != nil else { throw t.fail("every_ms", "missing: how often the nemesis strikes, in ms") }
        var n = NemesisSpec(fault: fault, target: target, everyMs: try t.int("every_ms", default: 0, 100...3_600_000))
        if fault == .restart {
            if t.table["for_ms"] != nil { throw t.fail("for_ms", "a restart is a moment: it has no for_ms") }
        } else {
            let forMs = try t.int("for_ms", default: 1000, 1...3_600_000)
            if forMs >= n.everyMs {
                throw t.fail("for_ms", "\(forMs) is not below every_ms (\(n.everyMs)): each fault must end before the next begins")
            }
            n.forMs = forMs
        }
        if fault == .delay {
            guard t.table["delay_ms"] != nil else { throw t.fail("delay_ms", "missing: the one-way latency a delay adds, in ms") }
            let delayMs = try t.int("delay_ms", default: 0, 1...FaultSpec.maxDelayMs)
            n.delayMs = delayMs
            n.jitterMs = try t.int("jitter_ms", default: 0, 0...delayMs)
        } else if let key = ["delay_ms", "jitter_ms"].first(where: { t.table[$0] != nil }) {
            throw t.fail(key, "only applies to fault = \"delay\"")
        }
        if let v = t.table["direction"] {
            guard fault == .partition || fault == .delay else { throw t.fail("direction", "only applies to partition and delay") }
            guard layout.mode == .raft else {
                throw t.fail("direction", "needs mode = \"raft\": primary-backup's HTTP carries requests and their answers on the same "
                             + "connections, so a link's direction is not a message direction there")
            }
            guard let d = v.string.flatMap(LinkDirection.init(rawValue:)) else {
                throw t.fail("direction", "'\(v.string ?? v.typeName)' is not a direction; use \"out\" (what the target sends) or \"in\" (what it receives)")
            }
            n.direction = d
        }
        return n
    }
}
