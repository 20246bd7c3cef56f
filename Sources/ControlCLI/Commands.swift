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
    /// `flags` maps the daemon's parameter names to the flags the user typed, so errors name those.
    func call<P: Encodable, R: Decodable>(_ method: String, _ parameters: P, _ reply: R.Type, flags: [String: String] = [:]) throws -> R {
        switch try client().call("io.kvsupervisor.\(method)", parameters, replying: reply) {
        case .reply(let r, _): return r
        case .error(let name, let p): throw Failure(Explain.error(name, p, flags: flags))
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
    static func error(_ name: String, _ p: JSONValue?, flags: [String: String] = [:]) -> String {
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
            let parameter = Render.text(p?["parameter"])
            let reason = p?["reason"].map { ": \(Render.text($0))" } ?? ""
            if let flag = flags[parameter] { return "\(flag)\(reason)" }
            return "invalid parameter '\(parameter)'\(reason)"
        case "NoLeader": return Render.text(p?["reason"])
        case "ReloadRefused": return "reload refused: \(Render.text(p?["reason"]))"
        case "NoSuchFault":
            return "cannot cancel fault \(Render.text(p?["fault_id"])): \(Render.text(p?["reason"])); list faults with: kvctl faults"
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
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Supervisor state, nodes and active faults.")
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
        let active = faults.filter { $0.state == "active" }
        print("\nactive faults: \(active.count), scheduled: \(faults.count - active.count) (list them with: kvctl faults)")
        if !active.isEmpty {
            print(Render.table(["FAULT_ID", "FAULT", "NODE", "AFFECTS"], active.map {
                [$0.faultID, $0.fault, $0.node, $0.affected.joined(separator: ",")]
            }))
        }
    }
}

struct Nodes: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "nodes", abstract: "List nodes with pid, state, port, restarts and last exit.")
    @OptionGroup var connection: Connection
    @Flag(help: "First wait until every node is ready (raft mode: and a leader is known), as after make run.") var wait = false
    @Option(parsing: .unconditional, help: "With --wait: give up after this long, e.g. 30s.") var timeout = "30s"

    func validate() throws {
        do { _ = try DurationText.wholeMilliseconds(timeout, flag: "--timeout", min: 1) } catch { throw ValidationError(error.description) }
    }

    func run() throws {
        var reply = try connection.call("ListNodes", ControlProtocol.Nodes.self)
        if wait {
            let raft = try connection.call("GetStatus", ControlProtocol.Status.self).mode == "raft"
            let deadline = monotonicNow() + Int64(try DurationText.wholeMilliseconds(timeout, flag: "--timeout")) * 1_000_000
            func settled(_ nodes: [ControlProtocol.Node]) -> Bool {
                nodes.allSatisfy { $0.state == "ready" && (!raft || $0.raft != nil) } && (!raft || Leader.leader(nodes) != nil)
            }
            while !settled(reply.nodes) {
                if monotonicNow() >= deadline {
                    throw Failure("not every node is ready\(raft ? " with a leader" : "") within \(timeout):\n" + Self.table(reply))
                }
                usleep(20_000)
                reply = try connection.call("ListNodes", ControlProtocol.Nodes.self)
            }
        }
        print(connection.json ? Render.json(reply) : Self.table(reply))
    }

    static func table(_ reply: ControlProtocol.Nodes) -> String {
        if reply.nodes.contains(where: { ["primary", "backup", "coordinator"].contains($0.raft?.role) }) { return pairTable(reply) }
        // Raft columns once any node has reported (raft mode); with several groups, how many each
        // node leads (the other Raft columns are group 0's).
        let raft = reply.nodes.contains { $0.raft != nil }
        let groups = reply.nodes.contains { $0.raft?.groups != nil }
        let rows = reply.nodes.map { n -> [String] in
            var exit = "-"
            if let code = n.lastExit?.code { exit = "status \(code)" }
            if let sig = n.lastExit?.signal { exit = sig }
            var row = [n.id, n.pid.map(String.init) ?? "-", n.state, String(n.port), String(n.restarts), exit]
            if raft {
                let r = n.raft
                row += [r?.role ?? "-", r.map { String($0.term) } ?? "-", r?.leader ?? "-",
                        r.map { String($0.commitIndex) } ?? "-", r.map { String($0.appliedIndex) } ?? "-"]
                if groups { row.append(r.map { v in "\(v.allGroups.filter { $0.role == "leader" }.count)/\(v.allGroups.count)" } ?? "-") }
            }
            return row
        }
        return Render.table(["NODE", "PID", "STATE", "PORT", "RESTARTS", "LAST_EXIT"]
                            + (raft ? ["ROLE", "TERM", "LEADER", "COMMIT", "APPLIED"] + (groups ? ["LEADS"] : []) : []), rows)
    }
}

