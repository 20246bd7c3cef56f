import Core

/// Why a node's coming exit is not a failure for the restart policy to repair.
public enum ExitExpectation: String, Sendable, Equatable {
    case stopRequested = "stopped on request"
    case supervisorStopping = "supervisor stopping"
    case injectedFault = "exit caused by an injected fault"

    /// A stop leaves the node `stopped`; a fault's kill leaves it `exited`, as a crash would.
    var endsAsStopped: Bool { self != .injectedFault }
}

/// The node table as a pure value: every change is an `Input` with an explicit time, and each
/// returns the `Effect`s to carry out (spawn, signal, timers, events). `NodeSupervisor` owns one
/// and only carries effects out; scenario scripts drive one directly (Tests/SupervisionTests/testdata).
public struct NodeTable: Sendable {
    public struct Entry: Sendable {
        public var config: NodeConfig
        public var state: NodeState = .stopped
        /// Bumped by each spawn; reports and timers name the generation they belong to.
        public var generation = 0
        /// The generation whose process is registered (by the spawn's return or its `.started`
        /// report, whichever comes first; an exit also closes the generation for registration).
        public var registeredGeneration = 0
        public var pid: Int32?
        public var started: Stamp?
        public var restarts = 0
        public var lastExit: ExitCause?
        public var raft: RaftView?
        public var policy: RestartPolicy
        public var expectation: ExitExpectation?
        /// The pending restart timer, if any; a timer firing with another token is stale.
        public var restartToken: Int?
        /// A stop asked for while the process was being spawned, carried out when it registers.
        public var pendingStopGraceMs: Int?
        /// When the signal behind the last pause or continue was applied: an older one is stale.
        public var pauseChangedAt: MonotonicNanos = .min

    }

    public enum Input: Sendable {
        case start(NodeID)
        case spawned(NodeID, generation: Int, pid: Int32)
        case spawnFailed(NodeID, generation: Int, reason: String)
        case notified(NodeID, generation: Int, message: String)
        case exited(NodeID, generation: Int, cause: ExitCause)
        case stop(NodeID, ExitExpectation, graceMs: Int)
        case stopGraceExpired(NodeID, generation: Int)
        /// A fault is about to end the process: its exit is no failure.
        case faultWillEndProcess(NodeID)
        /// The fault that was to end the process was cancelled before it was applied.
        case faultWontEndProcess(NodeID)
        /// A stop or cont took effect; the step's time is when its signal was applied.
        case pausedChanged(NodeID, generation: Int, paused: Bool)
        case restartDue(NodeID, token: Int)
        case reconfigure(ClusterConfig)
    }

    public enum Effect: Sendable, Equatable {
        case spawn(NodeID, generation: Int)
        case signal(NodeID, generation: Int, signal: Int32)
        /// Feed `.stopGraceExpired` back after this long.
        case armStopTimer(NodeID, generation: Int, afterMs: Int)
        /// Feed `.restartDue` back after this long.
        case scheduleRestart(NodeID, token: Int, afterMs: Int)
        case cancelRestart(NodeID, token: Int)
        /// The generation's process is reaped: close its pidfd.
        case release(NodeID, generation: Int)
        case emit(Event)
        case log(NodeID, String)
    }

    public private(set) var entries: [NodeID: Entry] = [:]
    public let order: [NodeID]
    public private(set) var config: ClusterConfig
    private let runID: String
    private var nextToken = 0

    public init(config: ClusterConfig, runID: String) {
        self.config = config
        self.runID = runID
        order = config.nodeIDs
        for node in config.nodes {
            entries[node.id] = Entry(config: node, policy: RestartPolicy(config: config))
        }
    }

    public subscript(id: NodeID) -> Entry? { entries[id] }
    public var readyCount: Int { entries.values.filter { $0.state.countsAsReady }.count }
    public var hasProcesses: Bool { entries.values.contains { $0.pid != nil } }

    public var statuses: [NodeStatus] {
        order.compactMap { id in
            entries[id].map { e in
                NodeStatus(id: id, pid: e.pid, state: e.state, port: e.config.port, restarts: e.restarts,
                           lastExit: e.lastExit, startedWallMs: e.started?.wallMs, raft: e.raft)
            }
        }
    }

