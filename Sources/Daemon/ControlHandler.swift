import Core
import Events
import Faults
import Supervision
import Varlink

/// io.kvsupervisor methods: decode parameters, call the owner, encode the answer.
struct ControlHandler: Sendable {
    let context: DaemonContext

    /// Read-only calls, answered at once from snapshots (on the socket's event loop); nil for the rest.
    func immediate(_ call: VarlinkCall, _ peer: PeerCredentials) -> VarlinkResponse? {
        switch call.method.split(separator: ".").last.map(String.init) ?? "" {
        case "GetStatus": return .reply(context.statusReply())
        case "ListNodes": return .reply(["nodes": .array(context.supervisor.snapshot.map(Self.encode))])
        case "ListFaults": return .reply(["faults": .array(context.engine.activeFaults.map(Self.encode))])
        default: return nil
        }
    }

    func handle(_ call: VarlinkCall, _ peer: PeerCredentials) async -> VarlinkResponse {
        if let answer = immediate(call, peer) { return answer }
        let p = call.parameters ?? .object([:])
        let method = call.method.split(separator: ".").last.map(String.init) ?? ""
        do {
            switch method {
            case "Inject": return try await inject(p)
            case "Heal":
                let node = try optionalNode(p, "node")
                return .reply(["healed": .array(context.engine.heal(node: node).map { .string($0) })])
            case "StartNode":
                let node = try requiredNode(p)
                try await context.supervisor.start(node)
                return .reply([:])
            case "StopNode":
                let node = try requiredNode(p)
                try await context.supervisor.stop(node, graceMs: context.config.stopGraceMs)
                return .reply([:])
            case "RestartNode":
                let node = try requiredNode(p)
                try await context.supervisor.restart(node, graceMs: context.config.stopGraceMs)
                return .reply([:])
            case "ListEvents":
                let limit = try optionalInt(p, "limit", 1...EventHub.historySize) ?? 100
                let events = context.hub.recent(limit, kinds: try kinds(p))
                return .reply(["events": .array(events.map { JSONValue.from($0) })])
            case "Subscribe":
                guard call.wantsMore else {
                    return .error(VarlinkError.expectedMore, [:])
                }
                let replay = try optionalInt(p, "replay", 0...EventHub.historySize) ?? 0
                let events = context.hub.subscribe(kinds: try kinds(p), replay: replay)
                let (stream, sink) = AsyncStream.makeStream(of: VarlinkReply.self, bufferingPolicy: .bufferingNewest(16))
                let pump = Task {
                    for await event in events {
                        sink.yield(VarlinkReply(parameters: ["event": JSONValue.from(event)], continues: true))
                    }
                    sink.finish()
                }
                sink.onTermination = { _ in pump.cancel() }
                return .stream(stream)
            default:
                return .error(VarlinkError.methodNotFound, ["method": .string(call.method)])
            }
        } catch let e as BadParameter {
            return .error(VarlinkError.invalidParameter, ["parameter": .string(e.name), "reason": .string(e.reason)])
        } catch let e as SupervisionError {
            switch e {
            case .noSuchNode(let id): return .error("io.kvsupervisor.NoSuchNode", ["node": .string(id.rawValue)])
            default: return .error("io.kvsupervisor.OperationFailed", ["reason": .string(e.description)])
            }
        } catch {
            return .error("io.kvsupervisor.OperationFailed", ["reason": .string("\(error)")])
        }
    }

