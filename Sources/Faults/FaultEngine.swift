import CLinux
import Core
import Synchronization
import Supervision
import Timing
#if canImport(Glibc)
import Glibc
#endif

/// Applies faults and accounts for them: requested, applied (right after the syscall returned or
/// the proxy switched) and effect (seen: pidfd readable, state T, first byte held or dropped).
/// Each fault runs on its own thread with 1 ns timer slack, and at SCHED_FIFO (when allowed) from
/// the last wait to the stamp after the syscall, so `after` lands within tens of µs.
public final class FaultEngine: Sendable {
    public struct Hooks: Sendable {
        public var emit: @Sendable (Event) -> Void
        /// Told the moment a fault is applied, before its effect: the correlator needs t_fail early.
        public var applied: @Sendable (FaultRecord) -> Void
        public var cleared: @Sendable (FaultRecord) -> Void
        public init(emit: @escaping @Sendable (Event) -> Void, applied: @escaping @Sendable (FaultRecord) -> Void,
                    cleared: @escaping @Sendable (FaultRecord) -> Void) {
            self.emit = emit; self.applied = applied; self.cleared = cleared
        }
    }

    public struct InjectResult: Sendable {
        public var faultID: String
        public var applied: Stamp?
    }

    private enum Target: Sendable {
        case process(pid: Int32, pidfd: Int32)
        case links([LinkProxy])
        case restart
    }

    private let supervisor: NodeSupervisor
    private let links: LinkTable
    private let runID: String
    private let effectDeadlineNs: Int64
    private let stopGraceMs: Int
    private let spinNs: Int64
    private let realtime: Realtime
    /// Why fault threads cannot have SCHED_FIFO (probed once at start), nil when they can.
    public let realtimeUnavailableReason: String?
    private let hooks: Hooks
    private let state = Mutex(EngineState())

    private struct EngineState {
        var counter = 0
        var active: [String: FaultRecord] = [:]
        var scheduled: Set<String> = []
    }

    public init(supervisor: NodeSupervisor, links: LinkTable, runID: String, effectDeadlineMs: Int,
                stopGraceMs: Int, timerSpinUs: Int, schedPriority: Int, hooks: Hooks) {
        self.supervisor = supervisor
        self.links = links
        self.runID = runID
        self.effectDeadlineNs = Int64(effectDeadlineMs) * 1_000_000
        self.stopGraceMs = stopGraceMs
        // A fault is a one-off, so its thread can afford the 2 ms spin that covers the p99 wake-up
        // lateness measured here, where nodes (waking every beat) keep theirs short.
        self.spinNs = max(Int64(timerSpinUs) * 1000, 2_000_000)
        // Probed once, so that a refused priority is not tried again on every fault's thread.
        let wanted = Realtime(priority: schedPriority)
        self.realtimeUnavailableReason = wanted.unavailableReason()
        self.realtime = realtimeUnavailableReason == nil ? wanted : Realtime(priority: 0)
        self.hooks = hooks
    }

    public var activeFaults: [FaultRecord] { state.withLock { Array($0.active.values) } }
    public var scheduledCount: Int { state.withLock { $0.scheduled.count } }

