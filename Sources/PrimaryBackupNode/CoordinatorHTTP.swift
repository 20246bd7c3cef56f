import Core
import NodeClient
import PrimaryBackup
import RaftNode

/// `GET /status` of the coordinator.
struct CoordinatorStatus: Encodable {
    struct Pair: Encodable {
        var pair: Int
        var primary: String
        var backup: String
        var active: String?
        /// normal, failed_over, syncing, handing_back, down.
        var phase: String
        var epoch: UInt64
        var standby_synced: Bool
    }
    struct Node: Encodable {
        var id: String
        var alive: Bool
        var registered: Bool
        var silence_ms: Double?
        var applied_seq: UInt64?
        var lag_ops: UInt64?
    }
    var id: String
    var mode = "primary-backup"
    var role = "coordinator"
    var check_interval_ms: Int
    var fail_after_ms: Int
    var replication_path: String
    var pairs: [Pair]
    var nodes: [Node]
}

extension Coordinator.Phase {
    var name: String {
        switch self {
        case .normal: return "normal"
        case .failedOver: return "failed_over"
        case .syncing: return "syncing"
        case .handingBack: return "handing_back"
        case .down: return "down"
        }
    }
}

extension CoordinatorNode {
    /// The coordinator's routes.
    var handle: HTTPServer.Handler {
        { [self] method, path, query, body in
            switch (method, path) {
            case ("GET", "/healthz"): return .json(200, ["ok": true])
            case ("GET", "/status"): return status()
            case ("POST", "/pb/register"):
                guard case .success(let r) = JSON.decode(PBWire.Register.self, body), let id = known(r.id) else {
                    return .error(404, "POST /pb/register: not a storage node of this cluster", "unknown_node")
                }
                // The same process registering again (its first answer was slow) is a beat; another
                // process under the same id is a restart, whatever the check has seen.
                let again = incarnations.withLock { seen in
                    defer { seen[id] = r.incarnation }
                    return seen[id] == r.incarnation
                }
                if again && driver.withLock({ $0.core.nodes[id]?.alive == true }) {
                    let (_, assignment) = feed(.heartbeat(id), answering: id)
                    return .json(200, PBWire.BeatReply(register: false, assignment: assignment))
                }
                driver.withLock { $0.observe(epoch: r.epoch, of: id) }
                let (_, assignment) = feed(.register(id), answering: id)
                return .json(200, PBWire.BeatReply(register: false, assignment: assignment))
            case ("POST", "/pb/beat"):
                guard case .success(let b) = JSON.decode(PBWire.Beat.self, body), let id = known(b.id) else {
                    return .error(404, "POST /pb/beat: not a storage node of this cluster", "unknown_node")
                }
                beats.withLock { $0[b.id] = b }
                let (outcome, assignment) = feed(.heartbeat(id), answering: id)
                if b.needs_full_sync, !outcome.mustRegister, let p = driver.withLock({ d in d.pairIndex(of: id).flatMap { d.core.pairs[$0].active == id ? $0 : nil } }) {
                    feed(.resync(pair: p))
                }
                return .json(200, PBWire.BeatReply(register: outcome.mustRegister, assignment: outcome.mustRegister ? nil : assignment))
            case ("POST", "/pb/synced"):
                guard case .success(let s) = JSON.decode(PBWire.Synced.self, body), let id = known(s.id) else {
                    return .error(400, "POST /pb/synced: expected {id, pair, sync_id, seq, ok} of a storage node", "bad_body")
                }
                guard driver.withLock({ $0.pairIndex(of: id) == s.pair && $0.isCurrentSync(s.sync_id, of: id) }) else {
                    return .error(409, "POST /pb/synced: \(id) has no sync \(s.sync_id) of pair \(s.pair) under way (a late report?)", "stale_sync")
                }
                feed(s.ok ? .synced(pair: s.pair, id) : .syncFailed(pair: s.pair, id))
                return .json(200, ["ok": true])
            case ("POST", "/pb/relay"): return await relay(body)
            default: break
            }
            if method == "GET", path.hasPrefix("/route/") {
                guard let key = KVAPI.percentDecoded(String(path.dropFirst(7))), !key.isEmpty else {
                    return .error(400, "GET /route/{key}: the key is empty or not valid percent-encoded UTF-8", "bad_key")
                }
                return .json(200, route(key))
            }
            if path.hasPrefix("/kv/") {
                // The store's API at the coordinator: sent on to the active node of the key's pair.
                let key = path == "/kv/mput" || path == "/kv/cas" ? nil : KVAPI.percentDecoded(String(path.dropFirst(4)))
                guard let key, let addr = route(key).addr else {
                    var r = APIReply.error(503, key == nil ? "the coordinator routes single keys: ask GET /route/{key}, then the node it names"
                                           : "no node serves this key's pair right now; retry shortly", "no_leader")
                    r.headers.append(("Retry-After", "1"))
                    return r
                }
                var r = APIReply.error(307, "the coordinator stores nothing: ask \(addr)", "not_leader")
                r.headers.append(("Location", addr + path + (query.map { "?" + $0 } ?? "")))
                return r
            }
            return .error(404, "no such endpoint \(path) on the coordinator: use GET /route/{key}, /status or /healthz", "not_found")
        }
    }

    private func known(_ id: String) -> NodeID? {
        NodeID(validating: id).flatMap { options.nodes[$0] == nil ? nil : $0 }
    }

    func route(_ key: String) -> PBWire.Route {
        let (pair, active) = driver.withLock { d in
            let p = d.core.pair(of: key)
            return (p, d.core.pairs[p].active)
        }
        return PBWire.Route(key: key, pair: pair, active: active?.rawValue, addr: active.flatMap { options.nodes[$0]?.url })
    }

    /// `replication_path = "coordinator"`, as in the original: the acting primary's batch goes to
    /// the standby through here, and the standby's answer goes back.
    private func relay(_ body: [UInt8]) async -> APIReply {
        guard case .success(let r) = JSON.decode(PBWire.Replicate.self, body), let to = known(r.to), let address = options.traffic(to: to) else {
            return .error(400, "POST /pb/relay: expected a replication batch for a storage node", "bad_body")
        }
        do {
            let answer = try await NodeHTTP.send(host: address.host, port: address.port, method: "POST", path: "/pb/replicate", body: body,
                                                 timeoutMs: 2000, group: client)
            return APIReply(status: answer.status, headers: [("Content-Type", "application/json")], body: answer.body)
        } catch {
            return .error(502, "relay to \(to): \(error)", "unreachable")
        }
    }

    private func status() -> APIReply {
        let now = monotonicNow()
        let seen = beats.withLock { $0 }
        return driver.withLock { d in
            .json(200, CoordinatorStatus(
                id: options.id.rawValue, check_interval_ms: options.checkIntervalMs, fail_after_ms: options.failAfterMs,
                replication_path: options.replicationPath,
                pairs: d.core.pairs.enumerated().map { p, s in
                    .init(pair: p, primary: s.pair.primary.rawValue, backup: s.pair.backup.rawValue, active: s.active?.rawValue,
                          phase: s.phase.name, epoch: d.epochs[p], standby_synced: s.standbySynced)
                },
                nodes: d.allNodes.map { n in
                    let st = d.core.nodes[n]
                    return .init(id: n.rawValue, alive: st?.alive ?? false, registered: st?.registered ?? false,
                                 silence_ms: st?.lastHeardNs.map { Double(now - $0) / 1e6 }, applied_seq: seen[n.rawValue]?.applied_seq,
                                 lag_ops: seen[n.rawValue]?.lag_ops)
                }))
        }
    }
}