    private func inject(_ p: JSONValue) async throws -> VarlinkResponse {
        let requested = Stamp.now()
        let node = try requiredNode(p)
        guard let faultName = p["fault"]?.stringValue else { throw BadParameter(name: "fault", reason: "a string is required") }
        guard let kind = FaultKind(rawValue: faultName), kind != .heal else {
            return .error("io.kvsupervisor.InvalidFault", ["reason": .string(
                "unknown fault '\(faultName)'; use one of kill, stop, cont, term, delay, partition, restart")])
        }
        var peers: [NodeID]? = nil
        if let raw = p["peers"], raw != .null {
            guard let list = raw.arrayValue else { throw BadParameter(name: "peers", reason: "must be an array of node ids") }
            peers = try list.map { v in
                guard let s = v.stringValue, let id = NodeID(validating: s) else {
                    throw BadParameter(name: "peers", reason: "must be an array of node ids")
                }
                return id
            }
        }
        let spec = FaultSpec(kind: kind, node: node,
                             afterMs: try optionalInt(p, "after_ms", 0...FaultSpec.maxAfterMs) ?? 0,
                             forMs: try optionalInt(p, "for_ms", 1...FaultSpec.maxAfterMs),
                             delayMs: try optionalInt(p, "delay_ms", 0...FaultSpec.maxDelayMs),
                             jitterMs: try optionalInt(p, "jitter_ms", 0...FaultSpec.maxDelayMs), peers: peers)
        let known = Set(context.config.nodeIDs)
        guard known.contains(node) else { return .error("io.kvsupervisor.NoSuchNode", ["node": .string(node.rawValue)]) }
        do {
            let result = try await context.engine.inject(spec, requested: requested, knownNodes: known)
            var reply: [String: JSONValue] = ["fault_id": .string(result.faultID)]
            if let a = result.applied {
                reply["applied_wall_ms"] = .number(Double(a.wallMs))
                reply["applied_mono_ns"] = .number(Double(a.monoNs))
            }
            return .reply(.object(reply))
        } catch {
            switch error {
            case .noSuchNode(let id): return .error("io.kvsupervisor.NoSuchNode", ["node": .string(id.rawValue)])
            case .notRunning(let id, let state):
                return .error("io.kvsupervisor.NodeNotRunning", ["node": .string(id.rawValue), "state": .string(state)])
            case .invalid(let why): return .error("io.kvsupervisor.InvalidFault", ["reason": .string(why)])
            }
        }
    }

    // MARK: Parameters

    struct BadParameter: Error { var name: String; var reason: String }

    private func requiredNode(_ p: JSONValue) throws -> NodeID {
        guard let node = try optionalNode(p, "node") else { throw BadParameter(name: "node", reason: "a node id is required") }
        return node
    }

    private func optionalNode(_ p: JSONValue, _ key: String) throws -> NodeID? {
        guard let raw = p[key], raw != .null else { return nil }
        guard let s = raw.stringValue, let id = NodeID(validating: s) else {
            throw BadParameter(name: key, reason: "must be a node id string (1-32 letters, digits, '-' or '_')")
        }
        return id
    }

    private func optionalInt(_ p: JSONValue, _ key: String, _ range: ClosedRange<Int>) throws -> Int? {
        guard let raw = p[key], raw != .null else { return nil }
        guard let n = raw.intValue else { throw BadParameter(name: key, reason: "must be an integer") }
        guard range.contains(n) else { throw BadParameter(name: key, reason: "must be within \(range.lowerBound)...\(range.upperBound)") }
        return n
    }

    private func kinds(_ p: JSONValue) throws -> Set<EventKind>? {
        guard let raw = p["kinds"], raw != .null else { return nil }
        guard let list = raw.arrayValue else { throw BadParameter(name: "kinds", reason: "must be an array of event kinds") }
        return Set(try list.map { v in
            guard let s = v.stringValue, let k = EventKind(rawValue: s) else {
                throw BadParameter(name: "kinds", reason: "unknown event kind \(v); known: "
                    + EventKind.allCases.map(\.rawValue).joined(separator: ", "))
            }
            return k
        })
    }

    // MARK: Encoding

    static func encode(_ n: NodeStatus) -> JSONValue {
        var o: [String: JSONValue] = ["id": .string(n.id.rawValue), "state": .string(n.state.rawValue),
                                      "port": .number(Double(n.port)), "restarts": .number(Double(n.restarts))]
        if let pid = n.pid { o["pid"] = .number(Double(pid)) }
        if let exit = n.lastExit {
            switch exit {
            case .exited(let code): o["last_exit"] = ["code": .number(Double(code))]
            case .signaled(let s): o["last_exit"] = ["signal": .string(SignalName.name(s))]
            }
        }
        return .object(o)
    }

    static func encode(_ f: FaultRecord) -> JSONValue {
        var o: [String: JSONValue] = [
            "fault_id": .string(f.id), "fault": .string(f.spec.kind.rawValue), "node": .string(f.spec.node.rawValue),
            "affected": .array(f.affected.map { .string($0.rawValue) }),
            "applied": ["wall_ms": .number(Double(f.applied.wallMs)), "mono_ns": .number(Double(f.applied.monoNs))],
        ]
        if let v = f.spec.forMs { o["for_ms"] = .number(Double(v)) }
        if let v = f.spec.delayMs { o["delay_ms"] = .number(Double(v)) }
        if let v = f.spec.jitterMs { o["jitter_ms"] = .number(Double(v)) }
        return .object(o)
    }
}
