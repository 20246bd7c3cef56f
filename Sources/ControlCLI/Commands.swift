import ArgumentParser
import Core
import Varlink
#if canImport(Glibc)
import Glibc
#endif

/// Options every subcommand shares.
struct Connection: ParsableArguments {
    @Option(name: .long, help: "Control socket path (default: /run/kvsupervisor/control as root under systemd, else $XDG_RUNTIME_DIR/kvsupervisor/control, else ./run/control).")
    var socket: String?
    @Flag(name: .long, help: "Print JSON for programs instead of tables.")
    var json = false

    var path: String { socket ?? getenv("KVCTL_SOCKET").map { String(cString: $0) } ?? defaultSocket() }

    func client() throws -> VarlinkClient {
        do { return try VarlinkClient(path: path) }
        catch VarlinkClientError.notPermitted(let path) {
            throw Failure("cannot connect to \(path): permission denied.\nOnly root and members of the socket's group "
                + "(kvsupervisor when installed) may control the supervisor: sudo usermod -aG kvsupervisor $USER, then log in again.")
        } catch {
            throw Failure("\(error)\nIs kvsupervisor running? Start it with 'make run' or 'systemctl start kvsupervisor', or pass --socket PATH.")
        }
    }

    /// Calls a method with typed parameters and reply; a Varlink error becomes a Failure with its explanation.
    func call<P: Encodable, R: Decodable>(_ method: String, _ parameters: P, _ reply: R.Type) throws -> R {
        switch try client().call("io.kvsupervisor.\(method)", parameters, replying: reply) {
        case .reply(let r, _): return r
        case .error(let name, let p): throw Failure(Explain.error(name, p))
        }
    }

    func call<R: Decodable>(_ method: String, _ reply: R.Type) throws -> R {
        try call(method, ControlProtocol.Empty(), reply)
    }

    private func defaultSocket() -> String {
        let system = "/run/kvsupervisor/control"
        if getuid() == 0, exists(system) { return system }
        if let xdg = getenv("XDG_RUNTIME_DIR") {
            let p = String(cString: xdg) + "/kvsupervisor/control"
            if exists(p) { return p }
        }
        if access("./run/control", F_OK) == 0 { return "./run/control" }
        return exists(system) ? system : "./run/control"
    }

    /// True also when the path is there but out of this user's reach, so that connecting says why.
    private func exists(_ path: String) -> Bool { access(path, F_OK) == 0 || errno == EACCES }
}

/// An operation that failed: printed on stderr, exit status 1.
struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