    /// Validates, resolves the target now, and applies at once or at `requested + after`.
    public func inject(_ spec: FaultSpec, requested: Stamp, knownNodes: Set<NodeID>) async throws(FaultError) -> InjectResult {
        if let problem = spec.problem(knownNodes: knownNodes) { throw .invalid(problem) }
        if spec.kind == .heal { throw .invalid("heal is not injected: use Heal") }
        let id = state.withLock { s -> String in
            s.counter += 1
            return "f\(s.counter)-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        }
        let target: Target
        switch spec.kind {
        case .kill, .stop, .cont, .term:
            do {
                let h = try await supervisor.signalHandle(for: spec.node, endsProcess: spec.kind == .kill || spec.kind == .term)
                target = .process(pid: h.pid, pidfd: h.pidfd)
            } catch {
                let current = await supervisor.statuses().first { $0.id == spec.node }
                throw .notRunning(spec.node, state: current?.state.rawValue ?? "unknown")
            }
        case .delay, .partition:
            target = .links(links.touching(spec.node, peers: spec.peers))
        case .restart:
            target = .restart
        case .heal:
            throw .invalid("heal is not injected")
        }
        var requestedEvent = Event(kind: .faultRequested, runID: runID, node: spec.node, at: requested)
        requestedEvent.faultID = id
        requestedEvent.fault = spec.kind
        requestedEvent.forMs = spec.forMs
        requestedEvent.delayMs = spec.delayMs
        hooks.emit(requestedEvent)

        if spec.kind == .restart {
            return InjectResult(faultID: id, applied: await restart(spec, id: id, requested: requested))
        }
        if spec.afterMs > 0 {
            state.withLock { _ = $0.scheduled.insert(id) }
            startThread(id: id, spec: spec, requested: requested, target: target, appliedOut: nil)
            return InjectResult(faultID: id, applied: nil)
        }
        let applied: Stamp? = await withCheckedContinuation { cont in
            startThread(id: id, spec: spec, requested: requested, target: target, appliedOut: { cont.resume(returning: $0) })
        }
        return InjectResult(faultID: id, applied: applied)
    }

    /// Ends network faults (all, or those touching `node`) and emits fault_cleared for each.
    public func heal(node: NodeID?) -> [String] {
        let healed = state.withLock { s -> [FaultRecord] in
            let matching = s.active.values.filter {
                $0.spec.kind.isNetwork && (node == nil || $0.affected.contains(node!))
            }
            for r in matching { s.active[r.id] = nil }
            return matching
        }
        for link in links.all where node == nil || link.from == node || link.to == node {
            link.setFault(.none)
        }
        for record in healed { clearedEvent(record, reason: "healed") }
        return healed.map(\.id)
    }

    // MARK: The fault thread

    private func startThread(id: String, spec: FaultSpec, requested: Stamp, target: Target,
                             appliedOut: (@Sendable (Stamp?) -> Void)?) {
        let engine = self
        startDetachedThread {
            PreciseClock.tightenTimerSlack()
            let outcome = engine.realtime.run {
                if spec.afterMs > 0 {
                    PreciseClock.wait(until: requested.monoNs + Int64(spec.afterMs) * 1_000_000, spinNs: engine.spinNs)
                }
                return engine.apply(spec, to: target)
            }
            if spec.afterMs > 0 { engine.state.withLock { _ = $0.scheduled.remove(id) } }
            engine.account(id: id, spec: spec, requested: requested, target: target, outcome: outcome, appliedOut: appliedOut)
        }
    }

    private enum Application {
        case applied(Stamp, tookNs: Int64, firstEffect: StampLatch?)
        case refused(String)
    }

    /// Only the syscall or the proxy switch and the stamp after it: this runs at the realtime priority.
    private func apply(_ spec: FaultSpec, to target: Target) -> Application {
        switch target {
        case .process(_, let pidfd):
            let signal: Int32 = switch spec.kind {
            case .kill: SIGKILL
            case .stop: SIGSTOP
            case .cont: SIGCONT
            default: SIGTERM
            }
            let start = monotonicNow()
            guard kv_pidfd_send_signal(pidfd, signal) == 0 else {
                let e = errno
                return .refused(e == ESRCH ? "the process exited before the fault was applied"
                                           : "pidfd_send_signal: \(String(cString: strerror(e)))")
            }
            let applied = Stamp.now()
            return .applied(applied, tookNs: applied.monoNs - start, firstEffect: nil)
        case .links(let proxies):
            let seen = StampLatch()
            let fault = spec.kind == .partition
                ? LinkFault(dropping: true)
                : LinkFault(delayNs: Int64(spec.delayMs ?? 0) * 1_000_000, jitterNs: Int64(spec.jitterMs ?? 0) * 1_000_000)
            let onEffect: @Sendable (Stamp) -> Void = { stamp in seen.set(stamp) }
            let start = monotonicNow()
            for link in proxies { link.setFault(fault, onFirstEffect: onEffect) }
            let applied = Stamp.now()
            return .applied(applied, tookNs: applied.monoNs - start, firstEffect: seen)
        case .restart:
            return .refused("restart is not applied on a fault thread")
        }
    }

    /// Records the application, waits for its effect, emits the events and, with `for_ms`, undoes it.
    private func account(id: String, spec: FaultSpec, requested: Stamp, target: Target, outcome: Application,
                         appliedOut: (@Sendable (Stamp?) -> Void)?) {
        defer { if case .process(_, let pidfd) = target { close(pidfd) } }
        guard case .applied(let applied, let tookNs, let firstEffect) = outcome else {
            if case .refused(let reason) = outcome {
                appliedOut?(nil)
                failed(id: id, spec: spec, requested: requested, applied: nil, reason: reason)
            }
            return
        }
        let effect: EffectOutcome
        switch target {
        case .process(let pid, let pidfd):
            let record = FaultRecord(id: id, spec: spec, affected: [spec.node], requested: requested, applied: applied)
            hooks.applied(record)
            appliedOut?(applied)
            effect = observeProcess(kind: spec.kind, pid: pid, pidfd: pidfd, from: applied.monoNs)
            if case .seen = effect {
                let sup = supervisor
                if spec.kind == .stop { Task { await sup.setPaused(spec.node, true) } }
                if spec.kind == .cont { Task { await sup.setPaused(spec.node, false) } }
            }
            if spec.kind == .stop { state.withLock { $0.active[id] = record } }
        case .links(let proxies):
            var affected = Set([spec.node])
            for link in proxies { affected.insert(link.from); affected.insert(link.to) }
            let record = FaultRecord(id: id, spec: spec, affected: affected.sorted(), requested: requested, applied: applied)
            state.withLock { $0.active[id] = record }
            hooks.applied(record)
            appliedOut?(applied)
            effect = waitFor(deadline: applied.monoNs + effectDeadlineNs) { firstEffect?.value }
                .map { .seen($0) } ?? .notSeen("no traffic crossed the node's links within \(effectDeadlineNs / 1_000_000) ms")
        case .restart:
            return
        }

        switch effect {
        case .seen(let seen):
            var event = faultEvent(.faultApplied, id: id, spec: spec, requested: requested)
            event.applied = applied
            event.applyNs = tookNs
            event.effect = seen
            hooks.emit(event)
        case .notSeen(let reason):
            failed(id: id, spec: spec, requested: requested, applied: applied, applyNs: tookNs, reason: reason)
        }

        guard let forMs = spec.forMs else { return }
        let ended: FaultRecord? = realtime.run {
            PreciseClock.wait(until: applied.monoNs + Int64(forMs) * 1_000_000, spinNs: spinNs)
            let record = state.withLock { $0.active.removeValue(forKey: id) }
            guard record != nil else { return nil }  // healed meanwhile
            switch target {
            case .process(_, let pidfd): _ = kv_pidfd_send_signal(pidfd, SIGCONT)
            case .links(let proxies): for link in proxies { link.setFault(.none) }
            case .restart: break
            }
            return record
        }
        guard let ended else { return }
        if case .process = target {
            let sup = supervisor
            Task { await sup.setPaused(spec.node, false) }
        }
        clearedEvent(ended, reason: "for_ms elapsed")
    }

    private func observeProcess(kind: FaultKind, pid: Int32, pidfd: Int32, from: MonotonicNanos) -> EffectOutcome {
        let deadline = from + effectDeadlineNs
        switch kind {
        case .kill, .term:
            var p = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(max(0, (deadline - monotonicNow()) / 1_000_000))
            if poll(&p, 1, ms) == 1 { return .seen(Stamp.now()) }
            return .notSeen("process \(pid) still running \(effectDeadlineNs / 1_000_000) ms after \(kind == .kill ? "SIGKILL" : "SIGTERM")")
        case .stop:
            return waitFor(deadline: deadline) { processState(pid).map { $0 == "T" || $0 == "t" } == true ? Stamp.now() : nil }
                .map { .seen($0) } ?? .notSeen("process \(pid) not in state T within \(effectDeadlineNs / 1_000_000) ms of SIGSTOP")
        default:
            return waitFor(deadline: deadline) {
                let s = processState(pid)
                return s != "T" && s != "t" ? Stamp.now() : nil
            }.map { .seen($0) } ?? .notSeen("process \(pid) still stopped \(effectDeadlineNs / 1_000_000) ms after SIGCONT")
        }
    }

    /// Polls `probe` every 100 µs until it yields or the deadline passes. Runs on the fault's own thread.
    private func waitFor(deadline: MonotonicNanos, _ probe: () -> Stamp?) -> Stamp? {
        while true {
            if let s = probe() { return s }
            if monotonicNow() >= deadline { return nil }
            usleep(100)
        }
    }

    private func restart(_ spec: FaultSpec, id: String, requested: Stamp) async -> Stamp? {
        let applied = Stamp.now()
        do {
            try await supervisor.restart(spec.node, graceMs: stopGraceMs)
        } catch {
            failed(id: id, spec: spec, requested: requested, applied: applied, reason: "\(error)")
            return nil
        }
        var event = faultEvent(.faultApplied, id: id, spec: spec, requested: requested)
        event.applied = applied
        event.effect = Stamp.now()
        hooks.emit(event)
        return applied
    }

    private func faultEvent(_ kind: EventKind, id: String, spec: FaultSpec, requested: Stamp) -> Event {
        var event = Event(kind: kind, runID: runID, node: spec.node)
        event.faultID = id
        event.fault = spec.kind
        event.requested = requested
        event.delayMs = spec.delayMs
        event.jitterMs = spec.jitterMs
        event.forMs = spec.forMs
        event.peers = spec.peers
        return event
    }

    private func failed(id: String, spec: FaultSpec, requested: Stamp, applied: Stamp?, applyNs: Int64? = nil,
                        reason: String) {
        state.withLock { _ = $0.active.removeValue(forKey: id) }
        var event = faultEvent(.faultFailed, id: id, spec: spec, requested: requested)
        event.applied = applied
        event.applyNs = applyNs
        event.reason = reason
        hooks.emit(event)
    }

    private func clearedEvent(_ record: FaultRecord, reason: String) {
        hooks.cleared(record)
        var event = faultEvent(.faultCleared, id: record.id, spec: record.spec, requested: record.requested)
        event.applied = record.applied
        event.reason = reason
        hooks.emit(event)
    }
}

/// The first moment something happened, set once from any thread.
final class StampLatch: Sendable {
    private let stamp = Mutex<Stamp?>(nil)
    func set(_ s: Stamp) { stamp.withLock { if $0 == nil { $0 = s } } }
    var value: Stamp? { stamp.withLock { $0 } }
}

/// Whether a fault's effect was seen, and when; or why not.
enum EffectOutcome {
    case seen(Stamp)
    case notSeen(String)
}
