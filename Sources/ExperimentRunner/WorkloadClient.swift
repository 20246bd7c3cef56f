#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Core
import Experiments
import Linearizability
import NIOCore
import NodeClient

/// One client of a linearizability run: the store's HTTP API over TCP, one connection per request.
/// A write carries the client's (client_id, seq), so asking again after a redirect, a refusal or a
/// timeout applies it at most once. What it records is what it knows: ok or fail on an answer that
/// says so, unknown when a request that reached a node got no answer that settles it.
struct WorkloadClient: Sendable {
    let clientID: String
    let group: any EventLoopGroup
    /// Where it asks first (in turn from its own), and the ports of every node a redirect may name.
    let nodes: [(id: NodeID, port: Int)]
    let readPolicy: LinearizabilitySpec.ReadPolicy
    let opTimeoutMs: Int
    /// Primary-backup's coordinator, in `nodes`: it routes by the key in the path only.
    let routerIndex: Int?

    typealias Op = Linearizability.Operation<KVModel.Input, KVModel.Output>

    /// How one attempt ended.
    private enum Attempt {
        case answered(NodeHTTP.Response)
        /// The request never left (no connection): it cannot have taken effect.
        case notSent
        /// Sent, and no whole answer came: it may have taken effect.
        case lost
    }

    /// What became of one operation.
    struct Done: Sendable {
        /// For the history (an mput: one put per key, with the same times): ok and its result,
        /// a cas whose compare failed, or unknown when a request reached a node and nothing settled it.
        var checked: [Op]
        /// Operations that surely took no effect (refused, never sent, a read with no answer): left
        /// out of the history as Jepsen leaves out its :fail operations, since a `fail` cas there
        /// would claim a compare that never ran. Kept for the timeline.
        var excluded: [Op]
        var node: NodeID?
        /// What the client learned of each key (a read's value, an acknowledged write's).
        var seen: [(String, String?)]
        /// The index in `nodes` of the node that settled it, if one did.
        var answeredBy: Int?
    }

    /// Carries out `op` with `seq` as history process `process`, asking `nodes[first]` first.
    func perform(_ op: Workload.Op, seq: UInt64, process: Int, first: Int) async -> Done {
        let invoke = monotonicNow()
        let deadline = invoke + Int64(opTimeoutMs) * 1_000_000
        let (method, path, body, keys, input) = request(op, seq: seq)
        let isRead = method == "GET"
        func ops(_ output: KVModel.Output?, _ outcome: Outcome, _ at: MonotonicNanos) -> [Op] {
            record(process, keys, input, output, outcome, invoke, at)
        }
        var at = first % nodes.count
        func settled(_ output: KVModel.Output?, _ outcome: Outcome, _ time: MonotonicNanos, _ node: NodeID, _ seen: [(String, String?)]) -> Done {
            Done(checked: ops(output, outcome, time), excluded: [], node: node, seen: seen, answeredBy: at)
        }
        var mayHaveApplied = false
        var hops = 0
        // The coordinator routes by the key in the path: a cas or an mput (keys in the body) starts at a storage node.
        if let router = routerIndex, at == router, method == "POST" { at = (at + 1) % nodes.count }
        while !Task.isCancelled {
            let left = (deadline - monotonicNow()) / 1_000_000
            if left <= 0 { break }
            let node = nodes[at]
            var pause = true
            switch await attempt(port: node.port, method: method, path: path, body: body, timeoutMs: left) {
            case .notSent:
                at = (at + 1) % nodes.count
            case .lost:
                mayHaveApplied = true
                at = (at + 1) % nodes.count
            case .answered(let r):
                if r.status != 307 { hops = 0 }
                let reply = try? JSONDecoder().decode(KVHTTP.AnyReply.self, from: Data(r.body))
                switch (r.status, reply?.code) {
                case (200, _) where isRead:
                    // A read's value, or nothing learned: a body that does not say one is no answer.
                    guard let value = reply?.value else { break }
                    return settled(.value(value), .ok, r.receivedMonoNs, node.id, [(keys[0], value)])
                case (200, _):
                    let seen: [(String, String?)] = switch op {
                    case .get(let k): [(k, nil)]
                    case .put(let k, let v), .cas(let k, _, let v): [(k, v)]
                    case .delete(let k): [(k, nil)]
                    case .mput(let pairs): pairs.map { ($0.key, $0.value) }
                    }
                    return settled(.done, .ok, r.receivedMonoNs, node.id, seen)
                case (404, "not_found") where isRead:
                    return settled(.value(nil), .ok, r.receivedMonoNs, node.id, [(keys[0], nil)])
                case (409, "cas_failed"):
                    // The compare ran and failed: the one `fail` the model reads as such.
                    return settled(nil, .fail, r.receivedMonoNs, node.id, [(keys[0], reply?.current)])
                case (307, _) where hops < 3:
                    // To the node it names (by id, or by its address); a chain of redirects is a
                    // store that cannot agree: then in turn, with a pause.
                    hops += 1
                    if let i = redirectTarget(reply?.leader, r.headers.first(name: "Location")) {
                        at = i
                        pause = hops > 1
                    } else {
                        at = (at + 1) % nodes.count
                    }
                case (307, _):
                    // Redirected three times in a row: the nodes do not agree on a leader yet. In turn, with a pause.
                    hops = 0
                    at = (at + 1) % nodes.count
                case (409, "stale_sequence"):
                    // The session has moved past this seq (with one operation in flight per client it
                    // cannot happen): whether this one ran is not known, and no retry will tell.
                    return Done(checked: ops(nil, .unknown, r.receivedMonoNs), excluded: [], node: node.id, seen: [])
                case (503, "timeout"), (500, _):
                    // Proposed and not known to be applied: the same seq again is safe, elsewhere.
                    mayHaveApplied = true
                    at = (at + 1) % nodes.count
                case (503, _):
                    // No leader known here, moving, overloaded: nothing was applied; another node may know one.
                    at = (at + 1) % nodes.count
                default:
                    // Any other refusal of a well-formed request: nothing applied now, and retrying will not change it.
                    return finish(mayHaveApplied && !isRead, ops(nil, mayHaveApplied && !isRead ? .unknown : .fail, r.receivedMonoNs), node.id)
                }
            }
            // No spinning through refused connections and redirects while the store elects a leader.
            if pause { try? await Task.sleep(for: .milliseconds(10)) }
        }
        // Out of time. A write that may have reached the log is unknown, never guessed; anything
        // else (a read, a write only ever refused) took no effect.
        let maybe = mayHaveApplied && !isRead
        return finish(maybe, ops(nil, maybe ? .unknown : .fail, monotonicNow()), nil)
    }