enum Explain {
    static func error(_ name: String, _ p: JSONValue?) -> String {
        let short = name.split(separator: ".").last.map(String.init) ?? name
        switch short {
        case "NoSuchNode": return "no node '\(Render.text(p?["node"]))'; list them with: kvctl nodes"
        case "NodeNotRunning":
            let node = Render.text(p?["node"])
            return "node '\(node)' is not running (state: \(Render.text(p?["state"]))); start it with: kvctl start \(node)"
        case "InvalidFault": return "invalid fault: \(Render.text(p?["reason"]))"
        case "PermissionDenied":
            return "permission denied: \(Render.text(p?["reason"])); run as root or as a member of the socket's group"
        case "InvalidParameter":
            return "invalid parameter '\(Render.text(p?["parameter"]))'" + (p?["reason"].map { ": \(Render.text($0))" } ?? "")
        case "OperationFailed": return "failed: \(Render.text(p?["reason"]))"
        case "ExperimentRunning":
            let id = Render.text(p?["run_id"])
            return "experiment \(id) is running; one runs at a time and manual faults wait for it (kvctl experiment cancel \(id) stops it)"
        case "InvalidSpec": return "spec refused: \(Render.text(p?["reason"]))"
        case "NoSuchExperiment": return "no experiment run \(Render.text(p?["run_id"])); list them with: kvctl experiment list"
        default: return "\(name): \(p.map(Render.json) ?? "")"
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Supervisor state, nodes and active faults.")
    @OptionGroup var connection: Connection

    struct Output: Encodable {
        var status: ControlProtocol.Status
        var nodes: [ControlProtocol.Node]
        var faults: [ControlProtocol.Fault]
    }

    func run() throws {
        let status = try connection.call("GetStatus", ControlProtocol.Status.self)
        let nodes = try connection.call("ListNodes", ControlProtocol.Nodes.self)
        let faults = try connection.call("ListFaults", ControlProtocol.Faults.self).faults
        if connection.json {
            print(Render.json(Output(status: status, nodes: nodes.nodes, faults: faults)))
            return
        }
        print("kvsupervisor \(status.version): \(status.state), \(status.nodesReady)/\(status.nodesTotal) nodes ready, "
            + "up \(status.uptimeMs) ms, mode \(status.mode), run \(status.runID)")
        print("events: \(status.eventLog)\n")
        print(Nodes.table(nodes))
        print("\nactive faults: \(faults.count), scheduled: \(status.scheduledFaults)")
        if !faults.isEmpty {
            print(Render.table(["FAULT_ID", "FAULT", "NODE", "AFFECTS"], faults.map {
                [$0.faultID, $0.fault, $0.node, $0.affected.joined(separator: ",")]
            }))
        }
    }
}

struct Nodes: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List nodes with pid, state, port, restarts and last exit.")
    @OptionGroup var connection: Connection

    func run() throws {
        let reply = try connection.call("ListNodes", ControlProtocol.Nodes.self)
        print(connection.json ? Render.json(reply) : Self.table(reply))
    }

    static func table(_ reply: ControlProtocol.Nodes) -> String {
        // Raft columns once any node has reported (raft mode).
        let raft = reply.nodes.contains { $0.raft != nil }
        let rows = reply.nodes.map { n -> [String] in
            var exit = "-"
            if let code = n.lastExit?.code { exit = "status \(code)" }
            if let sig = n.lastExit?.signal { exit = sig }
            var row = [n.id, n.pid.map(String.init) ?? "-", n.state, String(n.port), String(n.restarts), exit]
            if raft {
                let r = n.raft
                row += [r?.role ?? "-", r.map { String($0.term) } ?? "-", r?.leader ?? "-",
                        r.map { String($0.commitIndex) } ?? "-", r.map { String($0.appliedIndex) } ?? "-"]
            }
            return row
        }
        return Render.table(["NODE", "PID", "STATE", "PORT", "RESTARTS", "LAST_EXIT"]
                            + (raft ? ["ROLE", "TERM", "LEADER", "COMMIT", "APPLIED"] : []), rows)
    }
}

struct Inject: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inject a fault: kill, stop, cont, term, delay, partition, restart.",
        discussion: """
            kvctl inject kill B
            kvctl inject stop B --for 2s
            kvctl inject kill B --after 50ms
            kvctl inject delay B 150ms --jitter 20ms --for 10s
            kvctl inject partition B --peers A,C --for 5s
            """)
    @OptionGroup var connection: Connection
    @Argument(help: "kill, stop, cont, term, delay, partition or restart") var fault: String
    @Argument(help: "The node, or 'leader' (raft mode: the node that leads when the supervisor gets the request).") var node: String
    @Argument(help: "For delay: the added latency, e.g. 150ms.") var amount: String?
    @Option(help: "Apply after this long, e.g. 50ms.") var after: String?
    @Option(name: .customLong("for"), help: "Undo after this long (stop, delay, partition), e.g. 2s.") var duration: String?
    @Option(help: "For delay: random jitter, e.g. 20ms.") var jitter: String?
    @Option(help: "For partition: comma-separated nodes to cut the node off from (default: all others).") var peers: String?

    func validate() throws {
        guard let kind = FaultKind(rawValue: fault), kind != .heal else {
            throw ValidationError("unknown fault '\(fault)'; use kill, stop, cont, term, delay, partition or restart (heal is its own command)")
        }
        if kind == .delay && amount == nil { throw ValidationError("delay needs an amount: kvctl inject delay \(node) 150ms") }
        if kind != .delay && amount != nil { throw ValidationError("unexpected argument '\(amount!)': only delay takes an amount") }
        for (name, value) in [("after", after), ("for", duration), ("jitter", jitter), ("amount", amount)] {
            if let v = value, DurationText.wholeMilliseconds(v) == nil {
                throw ValidationError("--\(name) '\(v)' is not a duration; write e.g. 50ms, 2s or 1.5s")
            }
        }
    }

    func run() throws {
        let ms = { (text: String?) in text.flatMap(DurationText.wholeMilliseconds) }
        let p = ControlProtocol.InjectParameters(
            node: node, fault: fault, afterMs: ms(after), forMs: ms(duration), delayMs: ms(amount), jitterMs: ms(jitter),
            peers: peers.map { $0.split(separator: ",").map(String.init) })
        let reply = try connection.call("Inject", p, ControlProtocol.InjectReply.self)
        if connection.json { print(Render.json(reply)); return }
        let target = node == "leader" ? "leader \(reply.node ?? "?") (term \(reply.term.map(String.init) ?? "?"))" : node
        if reply.appliedMonoNs != nil {
            print("\(fault) \(target): applied (fault \(reply.faultID)); follow with: kvctl events --follow")
        } else {
            print("\(fault) \(target): scheduled in \(after ?? "0ms") (fault \(reply.faultID))")
        }
    }
}

