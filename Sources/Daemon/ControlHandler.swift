import Core
import Events
import ExperimentRunner
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
        case "ListNodes": return .reply(ControlProtocol.Nodes(nodes: context.supervisor.snapshot.map(Self.encode)))
        case "ListFaults":
            return .reply(ControlProtocol.Faults(faults: context.engine.activeFaults.map(Self.encode)
                + context.engine.scheduledFaults.map(Self.encode)))
        default: return nil
        }
    }

    func handle(_ call: VarlinkCall, _ peer: PeerCredentials) async -> VarlinkResponse {
        if let answer = immediate(call, peer) { return answer }
        let method = call.method.split(separator: ".").last.map(String.init) ?? ""
        do {
            switch method {
            case "Inject": return try await inject(call.decodeParameters(ControlProtocol.InjectParameters.self))
            case "Heal":
                let node = try optionalNode(call.decodeParameters(ControlProtocol.NodeParameter.self).node, "node")
                if let node, !context.config.nodeIDs.contains(node) {
                    return .error("io.kvsupervisor.NoSuchNode", ["node": .string(node.rawValue)])
                }
                return .reply(ControlProtocol.HealReply(healed: context.engine.heal(node: node)))
            case "Reload":
                let p = try call.decodeParameters(ControlProtocol.ReloadParameters.self)
                guard context.state != .starting else {
                    return .error("io.kvsupervisor.ReloadRefused", ["reason": .string("the nodes are still starting; retry once kvctl status says running")])
                }
                do {
                    let outcome = try await context.reloader.reload(context, restartNodes: p.restartNodes ?? false)
                    return .reply(ControlProtocol.ReloadReply(file: context.configFile ?? "", changes: outcome.changes,
                                                              restarted: outcome.restarted.map(\.rawValue)))
                } catch {
                    return .error("io.kvsupervisor.ReloadRefused", ["reason": .string(error.description)])
                }
            case "CancelFault":
                let p = try call.decodeParameters(ControlProtocol.FaultIDParameter.self)
                do {
                    let cancelled = try context.engine.cancel(p.faultID)
                    if [.kill, .term].contains(cancelled.spec.kind) && !cancelled.anotherEndsProcess {
                        await context.supervisor.faultCancelled(cancelled.spec.node)
                    }
                } catch {
                    if case .noSuchFault(let id, let why) = error {
                        return .error("io.kvsupervisor.NoSuchFault", ["fault_id": .string(id), "reason": .string(why)])
                    }
                    return .error("io.kvsupervisor.OperationFailed", ["reason": .string(error.description)])
                }
                return .reply(p)
            case "StartNode":
                let node = try requiredNode(call)
                // As systemctl start: a node already running (or starting) is left as it is.
                do { try await context.supervisor.start(node) } catch SupervisionError.alreadyRunning {}
                return nodeReply(node)
            case "StopNode":
                let node = try requiredNode(call)
                try await context.supervisor.stop(node, graceMs: context.config.stopGraceMs)
                return nodeReply(node)
            case "RestartNode":
                let node = try requiredNode(call)
                try await context.supervisor.restart(node, graceMs: context.config.stopGraceMs)
                return nodeReply(node)
            case "ListEvents":
                let q = try call.decodeParameters(ControlProtocol.EventQuery.self)
                let limit = try inRange(q.limit, "limit", 1...EventHub.historySize) ?? 100
                return .reply(ControlProtocol.EventList(events: context.hub.recent(limit, kinds: try kinds(q.kinds), runID: q.runID)))
            case "Subscribe":
                guard call.wantsMore else {
                    return .error(VarlinkError.expectedMore, [:])
                }
                let q = try call.decodeParameters(ControlProtocol.EventQuery.self)
                let replay = try inRange(q.replay, "replay", 0...EventHub.historySize) ?? 0
                let events = context.hub.subscribe(kinds: try kinds(q.kinds), replay: replay, runID: q.runID)
                return .stream(Self.frames(events.map { ControlProtocol.EventReply(event: $0) }, buffer: 16) { _ in false })
            case "RunExperiment", "ResumeExperiment":
                guard call.wantsMore else { return .error(VarlinkError.expectedMore, [:]) }
                let updates: AsyncStream<ControlProtocol.ExperimentUpdate>
                if method == "RunExperiment" {
                    let p = try call.decodeParameters(ControlProtocol.RunExperimentParameters.self)
                    updates = try context.experiments.run(specText: p.spec, file: p.file)
                } else {
                    let p = try call.decodeParameters(ControlProtocol.RunIDParameter.self)
                    guard let id = p.runID else { throw VarlinkParameterError(name: "run_id", reason: "is required") }
                    updates = try context.experiments.resume(runID: id)
                }
                return .stream(Self.frames(updates, buffer: 64) { $0.state.isOver })
            case "CancelExperiment":
                let p = try call.decodeParameters(ControlProtocol.RunIDParameter.self)
                return .reply(ControlProtocol.CancelReply(runID: try context.experiments.cancel(runID: p.runID)))
            case "ListExperiments":
                return .reply(ControlProtocol.ExperimentRuns(runs: context.experiments.list()))
            case "GetExperiment":
                let p = try call.decodeParameters(ControlProtocol.RunIDParameter.self)
                guard let id = p.runID else { throw VarlinkParameterError(name: "run_id", reason: "is required") }
                return .reply(try context.experiments.detail(runID: id))
            default:
                return .error(VarlinkError.methodNotFound, ["method": .string(call.method)])
            }
        } catch let e as VarlinkParameterError {
            return .error(VarlinkError.invalidParameter, ["parameter": .string(e.name), "reason": .string(e.reason)])
        } catch let e as ExperimentError {
            switch e {
            case .busy(let id): return .error("io.kvsupervisor.ExperimentRunning", ["run_id": .string(id)])
            case .invalidSpec(let c):
                var p: [String: JSONValue] = ["file": .string(c.file), "reason": .string(c.description)]
                if let line = c.line { p["line"] = .integer(Int64(line)) }
                if let key = c.key { p["key"] = .string(key) }
                return .error("io.kvsupervisor.InvalidSpec", .object(p))
            case .noSuchRun(let id): return .error("io.kvsupervisor.NoSuchExperiment", ["run_id": .string(id)])
            default: return .error("io.kvsupervisor.OperationFailed", ["reason": .string(e.description)])
            }
        } catch let e as SupervisionError {
            switch e {
            case .noSuchNode(let id): return .error("io.kvsupervisor.NoSuchNode", ["node": .string(id.rawValue)])
            default: return .error("io.kvsupervisor.OperationFailed", ["reason": .string(e.description)])
            }
        } catch {
            return .error("io.kvsupervisor.OperationFailed", ["reason": .string("\(error)")])
        }
    }

    /// A "more" call's replies as frames, each with "continues" until `isLast` says otherwise; the
    /// pump stops when the client goes away.
    static func frames<S: AsyncSequence & Sendable>(_ replies: S, buffer: Int, isLast: @escaping @Sendable (S.Element) -> Bool)
        -> AsyncStream<[UInt8]> where S.Element: Encodable & Sendable {
        let (stream, sink) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .bufferingNewest(buffer))
        let pump = Task {
            do {
                for try await reply in replies {
                    let last = isLast(reply)
                    sink.yield(VarlinkReply.frame(reply, continues: !last))
                    if last { break }
                }
            } catch {}
            sink.finish()
        }
        sink.onTermination = { _ in pump.cancel() }
        return stream
    }

    private func inject(_ p: ControlProtocol.InjectParameters) async throws -> VarlinkResponse {
        let requested = Stamp.now()
        if let run = context.experiments.activeRunID {
            return .error("io.kvsupervisor.ExperimentRunning", ["run_id": .string(run)])
        }
        var leaderTerm: UInt64?
        var leaderGroup: Int?
        let node: NodeID
        if p.node == "leader" || p.node == "primary" {
            // Resolved now, from the nodes' latest reports: the leader of the key's group (group 0
            // without a key) in the highest term; in primary-backup mode, the active node of the key's pair.
            let config = context.config
            let pb = config.mode == .primaryBackup
            let leaders = GroupLeaders(context.supervisor.snapshot.map { ($0.id.rawValue, $0.raft) },
                                       groups: pb ? config.pairs.count : config.raft.groups)
            let (group, found) = p.key.map { leaders.forKey($0) } ?? (0, leaders.byGroup[0])
            guard let leader = found, let id = NodeID(validating: leader.node) else {
                return .error("io.kvsupervisor.NoLeader", ["reason": .string(pb
                    ? "no node reports itself the active node of pair \(group) right now (a failover is under way, or both are down); "
                        + "retry, or name a node"
                    : "no node reports itself leader of group \(group) right now (not raft mode, or an election is under way); "
                        + "retry, or name a node")])
            }
            node = id
            leaderTerm = leader.view.term
            leaderGroup = p.key == nil ? nil : group
        } else {
            if p.key != nil { throw VarlinkParameterError(name: "key", reason: "goes with node \"leader\" or \"primary\" only") }
            guard let named = try optionalNode(p.node, "node") else { throw VarlinkParameterError(name: "node", reason: "is required") }
            node = named
        }
        guard let kind = FaultKind(rawValue: p.fault), kind != .heal else {
            return .error("io.kvsupervisor.InvalidFault", ["reason": .string(
                "unknown fault '\(p.fault)'; use one of kill, stop, cont, term, delay, partition, restart")])
        }
        let peers: [NodeID]? = try p.peers.map { list in
            try list.map { s in
                guard let id = NodeID(validating: s) else {
                    throw VarlinkParameterError(name: "peers", reason: "'\(s)' is not a node id (1-32 letters, digits, '-' or '_')")
                }
                return id
            }
        }
        var direction: LinkDirection?
        if let d = p.direction {
            guard let parsed = LinkDirection(rawValue: d) else {
                throw VarlinkParameterError(name: "direction", reason: "'\(d)' is not a direction: use out (what the node sends) or in (what it receives)")
            }
            // Raft and heartbeat nodes send on the connections they open, so a link's direction is a
            // message direction; primary-backup's HTTP carries requests and answers both ways on one.
            if context.config.mode == .primaryBackup {
                throw VarlinkParameterError(name: "direction", reason: "one-way faults need raft or heartbeat mode: primary-backup's HTTP "
                                            + "carries requests and their answers on the same connections")
            }
            direction = parsed
        }
        var spec = FaultSpec(kind: kind, node: node,
                             afterMs: try inRange(p.afterMs, "after_ms", 0...FaultSpec.maxAfterMs) ?? 0,
                             forMs: try inRange(p.forMs, "for_ms", 1...FaultSpec.maxAfterMs),
                             delayMs: try inRange(p.delayMs, "delay_ms", 0...FaultSpec.maxDelayMs),
                             jitterMs: try inRange(p.jitterMs, "jitter_ms", 0...FaultSpec.maxDelayMs), peers: peers,
                             leaderTerm: leaderTerm, direction: direction)
        spec.leaderGroup = leaderGroup
        let known = Set(context.config.nodeIDs)
        guard known.contains(node) else { return .error("io.kvsupervisor.NoSuchNode", ["node": .string(node.rawValue)]) }
        do {
            let result = try await context.engine.inject(spec, requested: requested, knownNodes: known)
            return .reply(ControlProtocol.InjectReply(faultID: result.faultID, applied: result.applied, node: node.rawValue,
                                                      term: leaderTerm, group: leaderGroup))
        } catch {
            switch error {
            case .noSuchNode(let id): return .error("io.kvsupervisor.NoSuchNode", ["node": .string(id.rawValue)])
            case .notRunning(let id, let state):
                return .error("io.kvsupervisor.NodeNotRunning", ["node": .string(id.rawValue), "state": .string(state)])
            case .invalid(let why): return .error("io.kvsupervisor.InvalidFault", ["reason": .string(why)])
            case .noSuchFault(let id, let why):
                return .error("io.kvsupervisor.NoSuchFault", ["fault_id": .string(id), "reason": .string(why)])
            }
        }
    }

    private func nodeReply(_ id: NodeID) -> VarlinkResponse {
        guard let n = context.supervisor.snapshot.first(where: { $0.id == id }) else {
            return .error("io.kvsupervisor.NoSuchNode", ["node": .string(id.rawValue)])
        }
        return .reply(ControlProtocol.NodeReply(node: Self.encode(n)))
    }

    // MARK: Parameters

    private func requiredNode(_ call: VarlinkCall) throws -> NodeID {
        guard let node = try optionalNode(call.decodeParameters(ControlProtocol.NodeParameter.self).node, "node") else {
            throw VarlinkParameterError(name: "node", reason: "a node id is required")
        }
        return node
    }

    private func optionalNode(_ raw: String?, _ key: String) throws -> NodeID? {
        guard let raw else { return nil }
        guard let id = NodeID(validating: raw) else {
            throw VarlinkParameterError(name: key, reason: "must be a node id string (1-32 letters, digits, '-' or '_')")
        }
        return id
    }

    private func inRange(_ n: Int?, _ key: String, _ range: ClosedRange<Int>) throws -> Int? {
        guard let n else { return nil }
        guard range.contains(n) else {
            throw VarlinkParameterError(name: key, reason: "must be within \(range.lowerBound)...\(range.upperBound)")
        }
        return n
    }

    private func kinds(_ names: [String]?) throws -> Set<EventKind>? {
        guard let names else { return nil }
        return Set(try names.map { s in
            guard let k = EventKind(rawValue: s), EventKind.emitted.contains(k) else {
                throw VarlinkParameterError(name: "kinds", reason: "unknown event kind '\(s)'; known: "
                    + EventKind.emitted.map(\.rawValue).joined(separator: ", "))
            }
            return k
        })
    }

    // MARK: Encoding

    static func encode(_ n: NodeStatus) -> ControlProtocol.Node {
        let exit: ControlProtocol.ExitStatus? = n.lastExit.map {
            switch $0 {
            case .exited(let code): return .init(code: code)
            case .signaled(let s): return .init(signal: SignalName.name(s))
            }
        }
        return .init(id: n.id.rawValue, pid: n.pid, state: n.state.rawValue, port: n.port, restarts: n.restarts, lastExit: exit,
                     raft: n.raft)
    }

    static func encode(_ f: FaultRecord) -> ControlProtocol.Fault {
        .init(faultID: f.id, state: "active", fault: f.spec.kind.rawValue, node: f.spec.node.rawValue,
              affected: f.affected.map(\.rawValue), requested: f.requested, applied: f.applied,
              afterMs: f.spec.afterMs > 0 ? f.spec.afterMs : nil, forMs: f.spec.forMs, delayMs: f.spec.delayMs, jitterMs: f.spec.jitterMs)
    }

    static func encode(_ e: FaultLedger.Entry) -> ControlProtocol.Fault {
        let due = Stamp(wallMs: e.requested.wallMs + Int64(e.spec.afterMs), monoNs: e.dueMonoNs)
        return .init(faultID: e.id, state: "scheduled", fault: e.spec.kind.rawValue, node: e.spec.node.rawValue,
                     affected: e.affected.map(\.rawValue), requested: e.requested, due: due, applied: nil, afterMs: e.spec.afterMs,
                     forMs: e.spec.forMs, delayMs: e.spec.delayMs, jitterMs: e.spec.jitterMs)
    }
}