extension Nodes {
    /// Primary-backup: each storage node's pair (with its members), its side, the pair's active
    /// node and epoch, and what it has applied.
    static func pairTable(_ reply: ControlProtocol.Nodes) -> String {
        func pair(_ v: RaftView?) -> RaftView.Group? { v?.allGroups.first { $0.role == "primary" || $0.role == "backup" } }
        var members: [Int: [String]] = [:]
        for n in reply.nodes { if let p = pair(n.raft) { members[p.id, default: []].append(n.id) } }
        let rows = reply.nodes.map { n -> [String] in
            var exit = "-"
            if let code = n.lastExit?.code { exit = "status \(code)" }
            if let sig = n.lastExit?.signal { exit = sig }
            let g = pair(n.raft)
            let role = n.raft?.role == "coordinator" ? "coordinator" : g?.role ?? "-"
            return [n.id, n.pid.map(String.init) ?? "-", n.state, String(n.port), String(n.restarts), exit,
                    g.map { "\($0.id) (\(members[$0.id, default: []].joined(separator: ",")))" } ?? "-", role,
                    g?.leader ?? "-", g.map { String($0.term) } ?? "-", g.map { String($0.appliedIndex) } ?? "-"]
        }
        return Render.table(["NODE", "PID", "STATE", "PORT", "RESTARTS", "LAST_EXIT", "PAIR", "ROLE", "ACTIVE", "EPOCH", "APPLIED"], rows)
    }
}

