import Core

/// Fault accounting as a pure value: each fault goes requested -> applied -> effect seen (or its
/// deadline passed) -> cleared, every step an `Input` with an explicit time, each returning the
/// `Effect`s to carry out. `FaultEngine`'s threads do the syscalls and the waiting; the ledger
/// decides what each moment means and which events say so. Scenario scripts drive it directly.
public struct FaultLedger: Sendable {
    /// requested -> (scheduled faults: due, when its thread has claimed it and cannot be cancelled)
    /// -> applied -> inForce (a stop, a network fault) or gone (a moment: kill, term, cont).
    public enum Phase: String, Sendable { case requested, due, applied, inForce }

    public struct Entry: Sendable, Equatable {
        public var id: String
        public var spec: FaultSpec
        public var affected: [NodeID]
        public var requested: Stamp
        public var applied: Stamp?
        public var applyNs: Int64?
        public var phase: Phase
        /// Its effect was seen (fault_applied emitted).
        public var effectSeen = false

        /// When a scheduled fault is to be applied.
        public var dueMonoNs: MonotonicNanos { requested.monoNs + Int64(spec.afterMs) * 1_000_000 }

        var record: FaultRecord? {
            applied.map { FaultRecord(id: id, spec: spec, affected: affected, requested: requested, applied: $0) }
        }
    }

    public enum Input: Sendable {
        case requested(id: String, spec: FaultSpec, affected: [NodeID])
        /// A scheduled fault's time came: its thread applies it now, so it can no longer be cancelled.
        case due(id: String)
        /// A scheduled fault taken back before its time (emits fault_cancelled).
        case cancel(id: String, reason: String)
        /// The syscall returned or the proxies switched (`at` is that moment), after `applyNs`.
        case applied(id: String, applyNs: Int64)
        /// Could not be applied (the process was gone, the syscall failed).
        case refused(id: String, reason: String)
        case effectSeen(id: String)
        case effectDeadlinePassed(id: String, reason: String)
        /// `for_ms` after the application.
        case undoDue(id: String)
        /// Ends network faults touching `node` (all with nil).
        case heal(node: NodeID?)
        /// The node's process exited (killed, stopped by the supervisor, restarted): a stop on it
        /// has nothing left to hold.
        case processEnded(node: NodeID, reason: String)
    }

    public enum Effect: Sendable, Equatable {
        case emit(Event)
        /// The correlator needs t_fail as soon as the fault is applied, before its effect.
        case correlateApplied(FaultRecord)
        case correlateCleared(FaultRecord)
        /// Watch for the effect until `deadlineMonoNs`, then feed `effectSeen` or `effectDeadlinePassed`.
        case watchEffect(id: String, deadlineMonoNs: MonotonicNanos)
        /// Feed `undoDue` at this moment.
        case armUndo(id: String, atMonoNs: MonotonicNanos)
        /// Take the fault back: SIGCONT a stopped process, or pass a link's bytes again.
        case undo(id: String)
        /// The node is paused (or not) as of `asOf`, when the signal that did it was applied.
        case setPaused(NodeID, Bool, asOf: Stamp)
        /// Every link touching `node` (all with nil) passes bytes unchanged again.
        case resetLinks(NodeID?)
    }

    public private(set) var entries: [String: Entry] = [:]
    private let runID: String
    private let effectDeadlineNs: Int64

    public init(runID: String, effectDeadlineMs: Int) {
        self.runID = runID
        self.effectDeadlineNs = Int64(effectDeadlineMs) * 1_000_000
    }

    /// Faults in force (a stop, a delay or partition), as ListFaults shows them.
    public var inForce: [FaultRecord] {
        entries.values.filter { $0.phase == .inForce }.compactMap(\.record).sorted { $0.applied.monoNs < $1.applied.monoNs }
    }
    /// Requested with `after_ms` and not yet applied, soonest first.
    public var scheduled: [Entry] {
        entries.values.filter { $0.phase == .requested && $0.spec.afterMs > 0 }
            .sorted { ($0.dueMonoNs, $0.id) < ($1.dueMonoNs, $1.id) }
    }
    public var scheduledCount: Int { scheduled.count }

