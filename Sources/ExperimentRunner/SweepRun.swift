import Core
import Events
import Experiments
import Faults

/// Carries out a detection sweep's remaining trials: a fresh cluster per cell; per trial the
/// fault at its planned phase after a heartbeat, the detection or a deadline, then recovery of
/// what the fault took down. Each finished trial is a synced row of `trials.csv` before the next.
struct SweepRun {
    let spec: DetectionSweepSpec
    let plan: SweepPlan
    let directory: RunDirectory
    /// The run's own hub: its events.jsonl, forwarded to the supervisor's log.
    let hub: EventHub
    let environment: ExperimentEnvironment
    /// Which session of the run this is (a resume starts the next one); recorded in each trial.
    let session: Int
    let log: @Sendable (NodeID?, String) -> Void
    let progress: @Sendable (TrialRecord, _ done: Int, _ cellIndex: Int) -> Void

    enum Stop: Error { case cancelled }
    struct TrialError: Error, CustomStringConvertible { var description: String }

    /// Runs every planned trial not in `done`; returns the trials it ran. Throws `Stop.cancelled`
    /// when the task is cancelled (checked between trials), with the rows so far already on disk.
    func run(done: [TrialRecord]) async throws -> [TrialRecord] {
        let finished = Set(done.map { TrialKey(cell: $0.cell, index: $0.index) })
        var ran: [TrialRecord] = []
        for (cellIndex, cell) in plan.cells.enumerated() {
            let todo = plan.trials.filter { $0.cell == cell && !finished.contains(TrialKey(cell: cell, index: $0.index)) }
            if todo.isEmpty { continue }
            try checkCancelled()
            var cluster: CellCluster
            do { cluster = try await CellCluster.start(cell: cell, run: self) } catch { throw Task.isCancelled ? Stop.cancelled : error }
            do {
                for trial in todo {
                    try checkCancelled()
                    let record: TrialRecord
                    do { record = try await cluster.run(trial) } catch let e as TrialError where !Task.isCancelled {
                        // A cluster that cannot recover is replaced; the trial runs again on the fresh one.
                        log(nil, "experiment \(directory.runID): \(cell): \(e); starting the cell's cluster afresh")
                        await cluster.shutdown()
                        cluster = try await CellCluster.start(cell: cell, run: self)
                        record = try await cluster.run(trial)
                    }
                    try directory.append(record)
                    ran.append(record)
                    progress(record, done.count + ran.count, cellIndex)
                }
            } catch {
                await cluster.shutdown()
                // A trial cut short by the cancel is not recorded: it runs again on resume.
                throw Task.isCancelled ? Stop.cancelled : error
            }
            await cluster.shutdown()
        }
        return ran
    }

    func checkCancelled() throws { if Task.isCancelled { throw Stop.cancelled } }

    struct TrialKey: Hashable { var cell: SweepPlan.Cell; var index: Int }
}

/// One cell's cluster and what the trials learn about it as they go.
private struct CellCluster {
    let cell: SweepPlan.Cell
    let run: SweepRun
    let cluster: ExperimentCluster
    let feed: EventFeed
    /// When an observer last heard the target, as told by an event a heartbeat caused (the
    /// observer's readiness, or its declaring the target alive): the phase is counted from there.
    var anchorMonoNs: MonotonicNanos

    var intervalNs: Int64 { Int64(cell.intervalMs) * 1_000_000 }

    /// How late the detector acted past its deadline, as the correlator computes it from the
    /// fixed timeout: meaningless for phi, whose deadline moves with what it has seen.
    func overshoot(_ e: Event?) -> Double? { cell.detector == .fixed ? e?.detectorOvershootMs : nil }
    var timeoutNs: Int64 { Int64(cell.timeoutMs) * 1_000_000 }
    /// How long after the fault a detection may come before the trial counts a miss: a fixed
    /// detector has T; phi's deadline stretches with the deviation it has seen, so it gets more.
    var missAfterNs: Int64 { (cell.detector == .fixed ? timeoutNs : 4 * timeoutNs) + intervalNs + 1_000_000_000 }
    /// How long nodes get to become ready, or a restarted one to be trusted again.
    var comeBackMs: Int { cell.timeoutMs + cell.intervalMs + 5000 }