struct Inject: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inject",
        abstract: "Inject a fault: kill, stop, cont, term, delay, partition, restart.",
        discussion: """
            kvctl inject kill B
            kvctl inject stop B --for 2s
            kvctl inject kill B --after 50ms
            kvctl inject delay B 150ms --jitter 20ms --for 10s
            kvctl inject partition B --peers A,C --for 5s
            kvctl inject partition B --direction out --for 5s   # raft, heartbeat: what B sends is held; it still hears the others
            kvctl inject kill leader --key user42     (raft: the leader of the key's group)
            kvctl inject kill primary --key user42    (primary-backup: the active node of the key's pair)
            """)
    @OptionGroup var connection: Connection
    @Argument(help: "kill, stop, cont, term, delay, partition or restart") var fault: String
    @Argument(help: "The node, or 'leader' (raft mode: the node that leads when the supervisor gets the request), or 'primary' (primary-backup: the active node of the key's pair).")
    var node: String
    @Argument(help: "For delay: the added latency, e.g. 150ms.") var amount: String?
    // .unconditional: "--after -5ms" reaches validate() and is called negative, not "missing value".
    @Option(parsing: .unconditional, help: "Apply after this long, e.g. 50ms (at most 1h).") var after: String?
    @Option(name: .customLong("for"), parsing: .unconditional, help: "Undo after this long (stop, delay, partition), e.g. 2s (at most 1h).")
    var duration: String?
    @Option(parsing: .unconditional, help: "For delay: random jitter, e.g. 20ms.") var jitter: String?
    @Option(help: "For partition: comma-separated nodes to cut the node off from (default: all others).") var peers: String?
    @Option(help: "For partition and delay (raft and heartbeat modes): only what the node sends (out), or receives (in).")
    var direction: LinkDirection?
    @Option(help: "With 'leader': the leader of this key's Raft group (several groups: [cluster] groups); with 'primary': the active node of the key's pair.")
    var key: String?

    func validate() throws {
        guard let kind = FaultKind(rawValue: fault), kind != .heal else {
            throw ValidationError("unknown fault '\(fault)'; use kill, stop, cont, term, delay, partition or restart (heal is its own command)")
        }
        if kind == .delay && amount == nil { throw ValidationError("delay needs an amount: kvctl inject delay \(node) 150ms") }
        if kind != .delay && amount != nil { throw ValidationError("unexpected argument '\(amount!)': only delay takes an amount") }
        if !byRole && NodeID(validating: node) == nil {
            throw ValidationError("'\(node)' is not a node id (1-32 letters, digits, '-' or '_'), nor 'leader' or 'primary'")
        }
        if key != nil && !byRole {
            throw ValidationError("--key goes with 'leader' or 'primary': kvctl inject \(fault) leader --key K")
        }
        let d = try durations()
        // The daemon checks these too; here they are usage errors (exit 2) in the flags' terms.
        if d.for != nil && ![.stop, .delay, .partition].contains(kind) {
            throw ValidationError("--for only applies to stop, delay and partition: \(fault) is a moment, not a state")
        }
        if kind == .restart && d.after != nil { throw ValidationError("restart cannot be scheduled: drop --after") }
        if jitter != nil && kind != .delay { throw ValidationError("--jitter only applies to delay") }
        if peers != nil && kind != .partition { throw ValidationError("--peers only applies to partition") }
        if direction != nil && !kind.isNetwork { throw ValidationError("--direction only applies to partition and delay") }
        if let j = d.jitter, let delay = d.delay, j > delay {
            throw ValidationError("--jitter (\(j) ms) must not exceed the delay (\(delay) ms): a message cannot arrive before it was sent")
        }
        for p in peerList where NodeID(validating: p) == nil {
            throw ValidationError("--peers: '\(p)' is not a node id; give comma-separated node ids, e.g. --peers A,C")
        }
    }

    /// The target is resolved by the supervisor: Raft's leader, or primary-backup's active node.
    private var byRole: Bool { node == "leader" || node == "primary" }

    private var peerList: [String] { peers.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) } ?? [] }

    /// The duration flags in milliseconds; an error names the flag and its limit.
    private func durations() throws -> (after: Int?, for: Int?, delay: Int?, jitter: Int?) {
        func ms(_ text: String?, _ flag: String, min: Int = 0, max: Int) throws -> Int? {
            guard let text else { return nil }
            do { return try DurationText.wholeMilliseconds(text, flag: flag, min: min, max: max) }
            catch { throw ValidationError(error.description) }
        }
        return (try ms(after, "--after", max: FaultSpec.maxAfterMs), try ms(duration, "--for", min: 1, max: FaultSpec.maxAfterMs),
                try ms(amount, "the delay", min: 1, max: FaultSpec.maxDelayMs), try ms(jitter, "--jitter", max: FaultSpec.maxDelayMs))
    }

    func run() throws {
        let d = try durations()
        let p = ControlProtocol.InjectParameters(
            node: node, fault: fault, afterMs: d.after, forMs: d.for, delayMs: d.delay, jitterMs: d.jitter,
            peers: peers == nil ? nil : peerList, key: key, direction: direction?.rawValue)
        let reply = try connection.call("Inject", p, ControlProtocol.InjectReply.self, flags: Inject.flags)
        if connection.json { print(Render.json(reply)); return }
        let target = byRole
            ? "\(node) \(reply.node ?? "?") (\(reply.group.map { "\(node == "primary" ? "pair" : "group") \($0), " } ?? "")\(node == "primary" ? "epoch" : "term") \(reply.term.map(String.init) ?? "?"))" : node
        if reply.appliedMonoNs != nil {
            print("\(fault) \(target): applied (fault \(reply.faultID)); follow with: kvctl events --follow")
        } else if let after {
            print("\(fault) \(target): scheduled in \(after) (fault \(reply.faultID)); list or cancel it with: kvctl faults")
        } else {
            throw Failure("\(fault) \(target) was not applied (fault \(reply.faultID)); the reason is in: kvctl events --kinds fault_failed")
        }
    }
}

extension Inject {
    /// The daemon's parameter names as the user typed them, for its errors.
    static let flags = ["after_ms": "--after", "for_ms": "--for", "delay_ms": "the delay", "jitter_ms": "--jitter", "peers": "--peers",
                        "node": "the node", "key": "--key"]
}

