import ConfigFile
import Core
import Events
import Experiments
import Synchronization
import TOML
#if canImport(Glibc)
import Glibc
#endif

public enum ExperimentError: Error, CustomStringConvertible {
    case busy(runID: String)
    case invalidSpec(ConfigError)
    case noSuchRun(String)
    case cannotResume(String)
    /// A valid spec of a kind this build does not run yet.
    case notRunnable(String)
    case io(String)

    public var description: String {
        switch self {
        case .busy(let id): return "experiment \(id) is running; one runs at a time (kvctl experiment cancel \(id) stops it)"
        case .invalidSpec(let e): return "\(e)"
        case .noSuchRun(let id): return "no experiment run '\(id)' (kvctl experiment list shows them)"
        case .cannotResume(let why): return why
        case .notRunnable(let why): return why
        case .io(let why): return why
        }
    }
}

/// The supervisor's experiments: one at a time, each in a run directory, resumable after the
/// supervisor died under it. Progress goes to whoever started or resumed the run.
public final class ExperimentManager: Sendable {
    /// The one run slot: claimed while the run directory is prepared, then held by the run's task
    /// until it has written its results.
    private enum Slot {
        /// `cancelled`: a cancel or the shutdown came meanwhile; the task starts cancelled.
        /// `waiters`: a shutdown waiting for the task, to await it.
        case preparing(runID: String, cancelled: Bool, waiters: [CheckedContinuation<Task<Void, Never>?, Never>])
        case running(runID: String, task: Task<Void, Never>, listeners: [AsyncStream<ControlProtocol.ExperimentUpdate>.Continuation])

        var runID: String {
            switch self {
            case .preparing(let id, _, _), .running(let id, _, _): return id
            }
        }
    }
    private let slot = Mutex<Slot?>(nil)
    /// Set by `stopForShutdown`: the run it stops ends "interrupted", not "cancelled".
    private let shuttingDown = Atomic<Bool>(false)
    private let environment: ExperimentEnvironment
    private let mainHub: EventHub

    public init(environment: ExperimentEnvironment, mainHub: EventHub) {
        self.environment = environment
        self.mainHub = mainHub
    }

    /// The run under way, if any: manual faults are refused while it runs.
    public var activeRunID: String? { slot.withLock { $0?.runID } }

    public func run(specText: String, file: String?) throws(ExperimentError) -> AsyncStream<ControlProtocol.ExperimentUpdate> {
        let spec: ExperimentSpec
        do { spec = try ExperimentSpecParser.parse(text: specText, file: file ?? "spec") } catch { throw .invalidSpec(error) }
        guard let sweep = spec.sweep else { throw Self.notYet(spec) }
        let plan = SweepPlan(sweep)
        let runID = RunIDs.make()
        return try begin(sweep, runID: runID) { () throws(ExperimentError) -> (RunDirectory, RunManifest, [TrialRecord]) in
            let manifest = RunManifest(runID: runID, kind: "detection-sweep", state: .running, createdWallMs: Stamp.now().wallMs,
                                       total: plan.trials.count, sessions: [])
            do {
                return (try RunDirectory.create(stateDir: environment.stateDir, runID: runID, specText: specText, manifest: manifest),
                        manifest, [])
            } catch { throw .io("\(error)") }
        }
    }

    public func resume(runID: String) throws(ExperimentError) -> AsyncStream<ControlProtocol.ExperimentUpdate> {
        guard let dir = RunDirectory.open(stateDir: environment.stateDir, runID: runID) else { throw .noSuchRun(runID) }
        let sweep: DetectionSweepSpec
        do { sweep = try Self.sweep(of: dir) } catch { throw .cannotResume("cannot read the run's spec: \(error)") }
        return try begin(sweep, runID: runID) { () throws(ExperimentError) -> (RunDirectory, RunManifest, [TrialRecord]) in
            do {
                let manifest = try dir.manifest()
                if manifest.state == .finished { throw ExperimentError.cannotResume("experiment \(runID) has finished; nothing to resume") }
                try dir.truncateTornTail()
                return (dir, manifest, try dir.trials())
            } catch let e as ExperimentError { throw e } catch { throw .io("\(error)") }
        }
    }

