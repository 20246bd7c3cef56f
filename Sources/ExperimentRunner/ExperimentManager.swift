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
    case io(String)

    public var description: String {
        switch self {
        case .busy(let id): return "experiment \(id) is running; one runs at a time (kvctl experiment cancel \(id) stops it)"
        case .invalidSpec(let e): return "\(e)"
        case .noSuchRun(let id): return "no experiment run '\(id)' (kvctl experiment list shows them)"
        case .cannotResume(let why): return why
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
        let program = RunProgram(spec)
        let runID = RunIDs.make()
        return try begin(program, runID: runID) { () throws(ExperimentError) -> (RunDirectory, RunManifest) in
            let manifest = RunManifest(runID: runID, kind: spec.kind, state: .running, createdWallMs: Stamp.now().wallMs,
                                       total: program.total, sessions: [])
            do {
                return (try RunDirectory.create(stateDir: environment.stateDir, runID: runID, specText: specText, manifest: manifest,
                                                csvHeader: program.csvHeader), manifest)
            } catch { throw .io("\(error)") }
        }
    }

    public func resume(runID: String) throws(ExperimentError) -> AsyncStream<ControlProtocol.ExperimentUpdate> {
        guard let dir = RunDirectory.open(stateDir: environment.stateDir, runID: runID) else { throw .noSuchRun(runID) }
        let program: RunProgram
        do { program = try Self.program(of: dir) } catch { throw .cannotResume("cannot read the run's spec: \(error)") }
        return try begin(program, runID: runID) { () throws(ExperimentError) -> (RunDirectory, RunManifest) in
            do {
                let manifest = try dir.manifest()
                if manifest.state == .finished { throw ExperimentError.cannotResume("experiment \(runID) has finished; nothing to resume") }
                try dir.truncateTornTail()
                return (dir, manifest)
            } catch let e as ExperimentError { throw e } catch { throw .io("\(error)") }
        }
    }

    /// What a run directory's spec runs.
    static func program(of dir: RunDirectory) throws -> RunProgram {
        RunProgram(try ExperimentSpecParser.parse(text: try dir.read("spec.toml"), file: dir.path + "/spec.toml"))
    }

    /// Claims the one slot, prepares the run directory, and starts the run's task. Refused once
    /// the supervisor is stopping.
    private func begin(_ program: RunProgram, runID: String,
                       prepare: () throws(ExperimentError) -> (RunDirectory, RunManifest))
        throws(ExperimentError) -> AsyncStream<ControlProtocol.ExperimentUpdate> {
        let refusal = slot.withLock { s -> ExperimentError? in
            if let s { return .busy(runID: s.runID) }
            if shuttingDown.load(ordering: .sequentiallyConsistent) { return .io("the supervisor is stopping; no experiment starts now") }
            s = .preparing(runID: runID, cancelled: false, waiters: [])
            return nil
        }
        if let refusal { throw refusal }
        let prepared: (RunDirectory, RunManifest)
        do { prepared = try prepare() } catch {
            let waiters = slot.withLock { s -> [CheckedContinuation<Task<Void, Never>?, Never>] in
                defer { s = nil }
                if case .preparing(_, _, let w) = s { return w }
                return []
            }
            for w in waiters { w.resume(returning: nil) }
            throw error
        }
        let (dir, manifest) = prepared
        let (stream, sink) = AsyncStream.makeStream(of: ControlProtocol.ExperimentUpdate.self, bufferingPolicy: .bufferingNewest(64))
        // The task is made under the lock, so that the slot holds it (and its listener) before the
        // run can send an update or end: a run with nothing left to do ends at once.
        let (task, waiters) = slot.withLock { s -> (Task<Void, Never>, [CheckedContinuation<Task<Void, Never>?, Never>]) in
            guard case .preparing(_, let cancelled, let waiters) = s else { preconditionFailure("the run slot was taken from its owner") }
            let task = Task { [self] in await self.execute(program, directory: dir, manifest: manifest) }
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

    private func execute(_ program: RunProgram, directory dir: RunDirectory, manifest start: RunManifest) async {
        var manifest = start
        let session = (manifest.sessions.map(\.number).max() ?? 0) + 1
        let began = Stamp.now()
        let updates = SessionUpdates(runID: dir.runID, directory: dir.path, session: session, total: program.total,
                                     cellLabels: program.cellLabels, began: began)
        let doneAtStart: Int
        do { doneAtStart = try program.doneCount(dir) } catch {
            finish(&manifest, dir: dir, state: .failed, reason: "cannot read the run's trials: \(error)", program: program, updates: updates)
            return
        }
        manifest.state = .running
        manifest.reason = nil
        manifest.sessions.append(.init(number: session, startedWallMs: began.wallMs, host: Self.hostname(), doneAtStart: doneAtStart))
        try? dir.save(manifest)

        let runHub: EventHub
        do { runHub = try EventHub(logPath: dir.path + "/events.jsonl", useJournal: false, echoToStderr: false) } catch {
            finish(&manifest, dir: dir, state: .failed, reason: "\(error)", program: program, updates: updates)
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
        started.reason = "\(program.kind), session \(session), \(doneAtStart) of \(program.total) trials done"
        started.path = dir.path
        runHub.publish(started)
        mainHub.log("experiment \(dir.runID): session \(session), \(program.total - doneAtStart) trials to run in \(dir.path)")
        send(updates.progress(done: doneAtStart, cell: 0, trial: nil, remainingMs: nil))

        let durations = Mutex<[Double]>([])
        let lastTrial = Mutex<ControlProtocol.ExperimentTrial?>(nil)
        /// After each trial: an event, and progress with the time left at the mean trial's pace.
        let told: @Sendable (_ done: Int, _ cell: Int, _ durationMs: Double, _ what: String, ControlProtocol.ExperimentTrial,
                             _ latencyMs: Double?) -> Void = { [self] doneNow, cell, durationMs, what, trial, latency in
            let mean = durations.withLock { d -> Double in d.append(durationMs); return d.reduce(0, +) / Double(d.count) }
            lastTrial.withLock { $0 = trial }
            var e = Event(kind: .experimentProgress, runID: dir.runID)
            e.reason = "\(doneNow)/\(program.total) \(what)"
            e.detectionLatencyMs = latency
            runHub.publish(e)
            send(updates.progress(done: doneNow, cell: cell, trial: trial, remainingMs: Int64(mean * Double(program.total - doneNow))))
        }
        let log: @Sendable (NodeID?, String) -> Void = { [mainHub] node, line in mainHub.log(line, node: node) }
        var done = doneAtStart
        var state = ControlProtocol.RunState.finished, reason: String?
        do {
            switch program {
            case .sweep(let spec, let plan):
                let records = try dir.trials()
                let sweep = SweepRun(
                    spec: spec, plan: plan, directory: dir, hub: runHub, environment: environment, session: session, log: log,
                    progress: { record, doneNow, cell in
                        told(doneNow, cell, record.durationMs, "\(record.cell) trial \(record.index + 1): \(record.outcome.rawValue)",
                             SessionUpdates.trial(record), record.latencyMs)
                    })
                done += try await sweep.run(done: records).count
            case .failover(let spec, let plan):
                let records = try dir.failoverTrials()
                let failover = FailoverRun(
                    spec: spec, plan: plan, directory: dir, hub: runHub, environment: environment, session: session, log: log,
                    progress: { row, doneNow in
                        let cell = plan.cells.firstIndex(of: row.cell) ?? 0
                        told(doneNow, cell, row.durationMs, "\(FailoverSummary.cellName(row.cell)) trial \(row.index + 1): "
                             + SessionUpdates.outcome(row), SessionUpdates.trial(row), nil)
                    })
                done += try await failover.run(done: records).count
            case .linearizability(let spec):
                let began = monotonicNow()
                let run = LinearizabilityRun(spec: spec, directory: dir, hub: runHub, environment: environment, session: session, log: log)
                let check = try await run.run()
                done = 1
                told(1, 0, Double(monotonicNow() - began) / 1e6, LinearizabilityReport.headline(check),
                     ControlProtocol.ExperimentTrial(tFail: nil, tDetect: nil, detectionLatencyMs: nil, outcome: check.verdict.rawValue), nil)
            }
        } catch {
            done = (try? program.doneCount(dir)) ?? done
            let ran = done - doneAtStart
            if error is SweepRun.Stop, shuttingDown.load(ordering: .sequentiallyConsistent) {
                state = .interrupted
                reason = "the supervisor stopped after \(done) of \(program.total) trials; kvctl experiment resume \(dir.runID) continues"
            } else if error is SweepRun.Stop {
                state = .cancelled
                reason = "cancelled after \(done) of \(program.total) trials (\(ran) in this session)"
            } else {
                state = .failed
                reason = "\(error)"
            }
        }
        var finished = Event(kind: .experimentFinished, runID: dir.runID)
        finished.reason = reason ?? "finished: \(done) trials"
        finished.path = dir.path
        runHub.publish(finished)
        runHub.close()
        // Closing the hub ends the forward's stream after what it holds: the run's last events reach the main log.
        await forward.value
        finish(&manifest, dir: dir, state: state, reason: reason, program: program, updates: updates,
               lastTrial: lastTrial.withLock { $0 })
    }

    /// `lastTrial`: this session's last, which the last reply carries (`kvctl experiment trial` prints it).
    private func finish(_ manifest: inout RunManifest, dir: RunDirectory, state: ControlProtocol.RunState, reason: String?,
                        program: RunProgram, updates: SessionUpdates, lastTrial: ControlProtocol.ExperimentTrial? = nil) {
        manifest.state = manifest.state.ending(state)
        manifest.reason = reason
        if !manifest.sessions.isEmpty { manifest.sessions[manifest.sessions.count - 1].endedWallMs = Stamp.now().wallMs }
        var finalReason = reason
        var last = updates.last(state: state, done: (try? program.doneCount(dir)) ?? 0, trial: lastTrial)
        do {
            try dir.save(manifest)
            let results = try RunOutputs.write(program, to: dir, manifest: manifest)
            last.results = results.cells
            last.summary = results.summary
            last.verdict = results.verdict
            last.skipped = results.skipped
        } catch {
            finalReason = [reason, "cannot write the run's files: \(error)"].compactMap { $0 }.joined(separator: "; ")
        }
        last.reason = finalReason
        mainHub.log("experiment \(dir.runID) \(state.rawValue): \(last.done) of \(program.total) trials; \(dir.path)/report.html"
                    + (finalReason.map { " (\($0))" } ?? ""), priority: state == .failed ? 3 : 6)
        send(last, final: true)
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
            let results: [ControlProtocol.ExperimentCell]
            switch try Self.program(of: dir) {
            case .sweep(let spec, let plan): results = SweepSummary(spec: spec, plan: plan, records: try dir.trials()).cells
            case .failover, .linearizability: results = []
            }
            // A linearizability run has no report.md: its summary says the verdict.
            let report = (try? dir.read("report.md")) ?? (try? dir.read("summary.txt")) ?? "(no report yet: the run has not ended)\n"
            return .init(run: run, results: results, report: report)
        } catch let e as ExperimentError { throw e } catch { throw .io("\(error)") }
    }

    private func summary(_ dir: RunDirectory) throws -> ControlProtocol.ExperimentRun {
        let m = try dir.manifest()
        let done = (try? Self.program(of: dir).doneCount(dir)) ?? 0
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
    let total: Int
    let cellLabels: [String]
    let began: Stamp

    func progress(done: Int, cell: Int, trial: ControlProtocol.ExperimentTrial?, remainingMs: Int64?) -> ControlProtocol.ExperimentUpdate {
        make(.running, done: done, cell: cell, trial: trial, remainingMs: remainingMs)
    }

    func last(state: ControlProtocol.RunState, done: Int, trial: ControlProtocol.ExperimentTrial?) -> ControlProtocol.ExperimentUpdate {
        make(state, done: done, cell: max(0, cellLabels.count - 1), trial: trial, remainingMs: 0)
    }

    static func trial(_ r: TrialRecord) -> ControlProtocol.ExperimentTrial {
        .init(tFail: r.failWallMs, tDetect: r.detectWallMs, detectionLatencyMs: r.latencyMs, outcome: r.outcome.rawValue)
    }

    static func trial(_ r: FailoverTrial) -> ControlProtocol.ExperimentTrial {
        .init(tFail: nil, tDetect: nil, detectionLatencyMs: nil, outcome: outcome(r))
    }

    /// A failover trial in a few words: the write's fate and the recovery.
    static func outcome(_ r: FailoverTrial) -> String {
        let fate: String
        if r.lostAcknowledged { fate = "ACKNOWLEDGED WRITE LOST" } else if r.reappeared { fate = "LOST WRITE REAPPEARED" }
        else if r.ackMonoNs == nil { fate = "unacknowledged write " + (r.survived == .yes ? "survived" : r.survived == .no ? "lost" : "unknown") }
        else if r.survived == .yes { fate = r.survivedLater == .yes ? "survived" : "survived, later read unanswered" }
        else { fate = "unknown (the read went unanswered)" }
        return fate + (r.recoveryMs.map { ", recovery \(FixedText.fixed($0, 1)) ms" } ?? ", no recovery seen")
    }

    private func make(_ state: ControlProtocol.RunState, done: Int, cell: Int, trial: ControlProtocol.ExperimentTrial?,
                      remainingMs: Int64?) -> ControlProtocol.ExperimentUpdate {
        .init(runID: runID, state: state, session: session, done: done, total: total, cell: cell + 1,
              cells: cellLabels.count, cellLabel: cell < cellLabels.count ? cellLabels[cell] : "",
              elapsedMs: (monotonicNow() - began.monoNs) / 1_000_000, remainingMs: remainingMs, directory: directory, lastTrial: trial)
    }
}
