import Core
import Events
import Experiments
import Faults
import NodeClient

/// Carries out a failover run's remaining trials on a Raft store of its own: per trial a fresh key
/// written through its group's leader, that leader killed (or stopped, or cut off) `d` ms after the
/// write's answer (or its send), the failover watched (detection, election, the first write
/// served), the key read back linearizably, the node brought back and its catch-up timed, the key
/// read again. Each finished trial is a synced row of `trials.csv` before the next.
struct FailoverRun {
    let spec: FailoverSpec
    let plan: FailoverPlan
    let directory: RunDirectory
    let hub: EventHub
    let environment: ExperimentEnvironment
    let session: Int
    let log: @Sendable (NodeID?, String) -> Void
    let progress: @Sendable (FailoverTrial, _ done: Int) -> Void

    struct Key: Hashable { var cell: FailoverPlan.Cell; var index: Int }

    /// Runs every planned trial not in `done`; returns those it ran. Throws `SweepRun.Stop.cancelled`
    /// when the task is cancelled (checked between trials), with the rows so far on disk. The
    /// rapid cascade runs (again) whole unless all of it is done.
    func run(done: [FailoverTrial]) async throws -> [FailoverTrial] {
        let finished = Set(done.map { Key(cell: $0.cell, index: $0.index) })
        let todo = plan.trials.filter { !finished.contains(Key(cell: $0.cell, index: $0.index)) }
        let single = todo.filter { $0.cell.scenario != .rapid }
        let rapid = todo.filter { $0.cell.scenario == .rapid }
        if single.isEmpty && rapid.isEmpty { return [] }
        var ran: [FailoverTrial] = []
        var clusters = 0
        func fresh() async throws -> FailoverStore {
            clusters += 1
            return try await FailoverStore.start(run: self, number: clusters)
        }
        try check()
        var store = try await fresh()
        do {
            for trial in single {
                try check()
                let row: FailoverTrial
                do { row = try await store.trial(trial) } catch let e as SweepRun.TrialError where !Task.isCancelled {
                    // A store that cannot recover is replaced; the trial runs again on the fresh one.
                    log(nil, "experiment \(directory.runID): \(trial.cell.scenario.rawValue) \(trial.cell.killAfterMs) ms trial "
                        + "\(trial.index): \(e); starting the store afresh")
                    await store.shutdown()
                    store = try await fresh()
                    row = try await store.trial(trial)
                }
                try record(row, &ran, doneBefore: done.count)
            }
            if !rapid.isEmpty {
                try check()
                // A cascade that ran in part before is run again whole: its rows come in one go.
                let rows = try await store.cascade(plan.trials.filter { $0.cell.scenario == .rapid }.filter {
                    !finished.contains(Key(cell: $0.cell, index: $0.index))
                })
                for row in rows { try record(row, &ran, doneBefore: done.count) }
            }
        } catch {
            await store.shutdown()
            throw Task.isCancelled ? SweepRun.Stop.cancelled : error
        }
        await store.shutdown()
        return ran
    }

    private func record(_ row: FailoverTrial, _ ran: inout [FailoverTrial], doneBefore: Int) throws {
        try directory.append(failover: row)
        ran.append(row)
        progress(row, doneBefore + ran.count)
    }

    func check() throws { if Task.isCancelled { throw SweepRun.Stop.cancelled } }
}