struct Heal: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "End network faults (delay, partition), on one node or all.")
    @OptionGroup var connection: Connection
    @Argument var node: String?

    func run() throws {
        let reply = try connection.call("Heal", ControlProtocol.NodeParameter(node: node), ControlProtocol.HealReply.self)
        print(connection.json ? Render.json(reply) : "healed \(reply.healed.count) network fault(s)")
    }
}

/// start, stop and restart share everything but the method they call.
private func nodeAction(_ connection: Connection, _ node: String, _ method: String, _ verb: String) throws {
    let reply = try connection.call(method, ControlProtocol.NodeParameter(node: node), ControlProtocol.Empty.self)
    print(connection.json ? Render.json(reply) : "\(node): \(verb)")
}

struct NodeAction: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start a node.")
    @OptionGroup var connection: Connection
    @Argument var node: String
    func run() throws { try nodeAction(connection, node, "StartNode", "started") }
}

struct StopNode: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop a node (SIGTERM, then SIGKILL after the grace period).")
    @OptionGroup var connection: Connection
    @Argument var node: String
    func run() throws { try nodeAction(connection, node, "StopNode", "stopped") }
}

struct RestartNode: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restart", abstract: "Restart a node.")
    @OptionGroup var connection: Connection
    @Argument var node: String
    func run() throws { try nodeAction(connection, node, "RestartNode", "restarted") }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Recent events; --follow streams new ones.")
    @OptionGroup var connection: Connection
    @Flag(name: .shortAndLong, help: "Keep streaming events as they happen.") var follow = false
    @Option(help: "How many recent events to show first.") var last = 50
    @Option(help: "Only these kinds, comma-separated (e.g. declared_dead,fault_applied).") var kinds: String?

    func run() throws {
        let kindList = kinds.map { $0.split(separator: ",").map(String.init) }
        let print1: (Event) -> Void = { e in
            print(connection.json ? Render.json(e) : Render.eventLine(e))
            fflush(nil)
        }
        if !follow {
            let reply = try connection.call("ListEvents", ControlProtocol.EventQuery(limit: last, kinds: kindList),
                                            ControlProtocol.EventList.self)
            reply.events.forEach(print1)
            return
        }
        let client = try connection.client()
        var reply = try client.call("io.kvsupervisor.Subscribe", ControlProtocol.EventQuery(replay: last, kinds: kindList),
                                    more: true, replying: ControlProtocol.EventReply.self)
        while true {
            switch reply {
            case .error(let name, let p): throw Failure(Explain.error(name, p))
            case .reply(let r, let continues):
                print1(r.event)
                if !continues { return }
            }
            reply = try client.nextReply(as: ControlProtocol.EventReply.self)
        }
    }
}

struct Leader: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The current Raft leader (raft mode).")
    @OptionGroup var connection: Connection
    func run() throws {
        let status = try connection.call("GetStatus", ControlProtocol.Status.self)
        guard status.mode == "raft" else {
            throw Failure("the cluster runs in mode '\(status.mode)', which has no leader; set [cluster] mode = \"raft\"")
        }
        let nodes = try connection.call("ListNodes", ControlProtocol.Nodes.self).nodes
        guard let leader = Self.leader(nodes) else {
            throw Failure("no node reports itself leader right now (an election may be under way); see: kvctl nodes")
        }
        if connection.json {
            print(Render.json(Output(leader: leader.id, term: leader.raft!.term, port: leader.port,
                                     commitIndex: leader.raft!.commitIndex)))
        } else {
            print("\(leader.id) (term \(leader.raft!.term), port \(leader.port), commit \(leader.raft!.commitIndex))")
        }
    }

    struct Output: Encodable {
        var leader: String
        var term: UInt64
        var port: Int
        var commitIndex: UInt64
        enum CodingKeys: String, CodingKey { case leader, term, port, commitIndex = "commit_index" }
    }

    /// The node that reports itself leader in the highest term.
    static func leader(_ nodes: [ControlProtocol.Node]) -> ControlProtocol.Node? {
        nodes.filter { $0.raft?.role == "leader" }.max { $0.raft!.term < $1.raft!.term }
    }
}
