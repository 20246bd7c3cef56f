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

    /// Calls a method; a Varlink error becomes a Failure with its explanation.
    func call(_ method: String, _ parameters: JSONValue = .object([:])) throws -> JSONValue {
        let reply = try client().call("io.kvsupervisor.\(method)", parameters)
        if let error = reply.error { throw Failure(Explain.error(error, reply.parameters)) }
        return reply.parameters ?? .object([:])
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
        default: return "\(name): \(p.map(Render.json) ?? "")"
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Supervisor state, nodes and active faults.")
    @OptionGroup var connection: Connection

    func run() throws {
        let status = try connection.call("GetStatus")
        let nodes = try connection.call("ListNodes")
        let faults = try connection.call("ListFaults")
        if connection.json {
            print(Render.json(["status": status, "nodes": nodes["nodes"] ?? [], "faults": faults["faults"] ?? []]))
            return
        }
        print("kvsupervisor \(Render.text(status["version"])): \(Render.text(status["state"])), "
            + "\(Render.text(status["nodes_ready"]))/\(Render.text(status["nodes_total"])) nodes ready, "
            + "up \(Render.text(status["uptime_ms"])) ms, mode \(Render.text(status["mode"])), run \(Render.text(status["run_id"]))")
        print("events: \(Render.text(status["event_log"]))\n")
        print(Nodes.table(nodes))
        let active = faults["faults"]?.arrayValue ?? []
        print("\nactive faults: \(active.count), scheduled: \(Render.text(status["scheduled_faults"]))")
        if !active.isEmpty {
            print(Render.table(["FAULT_ID", "FAULT", "NODE", "AFFECTS"], active.map {
                [Render.text($0["fault_id"]), Render.text($0["fault"]), Render.text($0["node"]),
                 ($0["affected"]?.arrayValue ?? []).map(Render.text).joined(separator: ",")]
            }))
        }
    }
}

struct Nodes: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List nodes with pid, state, port, restarts and last exit.")
    @OptionGroup var connection: Connection

    func run() throws {
        let reply = try connection.call("ListNodes")
        print(connection.json ? Render.json(reply) : Self.table(reply))
    }

    static func table(_ reply: JSONValue) -> String {
        let rows = (reply["nodes"]?.arrayValue ?? []).map { n -> [String] in
            var exit = "-"
            if let code = n["last_exit"]?["code"] { exit = "status \(Render.text(code))" }
            if let sig = n["last_exit"]?["signal"] { exit = Render.text(sig) }
            return [Render.text(n["id"]), Render.text(n["pid"]), Render.text(n["state"]), Render.text(n["port"]),
                    Render.text(n["restarts"]), exit]
        }
        return Render.table(["NODE", "PID", "STATE", "PORT", "RESTARTS", "LAST_EXIT"], rows)
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
    @Argument(help: "The node.") var node: String
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
        var p: [String: JSONValue] = ["node": .string(node), "fault": .string(fault)]
        if let a = after { p["after_ms"] = .integer(Int64(DurationText.wholeMilliseconds(a)!)) }
        if let d = duration { p["for_ms"] = .integer(Int64(DurationText.wholeMilliseconds(d)!)) }
        if let a = amount { p["delay_ms"] = .integer(Int64(DurationText.wholeMilliseconds(a)!)) }
        if let j = jitter { p["jitter_ms"] = .integer(Int64(DurationText.wholeMilliseconds(j)!)) }
        if let peers { p["peers"] = .array(peers.split(separator: ",").map { .string(String($0)) }) }
        let reply = try connection.call("Inject", .object(p))
        if connection.json { print(Render.json(reply)); return }
        if reply["applied_mono_ns"] != nil {
            print("\(fault) \(node): applied (fault \(Render.text(reply["fault_id"]))); follow with: kvctl events --follow")
        } else {
            print("\(fault) \(node): scheduled in \(after ?? "0ms") (fault \(Render.text(reply["fault_id"])))")
        }
    }
}

struct Heal: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "End network faults (delay, partition), on one node or all.")
    @OptionGroup var connection: Connection
    @Argument var node: String?

    func run() throws {
        let reply = try connection.call("Heal", node.map { ["node": .string($0)] } ?? [:])
        let healed = reply["healed"]?.arrayValue ?? []
        print(connection.json ? Render.json(reply) : "healed \(healed.count) network fault(s)")
    }
}

/// start, stop and restart share everything but the method they call.
private func nodeAction(_ connection: Connection, _ node: String, _ method: String, _ verb: String) throws {
    let reply = try connection.call(method, ["node": .string(node)])
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
        var p: [String: JSONValue] = [:]
        if let kinds { p["kinds"] = .array(kinds.split(separator: ",").map { .string(String($0)) }) }
        let print1: (JSONValue) -> Void = { e in
            print(connection.json ? Render.json(e) : Render.eventLine(e))
            fflush(nil)
        }
        if !follow {
            p["limit"] = .integer(Int64(last))
            let reply = try connection.call("ListEvents", .object(p))
            for e in reply["events"]?.arrayValue ?? [] { print1(e) }
            return
        }
        p["replay"] = .integer(Int64(last))
        let client = try connection.client()
        var reply = try client.call(VarlinkCall(method: "io.kvsupervisor.Subscribe", parameters: .object(p), more: true))
        while true {
            if let error = reply.error { throw Failure(Explain.error(error, reply.parameters)) }
            if let e = reply.parameters?["event"] { print1(e) }
            if reply.continues != true { return }
            reply = try client.nextReply()
        }
    }
}

struct Leader: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The current Raft leader (raft mode).")
    @OptionGroup var connection: Connection
    func run() throws {
        let status = try connection.call("GetStatus")
        guard status["mode"]?.stringValue == "raft" else {
            throw Failure("the cluster runs in mode '\(Render.text(status["mode"]))', which has no leader; set [cluster] mode = \"raft\"")
        }
        throw Failure("raft mode is not implemented yet")
    }
}