    public mutating func step(_ input: Input, at now: Stamp) -> [Effect] {
        switch input {
        case .requested(let id, let spec, let affected):
            entries[id] = Entry(id: id, spec: spec, affected: affected, requested: now, phase: .requested)
            var event = event(.faultRequested, entries[id]!, at: now)
            event.requested = nil
            if spec.afterMs > 0 { event.afterMs = spec.afterMs }
            return [.emit(event)]

        case .due(let id):
            guard entries[id]?.phase == .requested else { return [] }
            entries[id]!.phase = .due
            return []

        case .cancel(let id, let reason):
            guard let e = entries[id], e.phase == .requested else { return [] }
            entries[id] = nil
            var event = event(.faultCancelled, e, at: now)
            event.reason = reason
            event.afterMs = e.spec.afterMs
            return [.emit(event)]

        case .applied(let id, let applyNs):
            guard var e = entries[id], e.phase == .requested || e.phase == .due else { return [] }
            e.applied = now
            e.applyNs = applyNs
            e.phase = .applied
            // A stop and the network faults stay in force until undone; kill, term and cont are moments.
            if e.spec.kind == .stop || e.spec.kind.isNetwork { e.phase = .inForce }
            entries[id] = e
            return [.correlateApplied(e.record!), .watchEffect(id: id, deadlineMonoNs: now.monoNs + effectDeadlineNs)]

        case .refused(let id, let reason):
            guard let e = entries.removeValue(forKey: id) else { return [] }
            var event = event(.faultFailed, e, at: now)
            event.reason = reason
            return [.emit(event)]

        case .effectSeen(let id):
            guard var e = entries[id], let applied = e.applied else { return [] }
            e.effectSeen = true
            entries[id] = e
            var event = event(.faultApplied, e, at: now)
            event.effect = now
            var effects: [Effect] = [.emit(event)]
            if e.spec.kind == .stop { effects.append(.setPaused(e.spec.node, true, asOf: applied)) }
            if e.spec.kind == .cont {
                effects.append(.setPaused(e.spec.node, false, asOf: applied))
                // The stops it continued are over (those applied before it; one applied after holds).
                effects += endStops(on: e.spec.node, appliedBefore: applied, reason: "continued by fault \(id)", at: now)
            }
            if e.phase == .inForce, let forMs = e.spec.forMs {
                effects.append(.armUndo(id: id, atMonoNs: applied.monoNs + Int64(forMs) * 1_000_000))
            }
            if e.phase != .inForce { entries[id] = nil }
            return effects

        case .effectDeadlinePassed(let id, let reason):
            guard let e = entries.removeValue(forKey: id) else { return [] }
            var event = event(.faultFailed, e, at: now)
            event.reason = reason
            var effects: [Effect] = [.emit(event)]
            // A link fault that nothing crossed is taken back, so that fault_failed means "not in force".
            if e.spec.kind.isNetwork {
                effects.insert(.undo(id: id), at: 0)
                if let r = e.record { effects.append(.correlateCleared(r)) }
            }
            return effects

        case .undoDue(let id):
            guard let e = entries[id], e.phase == .inForce, let record = e.record else { return [] }
            entries[id] = nil
            var effects: [Effect] = [.undo(id: id)]
            if e.spec.kind == .stop { effects.append(.setPaused(e.spec.node, false, asOf: now)) }
            return effects + cleared(e, record, reason: "for_ms elapsed", at: now)

        case .heal(let node):
            let healed = entries.values.filter {
                $0.phase == .inForce && $0.spec.kind.isNetwork && (node == nil || $0.affected.contains(node!))
            }.sorted { $0.id < $1.id }
            var effects: [Effect] = [.resetLinks(node)]
            for e in healed {
                entries[e.id] = nil
                effects += cleared(e, e.record!, reason: "healed", at: now)
            }
            return effects

        case .processEnded(let node, let reason):
            return endStops(on: node, appliedBefore: nil, reason: reason, at: now)
        }
    }

    /// Clears the stops in force on `node` (applied before `appliedBefore`, if given), oldest
    /// first. Only those whose effect was seen: one still being watched ends by its own account
    /// (applied, or failed at its deadline), so that every fault gets its applied-or-failed event.
    private mutating func endStops(on node: NodeID, appliedBefore: Stamp?, reason: String, at now: Stamp) -> [Effect] {
        let stops = entries.values.filter { e in
            e.spec.kind == .stop && e.spec.node == node && e.phase == .inForce && e.effectSeen
                && (appliedBefore.map { (e.applied?.monoNs ?? .max) < $0.monoNs } ?? true)
        }
            .sorted { ($0.applied?.monoNs ?? 0, $0.id) < ($1.applied?.monoNs ?? 0, $1.id) }
        var effects: [Effect] = []
        for e in stops {
            entries[e.id] = nil
            effects += cleared(e, e.record!, reason: reason, at: now)
        }
        return effects
    }

    private func cleared(_ e: Entry, _ record: FaultRecord, reason: String, at now: Stamp) -> [Effect] {
        var event = event(.faultCleared, e, at: now)
        event.reason = reason
        event.applyNs = nil
        return [.correlateCleared(record), .emit(event)]
    }

    private func event(_ kind: EventKind, _ e: Entry, at now: Stamp) -> Event {
        var event = Event(kind: kind, runID: runID, node: e.spec.node, at: now)
        event.faultID = e.id
        event.fault = e.spec.kind
        event.requested = e.requested
        event.applied = e.applied
        event.applyNs = e.applyNs
        event.delayMs = e.spec.delayMs
        event.jitterMs = e.spec.jitterMs
        event.forMs = e.spec.forMs
        event.peers = e.spec.peers
        event.direction = e.spec.direction
        event.term = e.spec.leaderTerm
        event.group = e.spec.leaderGroup
        return event
    }
}
