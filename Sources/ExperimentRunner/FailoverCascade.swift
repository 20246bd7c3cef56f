import Core
import Experiments

extension FailoverStore {
    /// The rapid sequential scenario: on one group, a write through the leader, the leader killed
    /// `rapid_gap_ms` after its answer, then the same on the leader elected in its place, as soon as
    /// it is elected. A quorum must stay up, so once f = (n - 1) / 2 nodes are down the earliest is
    /// brought back and caught up before the next kill (recorded on that kill's row, and logged).
    /// At the end every node is brought back, and every key of the cascade read again. Returns the
    /// rows made, and what stopped the cascade early, if anything.
    mutating func cascade(_ trials: [FailoverPlan.Trial]) async -> (rows: [FailoverTrial], failure: (any Error)?) {
        var rows: [FailoverTrial] = []
        var values: [String] = []
        var down: [NodeID] = []
        var g = 0
        do {
            guard !trials.isEmpty else { return ([], nil) }
            drain()
            g = try await settledGroup()
            let f = (ids.count - 1) / 2
            // The next kill's target: the leader elected at the last kill (or any, at first).
            var next: (node: String?, term: UInt64) = (nil, 0)
            for t in trials {
                let start = Stamp.now()
                drain()
                var broughtBack: (restart: MonotonicNanos, caughtUp: MonotonicNanos, index: UInt64)?
                if down.count >= f {
                    let back = down.removeFirst()
                    let restart = monotonicNow()
                    let index = leaders().byGroup[g]?.view.commitIndex ?? 0
                    try await recover(back)
                    if spec.fault == .partition {
                        // Healing `back` restored its links to the others still cut off: cut those again.
                        for other in down { try await cut(other) }
                    }
                    broughtBack = (restart, try await waitCaughtUp(back, group: g, index: index), index)
                    run.log(nil, "experiment \(run.directory.runID): rapid sequential: \(back) brought back before kill \(t.index + 1) "
                            + "to keep a quorum of \(ids.count)")
                }
                let expected = next
                // The leader is taken as the wait saw it: a report arriving after could change it.
                var found: GroupLeaders.Leader?
                try await until("leader of group \(g) in term \(expected.term) or later", seconds: 10) { s in
                    guard let l = s.leaders().byGroup[g], l.view.term >= expected.term, !down.contains(where: { $0.rawValue == l.node })
                    else { return false }
                    found = l
                    return true
                }
                guard let leader = found, let leaderID = NodeID(validating: leader.node) else {
                    throw TrialError(description: "rapid sequential: no leader of group \(g) to kill")
                }
                if let elected = expected.node, elected != leader.node {
                    run.log(nil, "experiment \(run.directory.runID): rapid sequential: \(elected) was elected at the last kill, "
                            + "\(leader.node) leads now (term \(leader.view.term)); killing \(leader.node)")
                }
                let value = Self.writtenValue(startWallMs: start.wallMs, index: t.index, rapid: true)
                var key = ""
                var sent: MonotonicNanos = 0
                var ack: (at: MonotonicNanos, index: UInt64)?
                // A new leader acknowledges once its first entry of the term has committed: tried
                // again, on a fresh key, for up to 3 s.
                let deadline = monotonicNow() + 3_000_000_000
                var attempt = 0
                while ack == nil && monotonicNow() < deadline {
                    try run.check()
                    attempt += 1
                    key = freshKey(g, "fo-s\(run.session)-rapid-\(t.index)-a\(attempt)")
                    let call = client.put(leaderID, key: key, value: value, timeoutMs: 1000)
                    if let s = try? await call.sentMonoNs(), let r = try? await call.answer(), let index = StoreClient.index(of: r) {
                        sent = s
                        ack = (r.receivedMonoNs, index)
                    } else {
                        try? await Task.sleep(for: .milliseconds(2))
                    }
                }
                guard let ack else { throw TrialError(description: "rapid sequential: \(leaderID) acknowledged no write within 3 s") }
                let watch = try await kill(leaderID, at: ack.at + Int64(spec.rapidGapMs) * 1_000_000, group: g, term: leader.view.term)
                guard watch.elected != nil else {
                    throw TrialError(description: "rapid sequential: no leader of group \(g) elected within 10 s of kill \(t.index + 1)")
                }
                let survived = await readBack(key, group: g, value: value)
                down.append(leaderID)
                next = (watch.newLeader, watch.newTerm ?? leader.view.term + 1)
                values.append(value)
                rows.append(FailoverTrial(
                    session: run.session, cell: t.cell, index: t.index, fault: spec.fault, group: g, key: key, leader: leader.node,
                    term: leader.view.term, startWallMs: start.wallMs, sendMonoNs: sent, ackMonoNs: ack.at, write: .ok,
                    killRequestedMonoNs: watch.requestedMonoNs, killAppliedMonoNs: watch.applied?.monoNs,
                    killEffectMonoNs: watch.effect?.monoNs, detectMonoNs: watch.detect, leaderLostMonoNs: watch.leaderLost,
                    electedMonoNs: watch.elected, newLeader: watch.newLeader, newTerm: watch.newTerm,
                    firstWriteMonoNs: watch.firstWrite?.at, survived: survived, restartMonoNs: broughtBack?.restart,
                    caughtUpMonoNs: broughtBack?.caughtUp, catchUpIndex: broughtBack?.index,
                    durationMs: Double(monotonicNow() - start.monoNs) / 1e6))
            }
            // Everyone back; the last node killed is timed to its catch-up, and every key read again.
            let target = leaders().byGroup[g]?.view.commitIndex ?? 0
            var lastBack: (restart: MonotonicNanos, caughtUp: MonotonicNanos)?
            for node in down {
                let restart = monotonicNow()
                try await recover(node)
                lastBack = (restart, try await waitCaughtUp(node, group: g, index: target))
            }
            down = []
            for k in rows.indices { rows[k].survivedLater = await readBack(rows[k].key, group: g, value: values[k]) }
            // The last row carries the end's catch-up unless it carries a bring-back already
            // (a restart before its write, which the summary counts).
            if let lastBack, rows[rows.count - 1].restartMonoNs == nil {
                rows[rows.count - 1].restartMonoNs = lastBack.restart
                rows[rows.count - 1].caughtUpMonoNs = lastBack.caughtUp
                rows[rows.count - 1].catchUpIndex = target
            }
            return (rows, nil)
        } catch {
            // Cancelled: nothing is kept, and a resume runs the cascade again whole (as after a
            // SIGKILL). Failed: what was measured stands; the later reads are unknown.
            return (Task.isCancelled ? [] : rows, error)
        }
    }
}