    /// The spec a run directory holds.
    private static func sweep(of dir: RunDirectory) throws -> DetectionSweepSpec {
        let spec = try ExperimentSpecParser.parse(text: try dir.read("spec.toml"), file: dir.path + "/spec.toml")
        guard let sweep = spec.sweep else { throw notYet(spec) }
        return sweep
    }

    private static func notYet(_ spec: ExperimentSpec) -> ExperimentError {
        .notRunnable("kind = \"\(spec.kind)\": the spec is valid, but this version of kvsupervisor runs only kind = \"detection-sweep\"")
    }

    /// Claims the one slot, prepares the run directory, and starts the run's task. Refused once
    /// the supervisor is stopping.
    private func begin(_ sweep: DetectionSweepSpec, runID: String,
                       prepare: () throws(ExperimentError) -> (RunDirectory, RunManifest, [TrialRecord]))
        throws(ExperimentError) -> AsyncStream<ControlProtocol.ExperimentUpdate> {
        let refusal = slot.withLock { s -> ExperimentError? in
            if let s { return .busy(runID: s.runID) }
            if shuttingDown.load(ordering: .sequentiallyConsistent) { return .io("the supervisor is stopping; no experiment starts now") }
            s = .preparing(runID: runID, cancelled: false, waiters: [])
            return nil
        }
        if let refusal { throw refusal }
        let prepared: (RunDirectory, RunManifest, [TrialRecord])
        do { prepared = try prepare() } catch {
            let waiters = slot.withLock { s -> [CheckedContinuation<Task<Void, Never>?, Never>] in
                defer { s = nil }
                if case .preparing(_, _, let w) = s { return w }
                return []
            }
            for w in waiters { w.resume(returning: nil) }
            throw error
        }
        let (dir, manifest, done) = prepared
        let (stream, sink) = AsyncStream.makeStream(of: ControlProtocol.ExperimentUpdate.self, bufferingPolicy: .bufferingNewest(64))
        // The task is made under the lock, so that the slot holds it (and its listener) before the
        // run can send an update or end: a run with nothing left to do ends at once.
        let (task, waiters) = slot.withLock { s -> (Task<Void, Never>, [CheckedContinuation<Task<Void, Never>?, Never>]) in
            guard case .preparing(_, let cancelled, let waiters) = s else { preconditionFailure("the run slot was taken from its owner") }
            let task = Task { [self] in await self.execute(sweep, directory: dir, manifest: manifest, done: done) }
            if cancelled { task.cancel() }
            s = .running(runID: dir.runID, task: task, listeners: [sink])
            return (task, waiters)
        }
        for w in waiters { w.resume(returning: task) }
        return stream
    }

    /// Cancels the run (the named one, or whichever runs); returns its id. A run still being
    /// prepared starts cancelled, and ends at once with what it had.
    public func cancel(runID: String?) throws(ExperimentError) -> String {
        let found = slot.withLock { s -> (String, Task<Void, Never>?)? in
            guard let current = s, runID == nil || runID == current.runID else { return nil }
            switch current {
            case .preparing(let id, _, let waiters):
                s = .preparing(runID: id, cancelled: true, waiters: waiters)
                return (id, nil)
            case .running(let id, let task, _):
                return (id, task)
            }
        }
        guard let (id, task) = found else {
            throw runID.map { .noSuchRun("\($0) (it is not running)") } ?? .noSuchRun("(none is running)")
        }
        task?.cancel()
        return id
    }

    /// Supervisor shutdown: no run starts from now on; the one under way (or being prepared) is
    /// cancelled and awaited while it writes what it has, and stays resumable.
    public func stopForShutdown() async {
        let task: Task<Void, Never>? = await withCheckedContinuation { c in
            let now = slot.withLock { s -> Task<Void, Never>?? in
                shuttingDown.store(true, ordering: .sequentiallyConsistent)
                switch s {
                case nil: return .some(nil)
                case .running(_, let task, _): return .some(task)
                case .preparing(let id, _, let waiters):
                    s = .preparing(runID: id, cancelled: true, waiters: waiters + [c])
                    return nil
                }
            }
            if let now { c.resume(returning: now) }
        }
        guard let task else { return }
        task.cancel()
        await task.value
    }

