import CLinux
import Core
import Synchronization
import Supervision
import Timing
#if canImport(Glibc)
import Glibc
#endif

/// Applies faults: resolves the target, does the syscall or proxy switch, watches for the effect
/// (pidfd readable, state T, first byte held or dropped) and undoes it after `for_ms`. What each of
/// those moments means (events, what is in force) is `FaultLedger`'s, a pure value.
/// Each fault runs on its own thread with 1 ns timer slack, and at SCHED_FIFO (when allowed) from
/// the last wait to the stamp after the syscall, so `after` lands within tens of µs.
public final class FaultEngine: Sendable {
    public struct Hooks: Sendable {
        public var emit: @Sendable (Event) -> Void
        /// Told on the fault's thread just before the syscall, proxy switch or restart (the record
        /// stamped then): the correlator must know the fault before anything it causes.
        public var applying: @Sendable (FaultRecord) -> Void
        /// Told the moment a fault is applied, with the stamp after its syscall.
        public var applied: @Sendable (FaultRecord) -> Void
        /// A fault told by `applying` that was refused after all.
        public var withdrawn: @Sendable (_ id: String) -> Void
        public var cleared: @Sendable (FaultRecord) -> Void
        public init(emit: @escaping @Sendable (Event) -> Void, applying: @escaping @Sendable (FaultRecord) -> Void,
                    applied: @escaping @Sendable (FaultRecord) -> Void, withdrawn: @escaping @Sendable (String) -> Void,
                    cleared: @escaping @Sendable (FaultRecord) -> Void) {
            self.emit = emit; self.applying = applying; self.applied = applied; self.withdrawn = withdrawn; self.cleared = cleared
        }
    }

    public struct InjectResult: Sendable {
        public var faultID: String
        public var applied: Stamp?
    }

    private enum Target: Sendable {
        case process(pid: Int32, pidfd: Int32, generation: Int)
        case links([LinkProxy])
        case restart
    }

    private let supervisor: NodeSupervisor
    private let links: LinkTable
    /// Read at each restart fault: a reload may change it.
    private let stopGraceMs: Atomic<Int>
    private let spinNs: Int64
    private let realtime: Realtime
    /// Why fault threads cannot have SCHED_FIFO (probed once at start), nil when they can.
    public let realtimeUnavailableReason: String?
    private let hooks: Hooks
    private let ledger: Mutex<FaultLedger>
    private let counter = Atomic<Int>(0)
    /// Each network fault's own links, so that ending it (a heal of one node included) resets
    /// exactly those: a one-way or peers-only fault's links need not all touch the healed node.
    private let faultLinks = Mutex<[String: [LinkProxy]]>([:])

    public init(supervisor: NodeSupervisor, links: LinkTable, runID: String, effectDeadlineMs: Int,
                stopGraceMs: Int, timerSpinUs: Int, schedPriority: Int, hooks: Hooks) {
        self.supervisor = supervisor
        self.links = links
        self.ledger = Mutex(FaultLedger(runID: runID, effectDeadlineMs: effectDeadlineMs))
        self.stopGraceMs = Atomic(stopGraceMs)
        // A fault is a one-off, so its thread can afford the 2 ms spin that covers the p99 wake-up
        // lateness measured here, where nodes (waking every beat) keep theirs short.
        self.spinNs = max(Int64(timerSpinUs) * 1000, 2_000_000)
        // Probed once, so that a refused priority is not tried again on every fault's thread.
        let wanted = Realtime(priority: schedPriority)
        self.realtimeUnavailableReason = wanted.unavailableReason()
        self.realtime = realtimeUnavailableReason == nil ? wanted : Realtime(priority: 0)
        self.hooks = hooks
    }

    public var activeFaults: [FaultRecord] { ledger.withLock { $0.inForce } }
    public var scheduledCount: Int { ledger.withLock { $0.scheduledCount } }
    /// A reload changed `stop_grace_ms`: restart faults use the new grace from now on.
    public func setStopGrace(ms: Int) { stopGraceMs.store(ms, ordering: .relaxed) }

    /// Faults requested with `after` whose time has not come, soonest first.
    public var scheduledFaults: [FaultLedger.Entry] { ledger.withLock { $0.scheduled } }

