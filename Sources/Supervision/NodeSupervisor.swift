import CLinux
import Core
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The one owner of the node processes. Every decision is `NodeTable`'s (a pure value); this
/// actor feeds it commands and child reports and carries out the effects it returns: spawning,
/// signalling through pidfds, timers, events. Nothing else holds a node's pid except through
/// `signalHandle(for:)`, which hands out a duplicated pidfd.
public actor NodeSupervisor {
    public typealias SpecBuilder = @Sendable (NodeConfig) -> ChildSpec

    private var table: NodeTable { didSet { publish() } }
    /// Each node's current process, with the generation it belongs to.
    private var children: [NodeID: (generation: Int, child: RunningChild)] = [:]
    /// The highest generation whose `RunningChild` has been taken (kept or, if its exit came
    /// first, closed): the spawn's return and the `.started` report deliver the same pidfd.
    private var takenGeneration: [NodeID: Int] = [:]
    private var restartTimers = NodeTimers()
    /// The SIGKILL-after-grace timer of each node being stopped, cancelled when its process is reaped.
    private var stopTimers = NodeTimers()
    private let notifySockets: [NodeID: NotifySocket]
    /// The node table as of the last change, readable without a hop onto this actor: read-only
    /// control calls answer from it on the socket's event loop.
    private let published = Mutex<[NodeStatus]>([])
    private let makeSpec: SpecBuilder
    private let emit: @Sendable (Event) -> Void
    private let log: @Sendable (NodeID, String) -> Void
    private let reports: AsyncStream<ChildReport>
    private let reportSink: AsyncStream<ChildReport>.Continuation
    private let probesSent = Atomic<UInt64>(0)
    private let probesAnswered = Atomic<UInt64>(0)

    public init(config: ClusterConfig, runtimeDir: String, runID: String, makeSpec: @escaping SpecBuilder,
                emit: @escaping @Sendable (Event) -> Void,
                log: @escaping @Sendable (NodeID, String) -> Void) throws(SupervisionError) {
        self.makeSpec = makeSpec
        self.emit = emit
        self.log = log
        (reports, reportSink) = AsyncStream.makeStream(of: ChildReport.self, bufferingPolicy: .unbounded)
        var sockets: [NodeID: NotifySocket] = [:]
        for node in config.nodes {
            sockets[node.id] = try NotifySocket(path: "\(runtimeDir)/notify-\(node.id).sock")
        }
        notifySockets = sockets
        table = NodeTable(config: config, runID: runID)
        let initial = table.statuses
        published.withLock { $0 = initial }
    }

    /// Consumes child reports until cancelled. Exactly one caller.
    public func run() async {
        for await report in reports {
            handle(report)
        }
    }

    /// Ends `run()` once the reports already sent are handled. Callable from anywhere: a graceful
    /// shutdown handler is synchronous.
    public nonisolated func shutdownReports() { reportSink.finish() }

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
        for id in table.order where table[id]?.pid == nil {
            try await start(id)
        }
    }

    /// Spawns the node; returns once its process is registered, or throws why it could not start.
    public func start(_ id: NodeID) async throws {
        try await perform(try table.step(.start(id), at: .now()))
    }

    /// Asks a node to stop (SIGCONT then SIGTERM through its pidfd), SIGKILL after the grace period.
    public func stop(_ id: NodeID, graceMs: Int) async throws {
        let generation = table[id]?.generation ?? 0
        try await perform(try table.step(.stop(id, .stopRequested, graceMs: graceMs), at: .now()))
        _ = await waitForExit(id, generation: generation, timeoutMs: graceMs + 5000)
    }

    public func restart(_ id: NodeID, graceMs: Int) async throws {
        try await stop(id, graceMs: graceMs)
        try await start(id)
    }

    /// Stops every node in parallel: SIGTERM all, SIGKILL each that outlives `graceMs`.
    public func stopAll(graceMs: Int) async {
        for id in table.order {
            if let effects = try? table.step(.stop(id, .supervisorStopping, graceMs: graceMs), at: .now()) {
                try? await perform(effects)
            }
        }
        let deadline = monotonicNow() + Int64(graceMs + 5000) * 1_000_000
        while table.hasProcesses && monotonicNow() < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        // The process exits next, and no deinit runs then: the sockets' files go now.
        for socket in notifySockets.values { socket.removeFile() }
    }

    /// A duplicate of the node's pidfd for a fault to signal through, with the generation it
    /// belongs to; marks the coming exit as expected when the fault ends the process. The caller
    /// closes the descriptor.
    public func signalHandle(for id: NodeID, endsProcess: Bool) throws -> (pid: Int32, pidfd: Int32, generation: Int) {
        guard let entry = table[id] else { throw SupervisionError.noSuchNode(id) }
        guard let (generation, child) = children[id], entry.pid == child.pid else { throw SupervisionError.notRunning(id) }
        if endsProcess { _ = try table.step(.faultWillEndProcess(id), at: .now()) }
        return (child.pid, dup(child.pidfd), generation)
    }

    /// A scheduled kill or term was cancelled: the node's next exit is its own again (a crash, to
    /// the restart policy), not the fault's.
    public func faultCancelled(_ id: NodeID) {
        _ = try? table.step(.faultWontEndProcess(id), at: .now())
    }

    /// A stop or cont fault's effect, seen from its thread, with the moment its signal was applied:
    /// the table keeps the change applied last, whatever order the effects were seen in.
    public nonisolated func notePaused(_ id: NodeID, generation: Int, paused: Bool, asOf: Stamp) {
        reportSink.yield(.paused(id, generation: generation, paused: paused, asOf: asOf))
    }

    public func applyConfig(_ new: ClusterConfig) {
        _ = try? table.step(.reconfigure(new), at: .now())
    }

    // MARK: Queries

    public func statuses() -> [NodeStatus] { table.statuses }

    /// `statuses()` as of the last change, from any thread.
    public nonisolated var snapshot: [NodeStatus] { published.withLock { $0 } }

    private func publish() {
        let now = table.statuses
        published.withLock { $0 = now }
    }

    public var readyCount: Int { table.readyCount }
    public var runningCount: Int { table.entries.values.filter { $0.pid != nil }.count }
    public var total: Int { table.order.count }
    public func contains(_ id: NodeID) -> Bool { table[id] != nil }
    public func isRunning(_ id: NodeID) -> Bool { table[id]?.pid != nil }

    /// Waits (polling the table this actor owns) until the node's process of `generation` is gone.
    public func waitForExit(_ id: NodeID, generation: Int, timeoutMs: Int) async -> Bool {
        let deadline = monotonicNow() + Int64(timeoutMs) * 1_000_000
        while monotonicNow() < deadline {
            if table[id]?.generation != generation || table[id]?.pid == nil { return true }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return table[id]?.pid == nil
    }

    // MARK: Reports and effects

    private func handle(_ report: ChildReport) {
        switch report {
        case .probe(let n):
            probesAnswered.store(n, ordering: .releasing)
        case .started(let id, let generation, let child):
            take(id, generation: generation, child: child)
        case .notify(let id, let generation, let message, let stamp):
            performNow(try? table.step(.notified(id, generation: generation, message: message), at: stamp))
        case .output(let id, _, let line):
            log(id, line)
        case .exited(let id, let generation, let cause, let stamp):
            performNow(try? table.step(.exited(id, generation: generation, cause: cause), at: stamp))
        case .paused(let id, let generation, let paused, let asOf):
            performNow(try? table.step(.pausedChanged(id, generation: generation, paused: paused), at: asOf))
        }
    }

    /// Registers a spawned child in the table, once per generation; a child whose generation is
    /// already closed (it exited first) only has its pidfd closed.
    private func take(_ id: NodeID, generation: Int, child: RunningChild) {
        guard generation > takenGeneration[id, default: 0] else { return }
        takenGeneration[id] = generation
        let effects = (try? table.step(.spawned(id, generation: generation, pid: child.pid), at: child.started)) ?? []
        if table[id]?.generation == generation, table[id]?.pid == child.pid {
            children[id] = (generation, child)
        } else {
            close(child.pidfd)
        }
        performNow(effects)
    }

    /// The effects of reports, which never include a spawn (only commands and restart timers
    /// spawn, through `perform`), carried out at once.
    private func performNow(_ effects: [NodeTable.Effect]?) {
        for effect in effects ?? [] { carryOut(effect) }
    }

    private func perform(_ effects: [NodeTable.Effect]) async throws {
        for effect in effects {
            guard case .spawn(let id, let generation) = effect else { carryOut(effect); continue }
            try await spawn(id, generation: generation)
        }
    }

    private func spawn(_ id: NodeID, generation: Int) async throws {
        guard let entry = table[id], let notify = notifySockets[id] else { return }
        var spec = makeSpec(entry.config)
        spec.environment += ["NOTIFY_SOCKET=\(notify.path)", "KVSUPERVISOR_PID=\(getpid())"]
        do {
            let child = try await ChildMonitor.launch(spec, generation: generation, notify: notify, reports: reportSink)
            // The `.started` report may have registered it already (this actor ran reports meanwhile).
            take(id, generation: generation, child: child)
        } catch {
            let reason = (error as? SupervisionError) ?? .system("spawn", EIO)
            performNow(try? table.step(.spawnFailed(id, generation: generation, reason: "\(reason)"), at: .now()))
            throw reason
        }
    }

    private func carryOut(_ effect: NodeTable.Effect) {
        switch effect {
        case .spawn:
            preconditionFailure("spawns are carried out by perform(_:)")
        case .signal(let id, let generation, let signal):
            if let (g, child) = children[id], g == generation { _ = kv_pidfd_send_signal(child.pidfd, signal) }
        case .armStopTimer(let id, let generation, let afterMs):
            stopTimers.armUnlessSooner(id, afterMs: afterMs) { await self.timerFired(.stopGraceExpired(id, generation: generation)) }
        case .scheduleRestart(let id, let token, let afterMs):
            restartTimers.arm(id, afterMs: afterMs) { await self.timerFired(.restartDue(id, token: token)) }
        case .cancelRestart(let id, _):
            restartTimers.cancel(id)
        case .release(let id, let generation):
            if let (g, child) = children[id], g == generation {
                close(child.pidfd)
                children[id] = nil
                stopTimers.cancel(id)
            }
        case .emit(let event):
            emit(event)
        case .log(let id, let line):
            log(id, line)
        }
    }

    private func timerFired(_ input: NodeTable.Input) async {
        guard let effects = try? table.step(input, at: .now()) else { return }
        do { try await perform(effects) } catch {
            if case .restartDue(let id, _) = input { log(id, "restart failed: \(error)") }
        }
    }
}