    /// Applies one input at `now`; throws for a command that cannot be carried out (the table is then unchanged).
    public mutating func step(_ input: Input, at now: Stamp) throws(SupervisionError) -> [Effect] {
        switch input {
        case .start(let id): return try start(id)
        case .spawned(let id, let generation, let pid): return register(id, generation: generation, pid: pid, at: now)
        case .spawnFailed(let id, let generation, let reason):
            guard var e = entries[id], e.generation == generation, e.registeredGeneration < generation else { return [] }
            e.registeredGeneration = generation
            e.pendingStopGraceMs = nil
            e.state = .stopped
            entries[id] = e
            return [.log(id, "cannot start: \(reason)")]
        case .notified(let id, let generation, let message):
            return notified(id, generation: generation, message: message, at: now)
        case .exited(let id, let generation, let cause): return exited(id, generation: generation, cause: cause, at: now)
        case .stop(let id, let why, let graceMs): return try stop(id, why, graceMs: graceMs)
        case .stopGraceExpired(let id, let generation):
            guard let e = entries[id], e.generation == generation, e.pid != nil else { return [] }
            return [.signal(id, generation: generation, signal: SIGKILL_), .log(id, "did not stop within the grace period: SIGKILL")]
        case .faultWillEndProcess(let id):
            guard entries[id]?.pid != nil else { throw .notRunning(id) }
            entries[id]?.expectation = .injectedFault
            return []
        case .faultWontEndProcess(let id):
            if entries[id]?.expectation == .injectedFault { entries[id]?.expectation = nil }
            return []
        case .pausedChanged(let id, let generation, let paused):
            // Effects are seen by two threads and may arrive out of order: the later signal wins.
            guard let e = entries[id], e.generation == generation, e.pid != nil, now.monoNs >= e.pauseChangedAt else { return [] }
            entries[id]?.pauseChangedAt = now.monoNs
            if paused { entries[id]?.state = .paused } else if e.state == .paused { entries[id]?.state = .ready }
            return []
        case .restartDue(let id, let token):
            guard let e = entries[id], e.restartToken == token else { return [] }
            entries[id]?.restartToken = nil
            guard e.pid == nil else { return [] }
            let effects = try start(id)
            entries[id]?.restarts += 1
            return effects
        case .reconfigure(let new):
            config = new
            for id in order { if let p = entries[id]?.policy { entries[id]?.policy = p.reconfigured(new) } }
            return []
        }
    }

    // MARK: Transitions

    private mutating func start(_ id: NodeID) throws(SupervisionError) -> [Effect] {
        guard var e = entries[id] else { throw .noSuchNode(id) }
        guard e.pid == nil, e.state != .starting else { throw .alreadyRunning(id) }
        var effects: [Effect] = []
        if let token = e.restartToken { effects.append(.cancelRestart(id, token: token)) }
        e.restartToken = nil
        e.generation += 1
        e.expectation = nil
        e.pendingStopGraceMs = nil
        e.pauseChangedAt = .min
        e.state = .starting
        entries[id] = e
        effects.append(.spawn(id, generation: e.generation))
        return effects
    }

    /// Once per generation, whichever of the spawn's return and the `.started` report comes first.
    private mutating func register(_ id: NodeID, generation: Int, pid: Int32, at now: Stamp) -> [Effect] {
        guard var e = entries[id], e.generation == generation, e.registeredGeneration < generation else { return [] }
        e.registeredGeneration = generation
        e.pid = pid
        e.started = now
        e.policy.recordStart(at: now.monoNs)
        let pendingStop = e.pendingStopGraceMs
        e.pendingStopGraceMs = nil
        entries[id] = e
        var event = Event(kind: .nodeStarted, runID: runID, node: id, at: now)
        event.pid = pid
        guard let graceMs = pendingStop else { return [.emit(event)] }
        return [.emit(event)] + Self.stopSignals(id, generation: generation, graceMs: graceMs)
    }

