#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Core
import NIOCore
import NodeClient

/// The failover experiment's client of the store: the real HTTP API over TCP, one connection per
/// request (a killed leader resets it; nothing is reused across a kill), every answer stamped when
/// it arrived. Keys and values are made by the run from [a-z0-9-], so they need no escaping.
struct StoreClient: Sendable {
    let group: any EventLoopGroup
    let ports: [NodeID: Int]

    enum Read: Equatable { case value(String), absent, unknown }

    func put(_ node: NodeID, key: String, value: String, timeoutMs: Int64) -> NodeHTTP.Call {
        NodeHTTP.begin(host: "127.0.0.1", port: ports[node] ?? 0, method: "PUT", path: "/kv/" + key,
                       body: Array("{\"value\":\"\(value)\"}".utf8), timeoutMs: timeoutMs, group: group)
    }

    /// A write's log index from its 200 answer.
    static func index(of r: NodeHTTP.Response) -> UInt64? {
        guard r.status == 200 else { return nil }
        return (try? JSONDecoder().decode(KVHTTP.WriteReply.self, from: Data(r.body)))?.index
    }

    /// A linearizable read at `node`: the value, absent (404), or unknown (a redirect, no leader,
    /// no answer: ask elsewhere).
    func read(_ node: NodeID, key: String, timeoutMs: Int64 = 1000) async -> Read {
        guard let r = try? await NodeHTTP.send(host: "127.0.0.1", port: ports[node] ?? 0, method: "GET",
                                               path: "/kv/\(key)?consistency=linearizable", timeoutMs: timeoutMs, group: group)
        else { return .unknown }
        switch r.status {
        case 200: return (try? JSONDecoder().decode(KVHTTP.ValueReply.self, from: Data(r.body))).map { .value($0.value) } ?? .unknown
        case 404: return .absent
        default: return .unknown
        }
    }

    /// `node`'s applied index in `group` and when it was read, from its /status; nil while it
    /// does not answer (not started yet, or still recovering its log).
    func applied(_ node: NodeID, group g: Int, timeoutMs: Int64 = 500) async -> (index: UInt64, atMonoNs: MonotonicNanos)? {
        guard let r = try? await NodeHTTP.send(host: "127.0.0.1", port: ports[node] ?? 0, method: "GET", path: "/status",
                                               timeoutMs: timeoutMs, group: group), r.status == 200,
              let s = try? JSONDecoder().decode(StatusGroups.self, from: Data(r.body)),
              let mine = s.groups.first(where: { $0.id == g })
        else { return nil }
        return (mine.applied_index, r.receivedMonoNs)
    }

    private struct StatusGroups: Decodable {
        struct Group: Decodable { var id: Int; var applied_index: UInt64 }
        var groups: [Group]
    }
}