    private func finish(_ maybe: Bool, _ ops: [Op], _ node: NodeID?) -> Done {
        maybe ? Done(checked: ops, excluded: [], node: node, seen: []) : Done(checked: [], excluded: ops, node: node, seen: [])
    }

    /// The node a redirect names: by id, or else by the port of its Location (primary-backup's
    /// coordinator names no leader field).
    private func redirectTarget(_ leader: String?, _ location: String?) -> Int? {
        if let leader, let i = nodes.firstIndex(where: { $0.id.rawValue == leader }) { return i }
        guard let location, let hostPort = location.split(separator: "/").dropFirst().first(where: { $0.contains(":") }),
              let port = Int(hostPort.split(separator: ":").last ?? "") else { return nil }
        return nodes.firstIndex { $0.port == port }
    }

    private func attempt(port: Int, method: String, path: String, body: [UInt8]?, timeoutMs: Int64) async -> Attempt {
        let call = NodeHTTP.begin(host: "127.0.0.1", port: port, method: method, path: path, body: body, timeoutMs: timeoutMs, group: group)
        do { return .answered(try await call.answer()) } catch {
            return (try? await call.sentMonoNs()) == nil ? .notSent : .lost
        }
    }

    private func record(_ process: Int, _ keys: [String], _ input: [KVModel.Input], _ output: KVModel.Output?, _ outcome: Outcome,
                        _ invoke: MonotonicNanos, _ complete: MonotonicNanos) -> [Op] {
        zip(keys, input).map { key, i in
            Op(client: process, key: key, input: i, output: outcome == .unknown ? nil : output, outcome: outcome, invoke: invoke,
               complete: outcome == .unknown ? nil : complete)
        }
    }

    private func request(_ op: Workload.Op, seq: UInt64)
        -> (method: String, path: String, body: [UInt8]?, keys: [String], input: [KVModel.Input]) {
        let s = KVHTTP.Seq(seq)
        func json<T: Encodable>(_ v: T) -> [UInt8] { Array((try? JSONEncoder().encode(v)) ?? Data()) }
        switch op {
        case .get(let k):
            return ("GET", "/kv/\(k)?consistency=\(readPolicy.rawValue)", nil, [k], [.get])
        case .put(let k, let v):
            return ("PUT", "/kv/\(k)", json(KVHTTP.PutRequest(client_id: clientID, seq: s, value: v)), [k], [.put(v)])
        case .cas(let k, let e, let v):
            return ("POST", "/kv/cas", json(KVHTTP.CASRequest(client_id: clientID, seq: s, key: k, expected: e, value: v)), [k],
                    [.cas(expected: e, new: v)])
        case .delete(let k):
            return ("DELETE", "/kv/\(k)?client_id=\(clientID)&seq=\(seq)", nil, [k], [.delete])
        case .mput(let pairs):
            return ("POST", "/kv/mput", json(KVHTTP.MPutRequest(client_id: clientID, seq: s, entries: pairs.map { .init(key: $0.key, value: $0.value) })),
                    pairs.map(\.key), pairs.map { .put($0.value) })
        }
    }
}