    private mutating func notified(_ id: NodeID, generation: Int, message: String, at now: Stamp) -> [Effect] {
        // The `.started` report precedes a child's notify messages on the report stream, so a
        // message from a process not (or no longer) registered is stale.
        guard let e = entries[id], e.generation == generation, e.pid != nil else { return [] }
        var effects: [Effect] = []
        for line in message.split(separator: "\n") {
            if line == "READY=1" {
                guard entries[id]?.state == .starting else { continue }
                entries[id]?.state = .ready
                var event = Event(kind: .nodeReady, runID: runID, node: id, at: now)
                event.pid = e.pid
                effects.append(.emit(event))
            } else if line.hasPrefix(RaftView.notifyPrefix) {
                let json = line.dropFirst(RaftView.notifyPrefix.count)
                guard let view = RaftView.decode(jsonLine: json) else {
                    effects.append(.log(id, "unreadable raft status from node: \(line.prefix(200))"))
                    continue
                }
                entries[id]?.raft = view
            } else if line.hasPrefix("KV_EVENT=") {
                guard var event = try? Event.decode(jsonLine: line.dropFirst("KV_EVENT=".count)) else {
                    effects.append(.log(id, "unreadable event from node: \(line.prefix(200))"))
                    continue
                }
                // Only the node's own observations are taken; lifecycle events are the supervisor's to say.
                guard Self.nodeEventKinds.contains(event.kind) else { continue }
                event.node = id
                event.runID = runID
                effects.append(.emit(event))
            }
        }
        return effects
    }

    static let nodeEventKinds: Set<EventKind> = [.suspect, .declaredDead, .declaredAlive, .leaderElected, .leaderLost, .writeAcked, .walTruncated,
                                                  .replicationLag, .syncStarted, .syncFinished, .primaryResumed]

    private mutating func exited(_ id: NodeID, generation: Int, cause: ExitCause, at now: Stamp) -> [Effect] {
        guard var e = entries[id], e.generation == generation else { return [] }
        // An exit closes its generation: a registration that comes later is of a dead process.
        guard e.pid != nil || e.registeredGeneration < generation else { return [] }
        let pid = e.pid
        e.registeredGeneration = generation
        e.pid = nil
        e.raft = nil
        e.lastExit = cause
        e.state = e.expectation?.endsAsStopped == true ? .stopped : .exited
        var event = Event(kind: .nodeExited, runID: runID, node: id, at: now)
        event.pid = pid
        switch cause {
        case .exited(let code): event.exitCode = code
        case .signaled(let s): event.signal = SignalName.name(s)
        }
        let decision = e.policy.decide(cause, injected: e.expectation != nil, at: now.monoNs)
        var effects: [Effect] = [.release(id, generation: generation)]
        switch decision {
        case .noRestart(let why): event.reason = e.expectation?.rawValue ?? why
        case .giveUp(let why): event.reason = why
        case .restart: break
        }
        effects.append(.emit(event))
        e.expectation = nil  // consumed by this exit
        if case .restart(let afterMs) = decision {
            nextToken += 1
            e.restartToken = nextToken
            var scheduled = Event(kind: .nodeRestartScheduled, runID: runID, node: id, at: now)
            scheduled.restartInMs = afterMs
            effects += [.emit(scheduled), .scheduleRestart(id, token: nextToken, afterMs: afterMs)]
        }
        entries[id] = e
        return effects
    }

    private mutating func stop(_ id: NodeID, _ why: ExitExpectation, graceMs: Int) throws(SupervisionError) -> [Effect] {
        guard var e = entries[id] else { throw .noSuchNode(id) }
        var effects: [Effect] = []
        if let token = e.restartToken { effects.append(.cancelRestart(id, token: token)) }
        e.restartToken = nil
        if e.pid == nil {
            // Spawning right now: the stop is carried out the moment the process registers.
            if e.state == .starting && e.registeredGeneration < e.generation {
                e.expectation = why
                e.pendingStopGraceMs = graceMs
            } else {
                e.state = .stopped
            }
            entries[id] = e
            return effects
        }
        e.expectation = why
        entries[id] = e
        return effects + Self.stopSignals(id, generation: e.generation, graceMs: graceMs)
    }

    /// A paused node cannot act on SIGTERM: continue it first; SIGKILL when the grace period ends.
    private static func stopSignals(_ id: NodeID, generation: Int, graceMs: Int) -> [Effect] {
        [.signal(id, generation: generation, signal: SIGCONT_), .signal(id, generation: generation, signal: SIGTERM_),
         .armStopTimer(id, generation: generation, afterMs: graceMs)]
    }
}

// Linux signal numbers, so that this file needs no Glibc.
let SIGKILL_: Int32 = 9
let SIGTERM_: Int32 = 15
let SIGCONT_: Int32 = 18
