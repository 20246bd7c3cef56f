import CLinux
import Core
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The one owner of the node processes: spawns, reaps, restarts and signals them. Nothing else
/// holds a node's pid except through `signalHandle(for:)`, which hands out a duplicated pidfd.
public actor NodeSupervisor {
    public typealias SpecBuilder = @Sendable (NodeConfig) -> ChildSpec

    private struct Slot {
        var config: NodeConfig
        var notify: NotifySocket
        var state: NodeState = .stopped
        var child: RunningChild?
        var generation = 0
        /// The generation whose child has been registered; an exit must not be followed by a
        /// late registration of the same, dead child.
        var registeredGeneration = 0
        var restarts = 0
        var lastExit: ExitCause?
        var policy: RestartPolicy
        /// Set when a fault or a stop request is about to end the process: its exit is not a failure.
        var exitExpected: String?
        var pendingRestart: Task<Void, Never>?
    }

    private var slots: [NodeID: Slot] = [:] { didSet { publish() } }
    private var order: [NodeID] = []
    /// The node table as of the last change, readable without a hop onto this actor: read-only
    /// control calls answer from it on the socket's event loop.
    private let published = Mutex<[NodeStatus]>([])
    private let runID: String
    private let makeSpec: SpecBuilder
    private let emit: @Sendable (Event) -> Void
    private let log: @Sendable (NodeID, String) -> Void
    private let reports: AsyncStream<ChildReport>
    private let reportSink: AsyncStream<ChildReport>.Continuation
    private var config: ClusterConfig
    private let probesSent = Atomic<UInt64>(0)
    private let probesAnswered = Atomic<UInt64>(0)

    public init(config: ClusterConfig, runtimeDir: String, runID: String, makeSpec: @escaping SpecBuilder,
                emit: @escaping @Sendable (Event) -> Void,
                log: @escaping @Sendable (NodeID, String) -> Void) throws(SupervisionError) {
        self.config = config
        self.runID = runID
        self.makeSpec = makeSpec
        self.emit = emit
        self.log = log
        (reports, reportSink) = AsyncStream.makeStream(of: ChildReport.self, bufferingPolicy: .unbounded)
        for node in config.nodes {
            let notify = try NotifySocket(path: "\(runtimeDir)/notify-\(node.id).sock")
            slots[node.id] = Slot(config: node, notify: notify, policy: RestartPolicy(config: config))
            order.append(node.id)
        }
        let initial = Self.statuses(order: order, slots: slots)
        published.withLock { $0 = initial }
    }

    /// Consumes child reports until cancelled. Exactly one caller.
    public func run() async {
        for await report in reports {
            handle(report)
        }
    }

    public func shutdownReports() { reportSink.finish() }

    /// Whether the loop that owns the node table (this actor, fed by the report stream) took the
    /// last probe, then sends the next. The watchdog calls it once per ping period and pings only
    /// on true: a table snapshot stays readable from a wedged actor, so it proves nothing.
    public nonisolated func probeLoop() -> Bool {
        let sent = probesSent.load(ordering: .acquiring)
        let answered = probesAnswered.load(ordering: .acquiring) == sent
        let next = probesSent.add(1, ordering: .acquiringAndReleasing).newValue
        reportSink.yield(.probe(next))
        return answered
    }

    /// Blocks the actor's executor for good: what a deadlock or an endless loop would do. Only
    /// the test hook calls it, to show that the watchdog then stops pinging.
    public func wedgeForTesting() {
        while true { sleep(3600) }
    }

    // MARK: Commands

    public func startAll() async throws {
        for id in order where slots[id]?.child == nil {
            try await start(id)
        }
    }

    public func start(_ id: NodeID) async throws {
        guard var slot = slots[id] else { throw SupervisionError.noSuchNode(id) }
        guard slot.child == nil else { throw SupervisionError.alreadyRunning(id) }
        slot.pendingRestart?.cancel()
        slot.pendingRestart = nil
        slot.generation += 1
        slot.exitExpected = nil
        slot.state = .starting
        slots[id] = slot
        var spec = makeSpec(slot.config)
        spec.environment += ["NOTIFY_SOCKET=\(slot.notify.path)", "KVSUPERVISOR_PID=\(getpid())"]
        let child = try await ChildMonitor.launch(spec, generation: slot.generation, notify: slot.notify, reports: reportSink)
        // The `.started` report may have registered it already (the actor ran reports while we waited).
        register(id, generation: slot.generation, child: child)
    }

    /// Makes `child` the slot's process, once per generation, whichever of `start` and the
    /// `.started` report gets here first.
    private func register(_ id: NodeID, generation: Int, child: RunningChild) {
        guard let slot = slots[id], slot.generation == generation, slot.registeredGeneration < generation else { return }
        slots[id]?.registeredGeneration = generation
        slots[id]?.child = child
        slots[id]?.policy.recordStart(at: child.started.monoNs)
        var event = Event(kind: .nodeStarted, runID: runID, node: id, at: child.started)
        event.pid = child.pid
        emit(event)
    }

    /// Asks a node to stop (SIGTERM to its process through the pidfd), SIGKILL after the grace period.
    public func stop(_ id: NodeID, graceMs: Int) async throws {
        guard let slot = slots[id] else { throw SupervisionError.noSuchNode(id) }
        slots[id]?.pendingRestart?.cancel()
        slots[id]?.pendingRestart = nil
        guard let child = slot.child else {
            slots[id]?.state = .stopped
            return
        }
        slots[id]?.exitExpected = "stopped on request"
        _ = kv_pidfd_send_signal(child.pidfd, SIGCONT)  // a paused node cannot act on SIGTERM
        _ = kv_pidfd_send_signal(child.pidfd, SIGTERM)
        if await waitForExit(id, generation: slot.generation, timeoutMs: graceMs) { return }
        if let child = slots[id]?.child { _ = kv_pidfd_send_signal(child.pidfd, SIGKILL) }
        _ = await waitForExit(id, generation: slot.generation, timeoutMs: 5000)
    }

    public func restart(_ id: NodeID, graceMs: Int) async throws {
        try await stop(id, graceMs: graceMs)
        try await start(id)
    }

    /// Stops every node in parallel: SIGTERM all, wait `graceMs`, SIGKILL the rest.
    public func stopAll(graceMs: Int) async {
        for id in order {
            slots[id]?.pendingRestart?.cancel()
            slots[id]?.pendingRestart = nil
            guard let child = slots[id]?.child else { continue }
            slots[id]?.exitExpected = "supervisor stopping"
            _ = kv_pidfd_send_signal(child.pidfd, SIGCONT)
            _ = kv_pidfd_send_signal(child.pidfd, SIGTERM)
        }
        let deadline = monotonicNow() + Int64(graceMs) * 1_000_000
        while slots.values.contains(where: { $0.child != nil }) && monotonicNow() < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        for slot in slots.values { if let c = slot.child { _ = kv_pidfd_send_signal(c.pidfd, SIGKILL) } }
        let killDeadline = monotonicNow() + 5_000_000_000
        while slots.values.contains(where: { $0.child != nil }) && monotonicNow() < killDeadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// A duplicate of the node's pidfd for a fault to signal through, and marks the coming exit as
    /// expected when the fault ends the process. The caller closes the descriptor.
    public func signalHandle(for id: NodeID, endsProcess: Bool) throws -> (pid: Int32, pidfd: Int32) {
        guard let slot = slots[id] else { throw SupervisionError.noSuchNode(id) }
        guard let child = slot.child else { throw SupervisionError.notRunning(id) }
        if endsProcess { slots[id]?.exitExpected = "exit caused by an injected fault" }
        return (child.pid, dup(child.pidfd))
    }

    public func setPaused(_ id: NodeID, _ paused: Bool) {
        guard let slot = slots[id], slot.child != nil else { return }
        if paused { slots[id]?.state = .paused }
        else if slot.state == .paused { slots[id]?.state = .ready }
    }

    public func applyConfig(_ new: ClusterConfig) {
        config = new
        for id in order { slots[id]?.policy = RestartPolicy(config: new) }
    }

    // MARK: Queries

    public func statuses() -> [NodeStatus] { Self.statuses(order: order, slots: slots) }

    /// `statuses()` as of the last change, from any thread.
    public nonisolated var snapshot: [NodeStatus] { published.withLock { $0 } }

    private func publish() {
        let now = statuses()
        published.withLock { $0 = now }
    }

    private static func statuses(order: [NodeID], slots: [NodeID: Slot]) -> [NodeStatus] {
        order.compactMap { id in
            guard let s = slots[id] else { return nil }
            return NodeStatus(id: id, pid: s.child?.pid, state: s.state, port: s.config.port, restarts: s.restarts,
                              lastExit: s.lastExit, startedWallMs: s.child?.started.wallMs)
        }
    }

    public var readyCount: Int { slots.values.filter { $0.state.countsAsReady }.count }
    public var runningCount: Int { slots.values.filter { $0.child != nil }.count }
    public var total: Int { slots.count }
    public func contains(_ id: NodeID) -> Bool { slots[id] != nil }
    public func isRunning(_ id: NodeID) -> Bool { slots[id]?.child != nil }

    /// Waits (polling the table this actor owns) until the node's current process has exited.
    public func waitForExit(_ id: NodeID, generation: Int, timeoutMs: Int) async -> Bool {
        let deadline = monotonicNow() + Int64(timeoutMs) * 1_000_000
        while monotonicNow() < deadline {
            if slots[id]?.generation != generation || slots[id]?.child == nil { return true }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return slots[id]?.child == nil
    }

    // MARK: Reports

    private func handle(_ report: ChildReport) {
        switch report {
        case .probe(let n):
            probesAnswered.store(n, ordering: .releasing)
        case .started(let id, let generation, let child):
            register(id, generation: generation, child: child)
        case .notify(let id, let generation, let message, let stamp):
            guard slots[id]?.generation == generation else { return }
            handleNotify(id, message: message, at: stamp)
        case .output(let id, _, let line):
            log(id, line)
        case .exited(let id, let generation, let cause, let stamp):
            guard var slot = slots[id], slot.generation == generation, let child = slot.child else { return }
            close(child.pidfd)
            slot.child = nil
            slot.lastExit = cause
            let stoppedOnPurpose = slot.exitExpected != nil && slot.exitExpected != "exit caused by an injected fault"
            slot.state = stoppedOnPurpose ? .stopped : .exited
            var event = Event(kind: .nodeExited, runID: runID, node: id, at: stamp)
            event.pid = child.pid
            switch cause {
            case .exited(let code): event.exitCode = code
            case .signaled(let s): event.signal = SignalName.name(s)
            }
            let decision = slot.policy.decide(cause, injected: slot.exitExpected != nil, at: stamp.monoNs)
            if case .noRestart(let why) = decision { event.reason = slot.exitExpected ?? why }
            if case .giveUp(let why) = decision { event.reason = why }
            slots[id] = slot
            emit(event)
            if case .restart(let afterMs) = decision { scheduleRestart(id, afterMs: afterMs) }
        }
    }

    private func handleNotify(_ id: NodeID, message: String, at stamp: Stamp) {
        for line in message.split(separator: "\n") {
            if line == "READY=1" {
                if slots[id]?.state == .starting {
                    slots[id]?.state = .ready
                    var event = Event(kind: .nodeReady, runID: runID, node: id, at: stamp)
                    event.pid = slots[id]?.child?.pid
                    emit(event)
                }
            } else if line.hasPrefix("KV_EVENT=") {
                guard var event = try? Event.decode(jsonLine: line.dropFirst("KV_EVENT=".count)) else {
                    log(id, "unreadable event from node: \(line.prefix(200))")
                    continue
                }
                // Only the node's own observations are taken; lifecycle events are the supervisor's to say.
                guard [.suspect, .declaredDead, .declaredAlive, .leaderElected, .leaderLost, .writeAcked]
                        .contains(event.kind) else { continue }
                event.node = id
                event.runID = runID
                emit(event)
            }
        }
    }

    private func scheduleRestart(_ id: NodeID, afterMs: Int) {
        var event = Event(kind: .nodeRestartScheduled, runID: runID, node: id)
        event.restartInMs = afterMs
        emit(event)
        slots[id]?.pendingRestart = Task {
            try? await Task.sleep(for: .milliseconds(afterMs))
            guard !Task.isCancelled else { return }
            await self.restartAfterFailure(id)
        }
    }

    private func restartAfterFailure(_ id: NodeID) async {
        guard slots[id]?.child == nil else { return }
        slots[id]?.restarts += 1
        slots[id]?.pendingRestart = nil
        do { try await start(id) } catch { log(id, "restart failed: \(error)") }
    }
}