    /// Injects `kind` on the target so that it lands at the monotonic moment `at` (at least 3 ms
    /// ahead, room for the fault thread to start and arm its wait): the engine waits `after_ms`
    /// from the requested stamp, so the stamp is set that many whole ms before `at`.
    func inject(_ kind: FaultKind, at: MonotonicNanos) async throws -> FaultEngine.InjectResult {
        let now = Stamp.now()
        let afterMs = Int((at - now.monoNs + 999_999) / 1_000_000)
        let requested = Stamp(wallMs: now.wallMs, monoNs: at - Int64(afterMs) * 1_000_000)
        do {
            return try await cluster.engine.inject(FaultSpec(kind: kind, node: cluster.target, afterMs: afterMs), requested: requested,
                                                   knownNodes: Set(cluster.nodes))
        } catch { throw SweepRun.TrialError(description: "cannot inject \(kind) on \(cluster.target): \(error)") }
    }

    /// A cluster whose nodes all became ready; a start that fails (a port taken between the
    /// check and the bind, say) is retried with new ports, twice.
    static func start(cell: SweepPlan.Cell, run: SweepRun) async throws -> CellCluster {
        var attempt = 1
        while true {
            do { return try await startOnce(cell: cell, run: run) } catch {
                if attempt == 3 || Task.isCancelled { throw error }
                run.log(nil, "experiment \(run.directory.runID): \(cell): \(error); trying again with new ports")
                attempt += 1
            }
        }
    }

    private static func startOnce(cell: SweepPlan.Cell, run: SweepRun) async throws -> CellCluster {
        let feed = EventFeed(run.hub.subscribe(kinds: nil))
        let cluster: ExperimentCluster
        do {
            cluster = try await ExperimentCluster.start(cell: cell, spec: run.spec, runID: run.directory.runID, hub: run.hub,
                                                        environment: run.environment, log: { node, line in run.log(node, line) })
        } catch { feed.close(); throw error }
        var c = CellCluster(cell: cell, run: run, cluster: cluster, feed: feed, anchorMonoNs: 0)
        do {
            try await cluster.startAll()
            var ready = Set<NodeID>()
            var anchor: MonotonicNanos = 0
            let all = await feed.wait(until: monotonicNow() + Int64(c.comeBackMs) * 1_000_000) { e in
                if e.kind == .nodeReady, let n = e.node {
                    ready.insert(n)
                    if cluster.observers.contains(n) { anchor = max(anchor, e.tMonoNs) }
                }
                return ready.count == cluster.nodes.count
            }
            guard all else {
                throw SweepRun.TrialError(description: "cell \(cell): \(ready.count) of \(cluster.nodes.count) nodes ready after \(c.comeBackMs) ms")
            }
            c.anchorMonoNs = anchor
        } catch {
            await c.shutdown()
            throw error
        }
        return c
    }

    func shutdown() async {
        feed.close()
        await cluster.shutdown(graceMs: 1000)
    }

    mutating func run(_ trial: SweepPlan.Trial) async throws -> TrialRecord {
        switch run.spec.fault {
        case .kill, .stop: return try await crashTrial(trial)
        case .delay: return try await delayTrial(trial)
        }
    }