    private func send(_ update: ControlProtocol.ExperimentUpdate, final: Bool = false) {
        let listeners = slot.withLock { s -> [AsyncStream<ControlProtocol.ExperimentUpdate>.Continuation] in
            if case .running(_, _, let listeners) = s { return listeners }
            return []
        }
        for l in listeners {
            l.yield(update)
            if final { l.finish() }
        }
    }

    // MARK: The run

    private func execute(_ spec: DetectionSweepSpec, directory dir: RunDirectory, manifest start: RunManifest,
                         done: [TrialRecord]) async {
        var manifest = start
        let plan = SweepPlan(spec)
        let session = (manifest.sessions.map(\.number).max() ?? 0) + 1
        let began = Stamp.now()
        manifest.state = .running
        manifest.reason = nil
        manifest.sessions.append(.init(number: session, startedWallMs: began.wallMs, host: Self.hostname(), doneAtStart: done.count))
        try? dir.save(manifest)
        let updates = SessionUpdates(runID: dir.runID, directory: dir.path, session: session, plan: plan, began: began)

        let runHub: EventHub
        do { runHub = try EventHub(logPath: dir.path + "/events.jsonl", useJournal: false, echoToStderr: false) } catch {
            finish(&manifest, dir: dir, state: .failed, reason: "\(error)", spec: spec, plan: plan, records: done, updates: updates)
            return
        }
        // The run's events also go to the supervisor's log and journal (labels kept), so
        // `journalctl KV_EVENT=declared_dead` shows the experiment's detections.
        // Subscribed here, before the run can end: a subscription made after close would never end.
        let runEvents = runHub.subscribe(kinds: nil)
        let forward = Task { [mainHub] in
            for await e in runEvents { mainHub.publish(e, alreadyCorrelated: true) }
        }
        var started = Event(kind: .experimentStarted, runID: dir.runID)
        started.reason = "detection-sweep, session \(session), \(done.count) of \(plan.trials.count) trials done"
        started.path = dir.path
        runHub.publish(started)
        mainHub.log("experiment \(dir.runID): session \(session), \(plan.trials.count - done.count) trials to run in \(dir.path)")
        send(updates.progress(done: done.count, cell: 0, trial: nil, remainingMs: nil))

        let firstDone = done.count
        let durations = Mutex<[Double]>([])
        let sweep = SweepRun(
            spec: spec, plan: plan, directory: dir, hub: runHub, environment: environment, session: session,
            log: { [mainHub] node, line in mainHub.log(line, node: node) },
            progress: { [self] record, doneNow, cell in
                let mean = durations.withLock { d -> Double in d.append(record.durationMs); return d.reduce(0, +) / Double(d.count) }
                let left = Int64(mean * Double(plan.trials.count - doneNow))
                var e = Event(kind: .experimentProgress, runID: dir.runID)
                e.reason = "\(doneNow)/\(plan.trials.count) \(record.cell) trial \(record.index + 1): \(record.outcome.rawValue)"
                e.detectionLatencyMs = record.latencyMs
                runHub.publish(e)
                send(updates.progress(done: doneNow, cell: cell, trial: record, remainingMs: left))
            })
        var records = done
        var state = ControlProtocol.RunState.finished, reason: String?
        do {
            records += try await sweep.run(done: done)
        } catch {
            records = (try? dir.trials()) ?? records
            if error is SweepRun.Stop, shuttingDown.load(ordering: .sequentiallyConsistent) {
                state = .interrupted
                reason = "the supervisor stopped after \(records.count) of \(plan.trials.count) trials; kvctl experiment resume \(dir.runID) continues"
            } else if error is SweepRun.Stop {
                state = .cancelled
                reason = "cancelled after \(records.count) of \(plan.trials.count) trials (\(records.count - firstDone) in this session)"
            } else {
                state = .failed
                reason = "\(error)"
            }
        }
        var finished = Event(kind: .experimentFinished, runID: dir.runID)
        finished.reason = reason ?? "finished: \(records.count) trials"
        finished.path = dir.path
        runHub.publish(finished)
        runHub.close()
        // Closing the hub ends the forward's stream after what it holds: the run's last events reach the main log.
        await forward.value
        finish(&manifest, dir: dir, state: state, reason: reason, spec: spec, plan: plan, records: records, updates: updates)
    }