    /// Takes a scheduled fault back before its time; its thread then applies nothing.
    /// Returns the fault taken back, and whether another fault that ends the process is still
    /// pending on its node (so the node's exit stays expected).
    @discardableResult
    public func cancel(_ id: String, reason: String = "cancelled by request") throws(FaultError)
        -> (spec: FaultSpec, anotherEndsProcess: Bool) {
        let outcome = ledger.withLock { l -> Result<([FaultLedger.Effect], FaultSpec, Bool), FaultError> in
            guard let e = l.entries[id] else { return .failure(.noSuchFault(id, why: "no scheduled fault has that id")) }
            guard e.phase == .requested, e.spec.afterMs > 0 else {
                return .failure(.noSuchFault(id, why: e.phase == .due ? "it is being applied now" : "it was already applied"))
            }
            let effects = l.step(.cancel(id: id, reason: reason), at: .now())
            let another = l.entries.values.contains {
                $0.spec.node == e.spec.node && ($0.spec.kind == .kill || $0.spec.kind == .term) && $0.applied == nil
            }
            return .success((effects, e.spec, another))
        }
        let (effects, spec, another) = try outcome.get()
        faultLinks.withLock { _ = $0.removeValue(forKey: id) }
        perform(effects, target: nil)
        return (spec, another)
    }

    /// Validates, resolves the target now, and applies at once or at `requested + after`.
    public func inject(_ spec: FaultSpec, requested: Stamp, knownNodes: Set<NodeID>) async throws(FaultError) -> InjectResult {
        if let problem = spec.problem(knownNodes: knownNodes) { throw .invalid(problem) }
        if spec.kind == .heal { throw .invalid("heal is not injected: use Heal") }
        let id = "f\(counter.add(1, ordering: .relaxed).newValue)-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        let target: Target
        var affected = Set([spec.node])
        switch spec.kind {
        case .kill, .stop, .cont, .term:
            do {
                let h = try await supervisor.signalHandle(for: spec.node, endsProcess: spec.kind == .kill || spec.kind == .term)
                target = .process(pid: h.pid, pidfd: h.pidfd, generation: h.generation)
            } catch {
                let current = await supervisor.statuses().first { $0.id == spec.node }
                throw .notRunning(spec.node, state: current?.state.rawValue ?? "unknown")
            }
        case .delay, .partition:
            let proxies = links.touching(spec.node, peers: spec.peers, direction: spec.direction)
            for link in proxies { affected.insert(link.from); affected.insert(link.to) }
            target = .links(proxies)
        case .restart:
            target = .restart
        case .heal:
            throw .invalid("heal is not injected")
        }
        if case .links(let proxies) = target { faultLinks.withLock { $0[id] = proxies } }
        step(.requested(id: id, spec: spec, affected: affected.sorted()), at: requested, target: target)

        if spec.kind == .restart {
            switch await restart(FaultRecord(id: id, spec: spec, affected: affected.sorted(), requested: requested,
                                             applied: requested)) {
            case .success(let applied): return InjectResult(faultID: id, applied: applied)
            case .failure(let why): throw .invalid("restart of \(spec.node) failed: \(why)")
            }
        }
        let record = FaultRecord(id: id, spec: spec, affected: affected.sorted(), requested: requested, applied: requested)
        if spec.afterMs > 0 {
            startThread(record, target: target, appliedOut: nil)
            return InjectResult(faultID: id, applied: nil)
        }
        let applied: Stamp? = await withCheckedContinuation { cont in
            startThread(record, target: target, appliedOut: { cont.resume(returning: $0) })
        }
        return InjectResult(faultID: id, applied: applied)
    }

    /// `node`'s process exited: the stops on it end, each with a fault_cleared that says why.
    public func processEnded(_ node: NodeID, reason: String) {
        step(.processEnded(node: node, reason: reason), at: .now(), target: nil)
    }

    /// Ends network faults (all, or those touching `node`) and emits fault_cleared for each.
    public func heal(node: NodeID?) -> [String] {
        let effects = ledger.withLock { $0.step(.heal(node: node), at: .now()) }
        perform(effects, target: nil)
        return effects.compactMap { if case .correlateCleared(let r) = $0 { return r.id } else { return nil } }
    }