    /// kill or stop at anchor + phase (+ whole intervals, to be in the future), detect, recover.
    mutating func crashTrial(_ trial: SweepPlan.Trial) async throws -> TrialRecord {
        let start = Stamp.now()
        let target = cluster.target
        let phaseNs = Int64(trial.phaseUs) * 1000
        var at = anchorMonoNs + phaseNs
        while at < start.monoNs + 3_000_000 { at += intervalNs }
        let kind: FaultKind = run.spec.fault == .kill ? .kill : .stop
        let injected = try await inject(kind, at: at)

        var applied: Stamp?
        var first: Event?
        var detectedBy = Set<NodeID>()
        var falsePositives = 0
        var failure: String?
        let observers = Set(cluster.observers)
        _ = await feed.wait(until: at + missAfterNs) { e in
            if e.faultID == injected.faultID && e.kind == .faultApplied { applied = e.applied }
            if e.faultID == injected.faultID && e.kind == .faultFailed { failure = e.reason ?? "fault failed" }
            if e.kind == .declaredDead {
                if e.peer == target && e.label == .trueDetection, let n = e.node, observers.contains(n) {
                    if first == nil { first = e }
                    detectedBy.insert(n)
                } else if e.label == .falseSuspicion, let n = e.node, observers.contains(n) {
                    // Only the observers' suspicions count: a node coming back from SIGSTOP finds
                    // its own deadlines long past, which is the pause, not the detector under test.
                    falsePositives += 1
                }
            }
            return failure != nil || detectedBy == observers
        }
        if let failure { throw SweepRun.TrialError(description: "\(kind) on \(target) failed: \(failure)") }
        guard let applied else { throw SweepRun.TrialError(description: "\(kind) on \(target) was not applied") }

        try await recover(target, from: kind)
        let end = monotonicNow()
        return TrialRecord(
            session: run.session, cell: cell, index: trial.index, fault: run.spec.fault, phasePlannedMs: Double(phaseNs) / 1e6,
            phaseObservedMs: first?.lastHeardMonoNs.map { Double(applied.monoNs - $0) / 1e6 }, startWallMs: start.wallMs,
            failWallMs: applied.wallMs, failMonoNs: applied.monoNs, detectWallMs: first?.tWallMs, detectMonoNs: first?.tMonoNs,
            latencyMs: first?.detectionLatencyMs, overshootMs: overshoot(first),
            outcome: first == nil ? .missed : .detected, falsePositives: falsePositives,
            durationMs: Double(end - start.monoNs) / 1e6)
    }

    /// Brings back what the fault took down and waits until every observer trusts it again; the
    /// last of those heartbeats is the next trial's anchor.
    mutating func recover(_ target: NodeID, from kind: FaultKind) async throws {
        if kind == .kill {
            do { try await cluster.supervisor.start(target) } catch {
                throw SweepRun.TrialError(description: "cannot restart \(target): \(error)")
            }
        } else {
            do { _ = try await cluster.engine.inject(FaultSpec(kind: .cont, node: target), requested: .now(), knownNodes: Set(cluster.nodes)) }
            catch { throw SweepRun.TrialError(description: "cannot continue \(target): \(error)") }
        }
        // Trusted again means its heartbeats arrive; its own readiness (hearing the others) is not
        // needed for the next fault, and waiting for it would push the anchor back by up to I.
        var trusting = Set<NodeID>()
        var anchor = anchorMonoNs
        let observers = Set(cluster.observers)
        let back = await feed.wait(until: monotonicNow() + Int64(comeBackMs) * 1_000_000) { e in
            if e.kind == .declaredAlive, e.peer == target, let n = e.node, observers.contains(n) {
                trusting.insert(n)
                anchor = max(anchor, e.tMonoNs)
            }
            return trusting == observers
        }
        guard back else {
            throw SweepRun.TrialError(description: "\(target) did not come back within \(comeBackMs) ms "
                                      + "(\(trusting.count) of \(observers.count) observers trust it)")
        }
        anchorMonoNs = anchor
    }