/// kvctl faults [list] | cancel ID
struct Faults: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faults",
        abstract: "List active and scheduled faults; cancel a scheduled one.",
        subcommands: [List.self, Cancel.self], defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Faults in force, then those scheduled (soonest first).")
        @OptionGroup var connection: Connection

        func run() throws {
            let reply = try connection.call("ListFaults", ControlProtocol.Faults.self)
            if connection.json { print(Render.json(reply)); return }
            if reply.faults.isEmpty { print("no active or scheduled faults"); return }
            let now = Stamp.now()
            print(Render.table(["FAULT_ID", "STATE", "FAULT", "NODE", "WHEN", "FOR"], reply.faults.map { f in
                let when: String
                if let due = f.due { when = "in \(max(0, (due.monoNs - now.monoNs) / 1_000_000)) ms" }
                else if let a = f.applied { when = "applied \((now.monoNs - a.monoNs) / 1_000_000) ms ago" }
                else { when = "-" }
                return [f.faultID, f.state, f.fault + (f.delayMs.map { " \($0)ms" } ?? ""), f.node, when,
                        f.forMs.map { DurationText.format(ms: $0) } ?? "-"]
            }))
        }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Take a scheduled fault back before its time.")
        @OptionGroup var connection: Connection
        @Argument(help: "The fault's id, as inject printed it or kvctl faults lists it.") var faultID: String

        func run() throws {
            let reply = try connection.call("CancelFault", ControlProtocol.FaultIDParameter(faultID: faultID),
                                            ControlProtocol.FaultIDParameter.self)
            print(connection.json ? Render.json(reply) : "cancelled \(reply.faultID); it will not be applied")
        }
    }
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Re-read the config file and say what changed, what was applied and what was refused.",
        discussion: """
            Restart policy and stop grace apply at once. Settings passed to each kvnode (hb_*, raft timing,
            sync, read_policy) need the nodes restarted: --restart-nodes does it one node at a time,
            each ready before the next; without it they are refused and the nodes keep the old values.
            Paths, sockets, mode and the node list need kvsupervisor restarted. SIGHUP = reload without --restart-nodes.
            """)
    @OptionGroup var connection: Connection
    @Flag(help: "Apply node settings by restarting the running nodes one at a time.") var restartNodes = false

    func run() throws {
        let reply = try connection.call("Reload", ControlProtocol.ReloadParameters(restartNodes: restartNodes),
                                        ControlProtocol.ReloadReply.self)
        if connection.json {
            print(Render.json(reply))
        } else if reply.changes.isEmpty {
            print("reloaded \(reply.file): no setting changed")
        } else {
            print("reloaded \(reply.file):")
            print(Render.table(["SETTING", "OLD", "NEW", "OUTCOME", "WHY"], reply.changes.map {
                [$0.key, $0.old, $0.new, $0.outcome.rawValue, $0.reason]
            }))
            if !reply.restarted.isEmpty { print("restarted: \(reply.restarted.joined(separator: ", "))") }
        }
        // Exit 1 when part of the file is not in force, so that a script notices.
        if reply.changes.contains(where: { $0.outcome == .refused }) { throw ExitCode(1) }
    }
}

struct Heal: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "heal", abstract: "End network faults (delay, partition), on one node or all.")
    @OptionGroup var connection: Connection
    @Argument var node: String?

    func run() throws {
        let reply = try connection.call("Heal", ControlProtocol.NodeParameter(node: node), ControlProtocol.HealReply.self)
        print(connection.json ? Render.json(reply) : "healed \(reply.healed.count) network fault(s)")
    }
}

/// start, stop and restart share everything but the method they call.
struct NodeActionOptions: ParsableArguments {
    @Argument(help: "The nodes (as systemctl takes units: start leaves a running one as it is).") var nodes: [String]
    @Flag(help: "Return once the node is ready (raft mode: and reports a role), not when its process starts.") var wait = false
    @Option(parsing: .unconditional, help: "With --wait: give up after this long, e.g. 30s.") var timeout = "30s"

    func validate() throws {
        try NodeActionOptions.validateNames(nodes)
        do { _ = try DurationText.wholeMilliseconds(timeout, flag: "--timeout", min: 1) } catch { throw ValidationError(error.description) }
    }

    static func validateNames(_ nodes: [String]) throws {
        if nodes.isEmpty { throw ValidationError("name at least one node, e.g. A") }
        for n in nodes where NodeID(validating: n) == nil {
            throw ValidationError("'\(n)' is not a node id (1-32 letters, digits, '-' or '_')")
        }
    }

    /// Every name must be a node before any is acted on, so that a typo does not leave half done.
    static func checkKnown(_ nodes: [String], _ connection: Connection) throws {
        let known = try connection.call("ListNodes", ControlProtocol.Nodes.self).nodes.map(\.id)
        if let unknown = nodes.first(where: { !known.contains($0) }) {
            throw Failure("no node '\(unknown)'; the nodes are \(known.joined(separator: ", ")); nothing was done")
        }
    }

