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
    let number: Int
    let clientID: String
    let group: any EventLoopGroup
    /// Where it asks first (in turn from its own), and the ports of every node a redirect may name.
    let nodes: [(id: NodeID, port: Int)]
    let readPolicy: LinearizabilitySpec.ReadPolicy
    let opTimeoutMs: Int

    typealias Op = Linearizability.Operation<KVModel.Input, KVModel.Output>

    /// How one attempt ended.
    private enum Attempt {
        case answered(NodeHTTP.Response)
        /// The request never left (no connection): it cannot have taken effect.
        case notSent
        /// Sent, and no whole answer came: it may have taken effect.
        case lost
    }

    /// Carries out `op` with `seq` as history process `process`; returns what the history records
    /// (an mput: one put per key, with the same times), the node that answered last, and what the
    /// client saw of each key.
    func perform(_ op: Workload.Op, seq: UInt64, process: Int) async -> (ops: [Op], node: NodeID?, seen: [(String, String?)]) {
        let invoke = monotonicNow()
        let deadline = invoke + Int64(opTimeoutMs) * 1_000_000
        let (method, path, body, keys, input) = request(op, seq: seq)
        var at = number % nodes.count
        var mayHaveApplied = false
        var hops = 0
        while true {
            let left = (deadline - monotonicNow()) / 1_000_000
            if left <= 0 { break }
            let node = nodes[at]
            switch await attempt(port: node.port, method: method, path: path, body: body, timeoutMs: left) {
            case .notSent:
                at = (at + 1) % nodes.count
            case .lost:
                mayHaveApplied = true
                at = (at + 1) % nodes.count
            case .answered(let r):
                let reply = try? JSONDecoder().decode(KVHTTP.AnyReply.self, from: Data(r.body))
                switch (r.status, reply?.code) {
                case (200, _):
                    let output: KVModel.Output = if case .get = op { .value(reply?.value) } else { .done }
                    let seen: [(String, String?)] = switch op {
                    case .get(let k): [(k, reply?.value)]
                    case .put(let k, let v), .cas(let k, _, let v): [(k, v)]
                    case .delete(let k): [(k, nil)]
                    case .mput(let pairs): pairs.map { ($0.key, $0.value) }
                    }
                    return (record(process, keys, input, output, .ok, invoke, r.receivedMonoNs), node.id, seen)
                case (404, _) where method == "GET":
                    return (record(process, keys, input, .value(nil), .ok, invoke, r.receivedMonoNs), node.id, [(keys[0], nil)])
                case (409, "cas_failed"):
                    return (record(process, keys, input, nil, .fail, invoke, r.receivedMonoNs), node.id, [(keys[0], reply?.current)])
                case (307, _):
                    // To the node it names; a chain of redirects is a store that cannot agree: try in turn.
                    hops += 1
                    if let leader = reply?.leader, let i = nodes.firstIndex(where: { $0.id.rawValue == leader }), hops <= 3 { at = i }
                    else { at = (at + 1) % nodes.count; hops = 0 }
                    continue
                case (503, "timeout"), (409, "stale_sequence"), (500, _):
                    // Proposed and not known to be applied: the same seq again is safe, elsewhere.
                    mayHaveApplied = true
                    at = (at + 1) % nodes.count
                case (503, _):
                    // No leader known here, moving, overloaded: nothing was applied; another node may know one.
                    at = (at + 1) % nodes.count
                default:
                    // A 4xx for a well-formed request: nothing applied; nothing will be. Said as it is.
                    return (record(process, keys, input, nil, mayHaveApplied ? .unknown : .fail, invoke, r.receivedMonoNs), node.id, [])
                }
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        // Out of time: a read that got no answer changed nothing either way, but it is not guessed.
        return (record(process, keys, input, nil, mayHaveApplied || method == "GET" ? .unknown : .fail, invoke, monotonicNow()), nil, [])
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