    // MARK: Ledger and effects

    /// Steps the ledger under its lock, then carries the effects out after it (events take the hub's lock).
    @discardableResult
    private func step(_ input: FaultLedger.Input, at now: Stamp, target: Target?) -> [FaultLedger.Effect] {
        let effects = ledger.withLock { $0.step(input, at: now) }
        perform(effects, target: target)
        return effects
    }

    private func perform(_ effects: [FaultLedger.Effect], target: Target?) {
        for effect in effects {
            switch effect {
            case .emit(let event): hooks.emit(event)
            case .correlateApplied(let record): hooks.applied(record)
            case .correlateCleared(let record):
                if let proxies = faultLinks.withLock({ $0.removeValue(forKey: record.id) }) {
                    for link in proxies { link.setFault(.none) }
                }
                hooks.cleared(record)
            case .undo: undo(target)
            case .setPaused(let node, let paused, let asOf):
                if case .process(_, _, let generation) = target {
                    supervisor.notePaused(node, generation: generation, paused: paused, asOf: asOf)
                }
            case .resetLinks(let node):
                for link in links.all where node == nil || link.from == node || link.to == node { link.setFault(.none) }
            case .watchEffect, .armUndo:
                break  // the fault's own thread waits for these (see `account`)
            }
        }
    }

    private func undo(_ target: Target?) {
        switch target {
        case .process(_, let pidfd, _): _ = kv_pidfd_send_signal(pidfd, SIGCONT)
        case .links(let proxies): for link in proxies { link.setFault(.none) }
        case .restart, nil: break
        }
    }

    // MARK: The fault thread

    /// `record` as requested: its `applied` is stamped on the thread.
    private func startThread(_ record: FaultRecord, target: Target, appliedOut: (@Sendable (Stamp?) -> Void)?) {
        let engine = self
        let (id, spec, requested) = (record.id, record.spec, record.requested)
        startDetachedThread {
            PreciseClock.tightenTimerSlack()
            let due = requested.monoNs + Int64(spec.afterMs) * 1_000_000
            if spec.afterMs > 0 && !engine.waitUnlessCancelled(id: id, until: due) {
                if case .process(_, let pidfd, _) = target { close(pidfd) }
                return
            }
            let outcome: Application? = engine.realtime.run {
                if spec.afterMs > 0 {
                    PreciseClock.wait(until: due, spinNs: engine.spinNs)
                    // Claimed under the ledger's lock: from here a cancel is refused, before that this applies nothing.
                    guard engine.ledger.withLock({ _ = $0.step(.due(id: id), at: .now()); return $0.entries[id]?.phase == .due }) else {
                        return nil
                    }
                }
                var told = record
                told.applied = .now()
                engine.hooks.applying(told)
                return engine.apply(spec, to: target)
            }
            guard let outcome else {
                if case .process(_, let pidfd, _) = target { close(pidfd) }
                return
            }
            engine.account(id: id, spec: spec, target: target, outcome: outcome, appliedOut: appliedOut)
        }
    }

    /// Sleeps in slices until 50 ms before `due`, looking for a cancel between them; false if cancelled.
    private func waitUnlessCancelled(id: String, until due: MonotonicNanos) -> Bool {
        while true {
            guard ledger.withLock({ $0.entries[id]?.phase == .requested }) else { return false }
            let left = due - monotonicNow()
            if left <= 50_000_000 { return true }
            usleep(useconds_t(min(left - 50_000_000, 100_000_000) / 1000))
        }
    }

    private enum Application {
        case applied(Stamp, tookNs: Int64, firstEffect: StampLatch?)
        case refused(String)
    }