    /// Acts on each node in turn, then (--wait) waits for each; a line per node as it is done, or
    /// with --json one object {"nodes": [...]}, whatever the number of nodes.
    func perform(_ connection: Connection, _ method: String, _ verb: String) throws {
        try Self.act(nodes, connection, method, verb, then: wait ? { try waitReady(connection, $0.id) } : nil)
    }

    static func act(_ nodes: [String], _ connection: Connection, _ method: String, _ verb: String,
                    then settle: ((ControlProtocol.Node) throws -> ControlProtocol.Node)?) throws {
        try checkKnown(nodes, connection)
        var replies: [ControlProtocol.Node] = []
        for n in nodes {
            var node = try connection.call(method, ControlProtocol.NodeParameter(node: n), ControlProtocol.NodeReply.self).node
            if let settle { node = try settle(node) }
            replies.append(node)
            if connection.json { continue }
            var line = "\(node.id): \(verb)"
            if let pid = node.pid { line += " (pid \(pid), \(node.state)" + (node.raft.map { ", \($0.role) in term \($0.term)" } ?? "") + ")" }
            print(line)
            fflush(nil)
        }
        if connection.json { print(Render.json(ControlProtocol.Nodes(nodes: replies))) }
    }

    /// Polls the node's state until ready (and, in raft mode, with a role), or fails at the deadline.
    private func waitReady(_ connection: Connection, _ node: String) throws -> ControlProtocol.Node {
        let timeoutMs = try DurationText.wholeMilliseconds(timeout, flag: "--timeout", min: 1)
        let raft = try connection.call("GetStatus", ControlProtocol.Status.self).mode == "raft"
        let deadline = monotonicNow() + Int64(timeoutMs) * 1_000_000
        while true {
            let nodes = try connection.call("ListNodes", ControlProtocol.Nodes.self).nodes
            guard let n = nodes.first(where: { $0.id == node }) else { throw Failure("no node '\(node)'; list them with: kvctl nodes") }
            if n.state == "ready" && (!raft || n.raft != nil) { return n }
            if n.state == "stopped" || n.state == "exited" {
                throw Failure("node \(node) is \(n.state)" + (n.lastExit.map { " (last exit: \($0.signal ?? "status \($0.code ?? -1)"))" } ?? "")
                              + "; see: kvctl events --kinds node_exited")
            }
            if monotonicNow() >= deadline {
                throw Failure("node \(node) not ready within \(timeout) (state: \(n.state)\(raft && n.raft == nil ? ", no raft role reported yet" : ""))")
            }
            usleep(20_000)
        }
    }
}

struct NodeAction: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start a node (--wait: until it is ready).")
    @OptionGroup var connection: Connection
    @OptionGroup var options: NodeActionOptions
    func run() throws { try options.perform(connection, "StartNode", "started") }
}

struct StopNode: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop a node (SIGTERM, then SIGKILL after the grace period).")
    @OptionGroup var connection: Connection
    @Argument(help: "The nodes.") var nodes: [String]
    func validate() throws { try NodeActionOptions.validateNames(nodes) }
    func run() throws { try NodeActionOptions.act(nodes, connection, "StopNode", "stopped", then: nil) }
}

struct RestartNode: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restart", abstract: "Restart a node (--wait: until it is ready).")
    @OptionGroup var connection: Connection
    @OptionGroup var options: NodeActionOptions
    func run() throws { try options.perform(connection, "RestartNode", "restarted") }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", abstract: "Recent events; --follow streams new ones.")
    @OptionGroup var connection: Connection
    @Flag(name: .shortAndLong, help: "Keep streaming events as they happen.") var follow = false
    static let flags = ["limit": "--last", "replay": "--last", "kinds": "--kinds"]
    @Option(help: "How many recent events to show first.") var last = 50
    @Option(help: "Only these kinds, comma-separated (e.g. declared_dead,fault_applied).") var kinds: String?
    @Option(name: .customLong("run"), help: "Only this run's events: the supervisor's run id (kvctl status) or an experiment's.")
    var runID: String?

    func run() throws {
        let kindList = kinds.map { $0.split(separator: ",").map(String.init) }
        let print1: (Event) -> Void = { e in
            print(connection.json ? Render.json(e) : Render.eventLine(e))
            fflush(nil)
        }
        if !follow {
            let reply = try connection.call("ListEvents", ControlProtocol.EventQuery(limit: last, kinds: kindList, runID: runID),
                                            ControlProtocol.EventList.self, flags: Self.flags)
            reply.events.forEach(print1)
            return
        }
        let client = try connection.client()
        var reply = try client.call("io.kvsupervisor.Subscribe", ControlProtocol.EventQuery(replay: last, kinds: kindList, runID: runID),
                                    more: true, replying: ControlProtocol.EventReply.self)
        while true {
            switch reply {
            case .error(let name, let p): throw Failure(Explain.error(name, p, flags: Self.flags))
            case .reply(let r, let continues):
                print1(r.event)
                if !continues { return }
            }
            reply = try client.nextReply(as: ControlProtocol.EventReply.self)
        }
    }
}