    /// A window of delay (and jitter) on the target's links: every suspicion in it is a mistake.
    /// Then, under the same delay, a kill at the planned phase: its detection latency is the other
    /// axis of the trade-off. Then recovery, and the delay is healed.
    mutating func delayTrial(_ trial: SweepPlan.Trial) async throws -> TrialRecord {
        let start = Stamp.now()
        let target = cluster.target
        let known = Set(cluster.nodes)
        let window = run.spec.windowMs
        let injected: FaultEngine.InjectResult
        do {
            injected = try await cluster.engine.inject(
                FaultSpec(kind: .delay, node: target, delayMs: run.spec.delayMs, jitterMs: run.spec.jitterMs > 0 ? run.spec.jitterMs : nil),
                requested: start, knownNodes: known)
        } catch { throw SweepRun.TrialError(description: "cannot delay \(target)'s links: \(error)") }
        guard let applied = injected.applied else { throw SweepRun.TrialError(description: "delay on \(target) was not applied") }
        defer { _ = cluster.engine.heal(node: target) }
        let windowEnd = applied.monoNs + Int64(window) * 1_000_000
        var open: [NodeID: MonotonicNanos] = [:]
        var suspicions: [(start: Int64, end: Int64?)] = []
        let observers = Set(cluster.observers)
        _ = await feed.wait(until: windowEnd) { e in
            guard e.peer == target, let n = e.node, observers.contains(n) else { return false }
            if e.kind == .declaredDead, open[n] == nil { open[n] = e.tMonoNs }
            if e.kind == .declaredAlive, let s = open.removeValue(forKey: n) { suspicions.append((s, e.tMonoNs)) }
            return false
        }
        // Suspicions still open at the window's end count up to it; wait for them to end before the kill.
        let quality = DetectorQuality(suspicions: suspicions + open.values.map { ($0, nil) }, from: applied.monoNs, to: windowEnd)
        var stillOpen = Set(open.keys)
        if !stillOpen.isEmpty {
            let settle = monotonicNow() + Int64(cell.timeoutMs + cell.intervalMs + 2 * run.spec.delayMs + 5000) * 1_000_000
            _ = await feed.wait(until: settle) { e in
                if e.kind == .declaredAlive, e.peer == target, let n = e.node { stillOpen.remove(n) }
                return stillOpen.isEmpty
            }
            if !stillOpen.isEmpty { throw SweepRun.TrialError(description: "\(target) still suspected after the delay window") }
        }

        let at = monotonicNow() + 3_000_000 + Int64(trial.phaseUs) * 1000
        let kill = try await inject(.kill, at: at)
        var killed: Stamp?
        var first: Event?
        var suspecting = Set<NodeID>()
        func watch(_ e: Event) -> Bool {
            if e.faultID == kill.faultID && e.kind == .faultApplied { killed = e.applied }
            guard e.peer == target, let n = e.node, observers.contains(n) else { return false }
            if e.kind == .declaredDead && e.label == .trueDetection && first == nil { first = e; return true }
            if e.kind == .declaredDead { suspecting.insert(n) } else if e.kind == .declaredAlive { suspecting.remove(n) }
            return false
        }
        // Beats sent before the kill arrive up to delay + jitter after it. An observer that
        // suspects the target then and hears nothing more had detected the crash when it happened
        // (Chen et al.'s T_D = 0): it never declares it dead again.
        let inFlightNs = Int64(run.spec.delayMs + run.spec.jitterMs + 50) * 1_000_000
        _ = await feed.wait(until: at + inFlightNs) { watch($0) }
        var preSuspected = false
        if first == nil, killed != nil, !suspecting.isEmpty { preSuspected = true } else if first == nil {
            _ = await feed.wait(until: at + missAfterNs + Int64(2 * run.spec.delayMs) * 1_000_000) { watch($0) }
        }
        guard let killed else { throw SweepRun.TrialError(description: "kill on \(target) under delay was not applied") }
        try await recover(target, from: .kill)
        let end = monotonicNow()
        return TrialRecord(
            session: run.session, cell: cell, index: trial.index, fault: .delay, phasePlannedMs: Double(trial.phaseUs) / 1000,
            startWallMs: start.wallMs, failWallMs: killed.wallMs, failMonoNs: killed.monoNs,
            detectWallMs: preSuspected ? killed.wallMs : first?.tWallMs, detectMonoNs: preSuspected ? killed.monoNs : first?.tMonoNs,
            latencyMs: preSuspected ? 0 : first?.detectionLatencyMs, overshootMs: overshoot(first),
            outcome: first == nil && !preSuspected ? .missed : .detected, mistakes: quality.mistakes,
            suspectedMs: (quality.meanDurationMs ?? 0) * Double(quality.mistakes),
            windowMs: Double(window * observers.count), durationMs: Double(end - start.monoNs) / 1e6)
    }
}
