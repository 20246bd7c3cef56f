import NodeClient
import ArgumentParser
import Core
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// kvctl kv: the cluster's HTTP API from the command line. Starts at the leader the supervisor
/// knows of, follows 307 redirects, and on 503 or a node that does not answer retries elsewhere
/// with the same (client_id, seq), so a retried write is applied at most once.
struct KV: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv",
        abstract: "Read and write the raft cluster's keys (follows redirects, retries safely).",
        discussion: """
            kvctl kv put greeting hello
            kvctl kv get greeting [--stale]
            kvctl kv delete greeting
            kvctl kv cas greeting hello bye      (--absent instead of EXPECTED: only if the key is absent)
            kvctl kv mput a=1 b=2
            """,
        subcommands: [Get.self, Put.self, Delete.self, CAS.self, MPut.self])

    /// Here, so that `kvctl --socket S kv put ...` works as `kvctl --socket S nodes` does.
    @OptionGroup var connection: Connection

    struct Options: ParsableArguments {
        @Option(help: "Client id for deduplication (default: kvctl-<pid>-<time>).") var clientID: String?
        @Option(help: "Sequence number of this request for its client (default: 1).") var seq: UInt64 = 1
        @Option(help: "Ask this node first (default: the leader).") var node: String?
        @Option(parsing: .unconditional, help: "Give up after this long, e.g. 10s.") var timeout = "10s"
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "get", abstract: "Print a key's value (exit 1 if absent).")
        @ParentCommand var kv: KV
        @OptionGroup var options: Options
        @Argument var key: String
        @Flag(help: "Read this node's copy without asking the leader (may be stale).") var stale = false
        func run() throws {
            try KV.perform(options, kv.connection, "GET", "/kv/\(KV.escape(key))" + (stale ? "?consistency=stale" : ""), nil,
                           show: { $0.value })
        }
    }

    struct Put: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "put", abstract: "Set a key.")
        @ParentCommand var kv: KV
        @OptionGroup var options: Options
        @Argument var key: String
        @Argument var value: String
        func run() throws {
            try KV.perform(options, kv.connection, "PUT", "/kv/\(KV.escape(key))", KVHTTP.PutRequest(value: value), show: KV.okLine)
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "delete", abstract: "Remove a key.")
        @ParentCommand var kv: KV
        @OptionGroup var options: Options
        @Argument var key: String
        func run() throws {
            try KV.perform(options, kv.connection, "DELETE", "/kv/\(KV.escape(key))", KVHTTP.DeleteRequest()) { a in
                a.existed == false ? "'\(key)' was already absent: nothing deleted (index \(a.index ?? 0))" : KV.okLine(a)
            }
        }
    }

    struct CAS: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cas", abstract: "Set KEY to VALUE if it holds EXPECTED (exit 1 if not).")
        @ParentCommand var kv: KV
        @OptionGroup var options: Options
        @Argument var key: String
        @Argument(help: "The value the key must hold (omit with --absent).") var expected: String?
        @Argument var value: String?
        @Flag(help: "The key must be absent.") var absent = false
        func validate() throws {
            if absent ? (expected == nil || value != nil) : (expected == nil || value == nil) {
                throw ValidationError("usage: kvctl kv cas KEY EXPECTED VALUE, or kvctl kv cas KEY --absent VALUE")
            }
        }
        func run() throws {
            let body = absent ? KVHTTP.CASRequest(key: key, expected: nil, value: expected!)
                : KVHTTP.CASRequest(key: key, expected: expected!, value: value!)
            try KV.perform(options, kv.connection, "POST", "/kv/cas", body, show: KV.okLine)
        }
    }

    struct MPut: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "mput", abstract: "Set several keys at once, atomically.")
        @ParentCommand var kv: KV
        @OptionGroup var options: Options
        @Argument(help: "KEY=VALUE pairs.") var pairs: [String]
        func validate() throws {
            if pairs.isEmpty { throw ValidationError("give at least one KEY=VALUE") }
            for p in pairs where !p.contains("=") || p.hasPrefix("=") { throw ValidationError("'\(p)' is not KEY=VALUE") }
        }
        func run() throws {
            let entries = pairs.map { p -> KVHTTP.Pair in
                let i = p.firstIndex(of: "=")!
                return .init(key: String(p[..<i]), value: String(p[p.index(after: i)...]))
            }
            try KV.perform(options, kv.connection, "POST", "/kv/mput", KVHTTP.MPutRequest(entries: entries), show: KV.okLine)
        }
    }

    /// What a node answers, read before knowing which reply it is (Core's `KVHTTP`, as kvnode writes it).
    typealias Answer = KVHTTP.AnyReply

    static func okLine(_ a: Answer) -> String? { a.index.map { "ok (index \($0))" } }

    static func escape(_ key: String) -> String {
        var out = ""
        for b in key.utf8 {
            let c = Character(Unicode.Scalar(b))
            if c.isLetter && b < 0x80 || c.isNumber && b < 0x80 || "-._~".contains(c) { out.append(c) }
            else { out += "%" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true) }
        }
        return out
    }

    /// Sends the request until a node answers it for good; prints the answer.
    static func perform(_ o: Options, _ connection: Connection, _ method: String, _ path: String,
                        _ fields: (any KVHTTP.WriteRequest)?, show: (Answer) -> String?) throws {
        let timeoutMs: Int
        do { timeoutMs = try DurationText.wholeMilliseconds(o.timeout, flag: "--timeout", min: 1) } catch { throw ValidationError(error.description) }
        var body: [UInt8]? = nil
        // Named in every failure of a write, so that the retry its message suggests can be typed.
        var identity = ""
        if var fields {
            let client = o.clientID ?? "kvctl-\(getpid())-\(Stamp.now().wallMs)"
            fields.client_id = client
            fields.seq = KVHTTP.Seq(o.seq)
            body = Array(try JSONEncoder().encode(fields))
            identity = " (sent as --client-id \(client) --seq \(o.seq))"
        }
        let nodes = try connection.call("ListNodes", ControlProtocol.Nodes.self).nodes
        guard nodes.contains(where: { $0.raft != nil }) else {
            throw Failure("no node reports raft status: kv needs [cluster] mode = \"raft\" and a running node; see: kvctl nodes")
        }
        if let named = o.node {
            guard let n = nodes.first(where: { $0.id == named }) else {
                throw Failure("no node '\(named)'; the nodes are \(nodes.map(\.id).joined(separator: ", ")) (see: kvctl nodes)")
            }
            guard n.pid != nil else { throw Failure("node '\(named)' is not running (state: \(n.state)); start it with: kvctl start \(named)") }
        }
        var targets = nodes.filter { $0.pid != nil }.map { ($0.id, $0.port) }
        if let first = o.node.flatMap({ n in targets.first { $0.0 == n } }) ?? Leader.leader(nodes).map({ ($0.id, $0.port) }) {
            targets.removeAll { $0.1 == first.1 }
            targets.insert(first, at: 0)
        }
        let deadline = monotonicNow() + Int64(timeoutMs) * 1_000_000
        var port = targets.first?.1 ?? 0, next = 1, lastProblem = "no running node"
        while monotonicNow() < deadline {
            let reply: NodeHTTP.Response
            do {
                reply = try NodeHTTP.request(host: "127.0.0.1", port: port, method: method, path: path, body: body,
                                             timeoutMs: max(1, min(3000, (deadline - monotonicNow()) / 1_000_000)))
            } catch {
                reply = NodeHTTP.Response(status: 0, headers: [:], body: Array("\(error)".utf8))
            }
            if reply.status == 307, let location = reply.headers.first(name: "Location"), let p = portOf(location) {
                port = p
                continue
            }
            // An answer for good (success, or a refusal such as not found or cas failed).
            if reply.status != 503 && reply.status != 0 { return try finish(reply, json: connection.json, identity: identity, show: show) }
            lastProblem = reply.status == 0 ? reply.text : "\(reply.status): \(message(reply))"
            if !targets.isEmpty { port = targets[next % targets.count].1; next += 1 }
            usleep(100_000)
        }
        if identity.isEmpty { throw Failure("no answer within \(o.timeout): \(lastProblem)") }
        throw Failure("no answer within \(o.timeout): \(lastProblem). The request may or may not have been applied\(identity); "
                      + "retry with that --client-id and --seq to apply it at most once")
    }

    private static func finish(_ r: NodeHTTP.Response, json: Bool, identity: String, show: (Answer) -> String?) throws {
        let object = (try? JSONDecoder().decode(Answer.self, from: Data(r.body))) ?? Answer()
        if json { print(r.text, terminator: r.text.hasSuffix("\n") ? "" : "\n") }
        guard r.status == 200 else {
            if json { throw ExitCode(1) }
            throw Failure(message(r) + (r.status == 404 ? "" : identity))
        }
        if !json { print(show(object) ?? r.text) }
    }

    private static func message(_ r: NodeHTTP.Response) -> String {
        let object = try? JSONDecoder().decode(Answer.self, from: Data(r.body))
        return object?.error ?? "HTTP \(r.status)"
    }

    private static func portOf(_ url: String) -> Int? {
        guard let rest = url.split(separator: "//").dropFirst().first, let hostPort = rest.split(separator: "/").first,
              let colon = hostPort.lastIndex(of: ":") else { return nil }
        return Int(hostPort[hostPort.index(after: colon)...])
    }
}