struct Leader: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "leader", abstract: "The current Raft leader (raft mode); --key: the leader of the key's group.")
    @OptionGroup var connection: Connection
    @Option(help: "The leader of this key's Raft group (several groups: [cluster] groups).") var key: String?
    func run() throws {
        let status = try connection.call("GetStatus", ControlProtocol.Status.self)
        guard status.mode == "raft" else {
            throw Failure("the cluster runs in mode '\(status.mode)', which has no leader; set [cluster] mode = \"raft\"")
        }
        let nodes = try connection.call("ListNodes", ControlProtocol.Nodes.self).nodes
        if let key {
            let leaders = GroupLeaders(nodes.map { ($0.id, $0.raft) })
            let (group, found) = leaders.forKey(key)
            guard let leader = found else {
                throw Failure("no node reports itself leader of group \(group) (key '\(key)') right now; see: kvctl groups")
            }
            let port = nodes.first { $0.id == leader.node }?.port ?? 0
            if connection.json {
                print(Render.json(Output(leader: leader.node, term: leader.view.term, port: port, commitIndex: leader.view.commitIndex,
                                         group: group, key: key)))
            } else {
                print("\(leader.node) leads group \(group) of \(leaders.count), which holds '\(key)' "
                      + "(term \(leader.view.term), port \(port), commit \(leader.view.commitIndex))")
            }
            return
        }
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
        var group: Int?
        var key: String?
        enum CodingKeys: String, CodingKey { case leader, term, port, commitIndex = "commit_index", group, key }
    }

    /// The node that reports itself leader in the highest term.
    static func leader(_ nodes: [ControlProtocol.Node]) -> ControlProtocol.Node? {
        nodes.filter { $0.raft?.role == "leader" }.max { $0.raft!.term < $1.raft!.term }
    }
}

/// kvctl groups: every Raft group with its leader, term and indexes, from the nodes' reports.
struct Groups: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "groups", abstract: "Every Raft group with its leader, term, commit and applied index (raft mode).")
    @OptionGroup var connection: Connection

    struct Row: Encodable {
        var group: Int
        var leader: String?
        var term: UInt64?
        var commitIndex: UInt64?
        var appliedIndex: UInt64?
        enum CodingKeys: String, CodingKey { case group, leader, term, commitIndex = "commit_index", appliedIndex = "applied_index" }
    }

    func run() throws {
        let nodes = try connection.call("ListNodes", ControlProtocol.Nodes.self).nodes
        guard nodes.contains(where: { $0.raft != nil }) else {
            throw Failure("no node has reported a Raft status (not raft mode, or the nodes are starting); see: kvctl nodes")
        }
        let leaders = GroupLeaders(nodes.map { ($0.id, $0.raft) })
        let rows = (0..<leaders.count).map { g -> Row in
            let l = leaders.byGroup[g]
            return Row(group: g, leader: l?.node, term: l?.view.term, commitIndex: l?.view.commitIndex, appliedIndex: l?.view.appliedIndex)
        }
        if connection.json { print(Render.json(["groups": rows])); return }
        print(Render.table(["GROUP", "LEADER", "TERM", "COMMIT", "APPLIED"], rows.map { r in
            [String(r.group), r.leader ?? "-", r.term.map(String.init) ?? "-", r.commitIndex.map(String.init) ?? "-",
             r.appliedIndex.map(String.init) ?? "-"]
        }))
    }
}

extension LinkDirection: ExpressibleByArgument {}