    /// Only the syscall or the proxy switch and the stamp after it: this runs at the realtime priority.
    private func apply(_ spec: FaultSpec, to target: Target) -> Application {
        switch target {
        case .process(_, let pidfd, _):
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

    /// Tells the ledger what happened, waits for what it asks to be watched, and undoes the fault
    /// when it says so. Runs on the fault's own thread.
    private func account(id: String, spec: FaultSpec, target: Target, outcome: Application,
                         appliedOut: (@Sendable (Stamp?) -> Void)?) {
        defer { if case .process(_, let pidfd, _) = target { close(pidfd) } }
        guard case .applied(let applied, let tookNs, let firstEffect) = outcome else {
            if case .refused(let reason) = outcome {
                faultLinks.withLock { _ = $0.removeValue(forKey: id) }
                hooks.withdrawn(id)
                appliedOut?(nil)
                step(.refused(id: id, reason: reason), at: .now(), target: target)
            }
            return
        }
        let effects = step(.applied(id: id, applyNs: tookNs), at: applied, target: target)
        appliedOut?(applied)
        guard let deadline = effects.lazy.compactMap({ e -> MonotonicNanos? in
            if case .watchEffect(_, let d) = e { return d } else { return nil }
        }).first else { return }

        let observed: EffectOutcome
        switch target {
        case .process(let pid, let pidfd, _):
            observed = observeProcess(kind: spec.kind, pid: pid, pidfd: pidfd, deadline: deadline)
        case .links:
            observed = waitFor(deadline: deadline) { firstEffect?.value }.map { .seen($0) }
                ?? .notSeen("no traffic crossed the node's links within \((deadline - applied.monoNs) / 1_000_000) ms")
        case .restart:
            return
        }
        let next: [FaultLedger.Effect]
        switch observed {
        case .seen(let at): next = step(.effectSeen(id: id), at: at, target: target)
        case .notSeen(let reason): next = step(.effectDeadlinePassed(id: id, reason: reason), at: .now(), target: target)
        }

        guard let undoAt = next.lazy.compactMap({ e -> MonotonicNanos? in
            if case .armUndo(_, let at) = e { return at } else { return nil }
        }).first else { return }
        // The undo's syscall runs at the realtime priority too; the ledger says whether it is still
        // due (a heal may have ended the fault meanwhile).
        let due: [FaultLedger.Effect] = realtime.run {
            PreciseClock.wait(until: undoAt, spinNs: spinNs)
            let effects = ledger.withLock { $0.step(.undoDue(id: id), at: .now()) }
            if effects.contains(.undo(id: id)) { undo(target) }
            return effects
        }
        perform(due.filter { $0 != .undo(id: id) }, target: target)
    }

    private func observeProcess(kind: FaultKind, pid: Int32, pidfd: Int32, deadline: MonotonicNanos) -> EffectOutcome {
        let window = "\(max(0, deadline - monotonicNow()) / 1_000_000) ms"
        switch kind {
        case .kill, .term:
            var p = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(max(0, (deadline - monotonicNow()) / 1_000_000))
            if poll(&p, 1, ms) == 1 { return .seen(Stamp.now()) }
            return .notSeen("process \(pid) still running \(window) after \(kind == .kill ? "SIGKILL" : "SIGTERM")")
        case .stop:
            return waitFor(deadline: deadline) { processState(pid).map { $0 == "T" || $0 == "t" } == true ? Stamp.now() : nil }
                .map { .seen($0) } ?? .notSeen("process \(pid) not in state T within \(window) of SIGSTOP")
        default:
            return waitFor(deadline: deadline) {
                let s = processState(pid)
                return s != "T" && s != "t" ? Stamp.now() : nil
            }.map { .seen($0) } ?? .notSeen("process \(pid) still stopped \(window) after SIGCONT")
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

    private struct RestartFailure: Error { var reason: String }

    private func restart(_ requested: FaultRecord) async -> Result<Stamp, RestartFailure> {
        let (id, spec) = (requested.id, requested.spec)
        var told = requested
        told.applied = .now()
        let applied = told.applied
        // The stop inside takes the grace period: the node's exit and the election it starts come first.
        hooks.applying(told)
        do {
            try await supervisor.restart(spec.node, graceMs: stopGraceMs.load(ordering: .relaxed))
        } catch {
            hooks.withdrawn(id)
            step(.refused(id: id, reason: "\(error)"), at: .now(), target: .restart)
            return .failure(RestartFailure(reason: "\(error)"))
        }
        step(.applied(id: id, applyNs: 0), at: applied, target: .restart)
        step(.effectSeen(id: id), at: .now(), target: .restart)
        return .success(applied)
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
