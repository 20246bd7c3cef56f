import Core
import Events
import Experiments
import Faults
#if canImport(Glibc)
import Glibc
#endif

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
    /// when the task is cancelled (checked between trials and in every wait), with the rows so far
    /// on disk. The rapid cascade's rows are written when it ends (its later reads come last).
    func run(done: [FailoverTrial]) async throws -> [FailoverTrial] {
        let finished = Set(done.map { Key(cell: $0.cell, index: $0.index) })
        let todo = plan.trials.filter { !finished.contains(Key(cell: $0.cell, index: $0.index)) }
        let single = todo.filter { $0.cell.scenario != .rapid }
        let rapid = todo.filter { $0.cell.scenario == .rapid }
        // A session that died left its stores' data behind.
        for name in directory.entries() where name.hasPrefix("data-") { removeTree(directory.path + "/" + name) }
        if todo.isEmpty { return [] }
        var ran: [FailoverTrial] = []
        var clusters = 0
        var store: FailoverStore?
        func replace(_ why: String?) async throws {
            if let old = store {
                store = nil
                if let why { log(nil, "experiment \(directory.runID): \(why); starting the store afresh") }
                await old.shutdown()
            }
            try check()
            clusters += 1
            store = try await FailoverStore.start(run: self, number: clusters)
        }
        do {
            try await replace(nil)
            for trial in single {
                try check()
                let row: FailoverTrial
                do { row = try await store!.trial(trial) } catch let e as SweepRun.TrialError where !Task.isCancelled {
                    // A store that cannot go on is replaced; the trial runs again on the fresh one.
                    try await replace("\(trial.cell.scenario.rawValue) \(trial.cell.killAfterMs) ms trial \(trial.index): \(e)")
                    row = try await store!.trial(trial)
                }
                try record(row, &ran, doneBefore: done.count)
                // A trial that saw its failover but could not bring the node back is kept; the store is not.
                if let broken = store!.broken { try await replace(broken) }
            }
            if !rapid.isEmpty {
                try check()
                let (rows, failure) = await store!.cascade(rapid)
                for row in rows { try record(row, &ran, doneBefore: done.count) }
                if let failure { throw failure }
            }
            // The session's keys once more, every node back and settled (final-reads.csv).
            try check()
            let finals = await store!.finalReads(ran)
            try check()
            try directory.append(finalReads: finals.map { FinalReadsCSV.row($0.0, $0.1) })
        } catch {
            await store?.shutdown()
            throw Task.isCancelled ? SweepRun.Stop.cancelled : error
        }
        await store?.shutdown()
        return ran
    }

    private func record(_ row: FailoverTrial, _ ran: inout [FailoverTrial], doneBefore: Int) throws {
        try directory.append(failover: row)
        ran.append(row)
        progress(row, doneBefore + ran.count)
    }

    func check() throws { if Task.isCancelled { throw SweepRun.Stop.cancelled } }
}
