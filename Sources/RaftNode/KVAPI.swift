import Core
import KVStore
import Raft

/// A reply before it becomes HTTP.
package struct APIReply: Sendable, Equatable {
    package var status: Int
    package var headers: [(String, String)] = []
    package var body: [UInt8]

    package init(status: Int, headers: [(String, String)] = [], body: [UInt8]) {
        self.status = status; self.headers = headers; self.body = body
    }

    /// A JSON body.
    package static func json<T: Encodable>(_ status: Int, _ value: T) -> APIReply {
        APIReply(status: status, headers: [("Content-Type", "application/json")], body: JSON.encode(value))
    }

    /// The API's error shape: {"error": what was wrong and what to do, "code": a stable name}.
    package static func error(_ status: Int, _ message: String, _ code: String) -> APIReply {
        json(status, ErrorBody(error: message, code: code))
    }

    package static func == (a: APIReply, b: APIReply) -> Bool {
        a.status == b.status && a.body == b.body && a.headers.elementsEqual(b.headers) { $0 == $1 }
    }
}

/// The HTTP API's routes and meaning, without the HTTP server (so tests can call it directly).
/// Limits are explicit; anything outside them is a 4xx that names the limit.
package final class KVAPI: Sendable {
    package struct Limits: Sendable {
        package init() {}
        var keyBytes = 1024
        var valueBytes = 1 << 20
        package var bodyBytes = 4 << 20
        var mputEntries = 1000
        var clientIDBytes = 128
    }
    package struct Member: Sendable {
        var id: String
        var httpURL: String
        package init(id: String, httpURL: String) { self.id = id; self.httpURL = httpURL }
    }

    let selfID: String
    let members: [ReplicaID: Member]
    package let limits: Limits
    let defaultConsistency: ReadConsistency
    let syncMode: String
    private let replica: any KVReplica

    package init(selfID: String, members: [ReplicaID: Member], replica: any KVReplica, defaultConsistency: ReadConsistency,
         syncMode: String, limits: Limits = Limits()) {
        self.selfID = selfID; self.members = members; self.replica = replica
        self.defaultConsistency = defaultConsistency; self.syncMode = syncMode; self.limits = limits
    }

    /// `path` is percent-encoded as received; `query` the raw query string.
    package func handle(method: String, path: String, query: String?, body: [UInt8]) async -> APIReply {
        let params = Self.queryParameters(query)
        switch (method, path) {
        case ("GET", "/healthz"): return json(200, ["ok": true])
        case ("GET", "/status"): return status()
        case ("POST", "/kv/mput"): return await mput(body, path: path, query: query)
        case ("POST", "/kv/cas"): return await cas(body, path: path, query: query)
        case (_, "/healthz"), (_, "/status"): return notAllowed(method, allow: "GET")
        // GET, PUT and DELETE on /kv/mput and /kv/cas are about keys of those names, like any key.
        default: break
        }
        guard path.hasPrefix("/kv/") else {
            return error(404, "no such endpoint \(path): use /kv/{key}, /kv/mput, /kv/cas, /status or /healthz", "not_found")
        }
        guard let key = Self.percentDecoded(String(path.dropFirst(4))), !key.isEmpty else {
            return error(400, "the key in \(path) is empty or not valid percent-encoded UTF-8", "bad_key")
        }
        if let bad = checkKey(key) { return bad }
        switch method {
        case "GET":
            let wanted = params["consistency"] ?? defaultConsistency.rawValue
            guard let consistency = ReadConsistency(rawValue: wanted) else {
                return error(400, "consistency=\(wanted): use linearizable or stale", "bad_consistency")
            }
            return await read(key, consistency, path: path, query: query)
        case "PUT":
            switch JSON.decode(PutBody.self, body) {
            case .failure(let why): return error(400, "PUT \(path): \(why); send {\"client_id\":\"c1\",\"seq\":1,\"value\":\"v\"}", "bad_body")
            case .success(let b):
                if let bad = checkValue(b.value) ?? checkClient(b.client_id) { return bad }
                return await write(client: b.client_id, seq: b.seq?.value, .put(key: key, value: b.value), path: path, query: query)
            }
        case "DELETE":
            var client = params["client_id"], seq = params["seq"].flatMap { UInt64($0) }
            if params["seq"] != nil && seq == nil { return error(400, "seq=\(params["seq"]!): expected an unsigned integer", "bad_body") }
            if !body.isEmpty {
                switch JSON.decode(DeleteBody.self, body) {
                case .failure(let why): return error(400, "DELETE \(path): \(why)", "bad_body")
                case .success(let b): client = b.client_id ?? client; seq = b.seq?.value ?? seq
                }
            }
            if let bad = checkClient(client) { return bad }
            return await write(client: client, seq: seq, .delete(key: key), path: path, query: query)
        default:
            return notAllowed(method, allow: path == "/kv/mput" || path == "/kv/cas" ? "GET, PUT, DELETE, POST" : "GET, PUT, DELETE")
        }
    }

    // MARK: Operations

    private func read(_ key: String, _ consistency: ReadConsistency, path: String, query: String?) async -> APIReply {
        let reply = await replica.read(group: group(of: key), key, consistency)
        guard case .value(let v, let index) = reply else { return answer(reply, path: path, query: query) }
        guard let v else {
            return json(404, ErrorBody(error: "key '\(key)' not found", code: "not_found", key: key))
        }
        return json(200, ValueBody(key: key, value: v, index: index.value, consistency: consistency.rawValue))
    }

    private func mput(_ body: [UInt8], path: String, query: String?) async -> APIReply {
        switch JSON.decode(MPutBody.self, body) {
        case .failure(let why):
            return error(400, "POST /kv/mput: \(why); send {\"client_id\",\"seq\",\"entries\":[{\"key\",\"value\"}]}", "bad_body")
        case .success(let b):
            guard !b.entries.isEmpty, b.entries.count <= limits.mputEntries else {
                return error(400, "mput takes 1 to \(limits.mputEntries) entries, not \(b.entries.count)", "bad_body")
            }
            for p in b.entries { if let bad = checkKey(p.key) ?? checkValue(p.value) { return bad } }
            if let bad = checkClient(b.client_id) { return bad }
            return await write(client: b.client_id, seq: b.seq?.value, .mput(b.entries.map { KeyValue(key: $0.key, value: $0.value) }),
                               path: path, query: query)
        }
    }

    private func cas(_ body: [UInt8], path: String, query: String?) async -> APIReply {
        switch JSON.decode(CASBody.self, body) {
        case .failure(let why):
            return error(400, "POST /kv/cas: \(why); send {\"client_id\",\"seq\",\"key\",\"expected\",\"value\"}", "bad_body")
        case .success(let b):
            if let bad = checkKey(b.key) ?? checkValue(b.value) ?? b.expected.flatMap(checkValue) ?? checkClient(b.client_id) { return bad }
            return await write(client: b.client_id, seq: b.seq?.value, .cas(key: b.key, expected: b.expected, value: b.value),
                               path: path, query: query)
        }
    }

    private func write(client: String?, seq: UInt64?, _ command: KVCommand, path: String, query: String?) async -> APIReply {
        let request: KVRequest
        if let client {
            guard let seq, seq > 0 else { return error(400, "client_id '\(client)' needs a seq of 1 or more", "bad_body") }
            request = KVRequest(client: client, seq: seq, command: command)
        } else {
            // No client: no session, applied each time it reaches the log.
            request = .anonymous(command)
        }
        // One group (the usual store): nothing to hash or check on the write path.
        let groups = replica.groupCount == 1 ? [0] : Set(command.keys.map(group(of:)))
        guard groups.count == 1, let group = groups.first else {
            // No transaction spans groups: an mput's keys must share one.
            let byGroup = Dictionary(grouping: command.keys, by: group(of:)).sorted { $0.key < $1.key }
                .map { g, keys in "group \(g): \(keys.prefix(3).map { "'\($0)'" }.joined(separator: ", "))\(keys.count > 3 ? ", ..." : "")" }
            return error(400, "mput's keys fall in \(groups.count) Raft groups (\(byGroup.joined(separator: "; "))), and a write is "
                         + "atomic only within one group: send one mput per group", "cross_group")
        }
        let reply = await replica.write(group: group, request)
        guard case .applied(let result, let index) = reply else { return answer(reply, path: path, query: query, anonymous: request.isAnonymous) }
        switch result {
        case .ok, .value: return json(200, WriteReplyBody(index: index.value))
        case .deleted(let existed): return json(200, WriteReplyBody(index: index.value, existed: existed))
        case .casFailed(let current):
            return json(409, ErrorBody(error: "compare failed: the key holds \(current.map { "'\($0)'" } ?? "nothing")",
                                       code: "cas_failed", current: current))
        case .staleSequence(let latest):
            return json(409, ErrorBody(error: "seq \(request.seq) is older than this client's latest (\(latest)): its answer is gone; "
                                       + "use a new seq", code: "stale_sequence", latest_seq: latest))
        case .sessionExpired(let seq):
            let scope = replica.groupCount > 1 ? "this key's Raft group keeps its own latest" : "the store keeps the latest"
            return error(409, "client_id '\(request.client)' has no session here (\(scope) "
                         + "\(KVStateMachine.defaultSessionLimit) clients' sessions, and older ones have expired): seq \(seq) may repeat "
                         + "a write already applied, so it was not applied. Start again with a new client_id and seq 1"
                         + (replica.groupCount > 1 ? " (with several groups, number each group's requests from 1)" : ""), "session_expired")
        case .sequenceConflict(let seq):
            return json(409, ErrorBody(error: "client_id '\(request.client)' already used seq \(seq) for a different request, which "
                                       + "was applied; this one was not. A retry must repeat the request exactly; a new request needs "
                                       + "seq \(seq + 1)", code: "seq_conflict", latest_seq: seq))
        case .invalid(let why): return error(500, "the entry did not apply: \(why)", "invalid_entry")
        }
    }

    /// Not an answer from the store: where to go instead, or that the outcome is unknown.
    private func answer(_ reply: KVReply, path: String, query: String?, anonymous: Bool = false) -> APIReply {
        switch reply {
        case .notLeader(let leader?) where leader != replica.id:
            let member = members[leader]
            let location = (member?.httpURL ?? "") + path + (query.map { "?" + $0 } ?? "")
            var r = json(307, ErrorBody(error: "not the leader: ask \(member?.id ?? "replica \(leader)")", code: "not_leader",
                                        leader: member?.id, leader_addr: member?.httpURL))
            r.headers.append(("Location", location))
            return r
        case .notLeader, .transferring:
            var r = json(503, ErrorBody(error: reply == .transferring ? "leadership is moving; retry shortly"
                                        : "no leader is known (an election is under way); retry shortly", code: "no_leader"))
            r.headers.append(("Retry-After", "1"))
            return r
        case .timedOut:
            let advice = anonymous ? "a request without a client_id has no session, so a retry is a second write: send a client_id and seq to retry safely"
                : "retry with the same client_id and seq (applied at most once)"
            var r = json(503, ErrorBody(error: "no outcome within the request timeout: the write may or may not be applied; " + advice,
                                        code: "timeout"))
            r.headers.append(("Retry-After", "1"))
            return r
        case .overloaded(let why):
            var r = json(503, ErrorBody(error: "overloaded: \(why); nothing was applied, retry after a second", code: "overloaded"))
            r.headers.append(("Retry-After", "1"))
            return r
        case .applied, .value:
            return error(500, "unexpected reply", "internal")
        }
    }

    /// The Raft group that holds `key`.
    private func group(of key: String) -> Int { KeyGroups.group(of: key, groups: replica.groupCount) }

    private func status() -> APIReply {
        let all = replica.statuses
        let groups = all.map { g -> StatusBody.Group in
            let l = g.leader.flatMap { members[$0] }
            return .init(id: g.group, role: g.role.rawValue, term: g.term.value, leader: l?.id, leader_addr: l?.httpURL,
                         commit_index: g.commit.value, applied_index: g.applied.value, last_index: g.lastIndex.value,
                         snapshot_index: g.snapshotIndex.value, keys: g.keys)
        }
        return json(200, StatusBody(
            id: selfID, groupZero: groups[0], snapshots_received: all[0].snapshotsReceived, keys: all.reduce(0) { $0 + $1.keys },
            read_policy: defaultConsistency.rawValue,
            peers: members.filter { $0.key != replica.id }.sorted { $0.key < $1.key }.map { .init(id: $0.value.id, addr: $0.value.httpURL) },
            wal: .init(sync: syncMode, syncs: all[0].syncs, batches: all[0].batches, entries: all[0].entriesWritten),
            groups: groups))
    }

    // MARK: Limits and helpers

    private func checkKey(_ key: String) -> APIReply? {
        if key.isEmpty { return error(400, "the key is empty", "bad_key") }
        if key.utf8.count > limits.keyBytes { return error(413, "a key of \(key.utf8.count) bytes exceeds the limit of \(limits.keyBytes)", "key_too_large") }
        return nil
    }

    private func checkValue(_ value: String) -> APIReply? {
        value.utf8.count > limits.valueBytes
            ? error(413, "a value of \(value.utf8.count) bytes exceeds the limit of \(limits.valueBytes)", "value_too_large") : nil
    }

    private func checkClient(_ client: String?) -> APIReply? {
        guard let client else { return nil }
        if client.isEmpty || client.utf8.count > limits.clientIDBytes || client.hasPrefix("~") {
            return error(400, "client_id must be 1-\(limits.clientIDBytes) bytes and not start with '~'", "bad_client_id")
        }
        return nil
    }

    private func notAllowed(_ method: String, allow: String) -> APIReply {
        var r = error(405, "method \(method) is not allowed here; allowed: \(allow)", "method_not_allowed")
        r.headers.append(("Allow", allow))
        return r
    }

    func error(_ status: Int, _ message: String, _ code: String) -> APIReply { .error(status, message, code) }

    private func json<T: Encodable>(_ status: Int, _ value: T) -> APIReply { .json(status, value) }

    package static func queryParameters(_ query: String?) -> [String: String] {
        var out: [String: String] = [:]
        for pair in (query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard let name = percentDecoded(String(parts[0])) else { continue }
            out[name] = parts.count > 1 ? percentDecoded(String(parts[1])) ?? "" : ""
        }
        return out
    }

    /// Percent-decoding; nil for a bad escape or bytes that are not UTF-8.
    package static func percentDecoded(_ s: String) -> String? {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%") {
                guard it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