    private func finish(_ manifest: inout RunManifest, dir: RunDirectory, state: ControlProtocol.RunState, reason: String?, spec: DetectionSweepSpec,
                        plan: SweepPlan, records: [TrialRecord], updates: SessionUpdates) {
        manifest.state = manifest.state.ending(state)
        manifest.reason = reason
        if !manifest.sessions.isEmpty { manifest.sessions[manifest.sessions.count - 1].endedWallMs = Stamp.now().wallMs }
        var finalReason = reason
        let summary = SweepSummary(spec: spec, plan: plan, records: records)
        do {
            try dir.save(manifest)
            try SweepOutputs.write(to: dir, spec: spec, plan: plan, summary: summary, manifest: manifest)
        } catch {
            finalReason = [reason, "cannot write the run's files: \(error)"].compactMap { $0 }.joined(separator: "; ")
        }
        mainHub.log("experiment \(dir.runID) \(state.rawValue): \(records.count) of \(plan.trials.count) trials; \(dir.path)/report.html"
                    + (finalReason.map { " (\($0))" } ?? ""), priority: state == .failed ? 3 : 6)
        send(updates.last(state: state, records: records, results: summary.cells, reason: finalReason), final: true)
        slot.withLock { $0 = nil }
    }

    // MARK: Reading runs

    public func list() -> [ControlProtocol.ExperimentRun] {
        RunDirectory.list(stateDir: environment.stateDir).compactMap { id in
            guard let dir = RunDirectory.open(stateDir: environment.stateDir, runID: id) else { return nil }
            return try? summary(dir)
        }
    }

    public func detail(runID: String) throws(ExperimentError) -> ControlProtocol.ExperimentDetail {
        guard let dir = RunDirectory.open(stateDir: environment.stateDir, runID: runID) else { throw .noSuchRun(runID) }
        do {
            let run = try summary(dir)
            let spec = try Self.sweep(of: dir)
            return .init(run: run, results: SweepSummary(spec: spec, plan: SweepPlan(spec), records: try dir.trials()).cells,
                         report: (try? dir.read("report.md")) ?? "(no report yet: the run has not ended)\n")
        } catch let e as ExperimentError { throw e } catch { throw .io("\(error)") }
    }

    private func summary(_ dir: RunDirectory) throws -> ControlProtocol.ExperimentRun {
        let m = try dir.manifest()
        let done = (try? dir.trials().count) ?? 0
        // A run that says "running" but is not this process's is one a dead supervisor left.
        let state = m.state.asListed(activeHere: activeRunID == m.runID)
        return .init(runID: m.runID, kind: m.kind, state: state, createdWallMs: m.createdWallMs, sessions: m.sessions.count,
                     done: done, total: m.total, directory: dir.path)
    }

    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The replies of one session of a run: progress after each trial, then the last one.
private struct SessionUpdates: Sendable {
    let runID: String
    let directory: String
    let session: Int
    let plan: SweepPlan
    let began: Stamp

    func progress(done: Int, cell: Int, trial: TrialRecord?, remainingMs: Int64?) -> ControlProtocol.ExperimentUpdate {
        make(.running, done: done, cell: cell, trial: trial, remainingMs: remainingMs)
    }

    func last(state: ControlProtocol.RunState, records: [TrialRecord], results: [ControlProtocol.ExperimentCell], reason: String?)
        -> ControlProtocol.ExperimentUpdate {
        var u = make(state, done: records.count, cell: max(0, plan.cells.count - 1), trial: records.last, remainingMs: 0)
        u.results = results
        u.skipped = plan.skipped.map(\.description)
        u.reason = reason
        return u
    }

    private func make(_ state: ControlProtocol.RunState, done: Int, cell: Int, trial: TrialRecord?, remainingMs: Int64?) -> ControlProtocol.ExperimentUpdate {
        .init(runID: runID, state: state, session: session, done: done, total: plan.trials.count, cell: cell + 1,
              cells: plan.cells.count, cellLabel: cell < plan.cells.count ? plan.cells[cell].description : "",
              elapsedMs: (monotonicNow() - began.monoNs) / 1_000_000, remainingMs: remainingMs, directory: directory,
              lastTrial: trial.map { .init(tFail: $0.failWallMs, tDetect: $0.detectWallMs, detectionLatencyMs: $0.latencyMs,
                                           outcome: $0.outcome.rawValue) })
    }
}
