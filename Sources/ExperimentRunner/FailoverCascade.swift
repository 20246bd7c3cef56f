import Core
import Experiments

extension FailoverStore {
    /// The rapid sequential scenario: on one group, a write through the leader, the leader killed
    /// `rapid_gap_ms` after its answer, and the same again on the leader elected next, as soon as
    /// it is elected. A quorum must stay up, so once f nodes are down the earliest one is brought
    /// back (and caught up) before the next kill; how often is logged. At the end every node is
    /// brought back, and every key of the cascade read again.
    mutating func cascade(_ trials: [FailoverPlan.Trial]) async throws -> [FailoverTrial] {
        guard !trials.isEmpty else { return [] }
        drain()
        let g = try await settledGroup()
        let f = (ids.count - 1) / 2
        var down: [NodeID] = []
        var rows: [FailoverTrial] = []
        var values: [String] = []
        var lastTerm: UInt64 = 0
        var broughtBack = 0
        for t in trials {
            let start = Stamp.now()
            drain()
            if down.count >= f {
                let back = down.removeFirst()
                try await recover(back)
                let target = leaders().byGroup[g]?.view.commitIndex ?? 0
                _ = try await caughtUp(back, group: g, index: target)
                broughtBack += 1
                run.log(nil, "experiment \(run.directory.runID): rapid sequential: \(back) brought back before kill \(t.index + 1) "
                        + "to keep a quorum of \(ids.count)")
            }
            try await until("leader of group \(g) after term \(lastTerm)", seconds: 10) { s in
                (s.leaders().byGroup[g]?.view.term ?? 0) > lastTerm && !down.contains { $0.rawValue == s.leaders().byGroup[g]?.node }
            }
            let leader = leaders().byGroup[g]!
            let leaderID = NodeID(validating: leader.node)!
            let value = "v\(start.wallMs)-r\(t.index)"
            var key = ""
            var sent: MonotonicNanos = 0
            var ack: (at: MonotonicNanos, index: UInt64)?
            // A new leader acknowledges once its first entry of the term has committed: tried
            // again, on a fresh key, for up to 3 s.
            let deadline = monotonicNow() + 3_000_000_000
            var attempt = 0
            while ack == nil && monotonicNow() < deadline {
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
            let survived = await readBack(key, group: g, value: value)
            down.append(leaderID)
            lastTerm = watch.newTerm ?? leader.view.term
            values.append(value)
            rows.append(FailoverTrial(
                session: run.session, cell: t.cell, index: t.index, fault: spec.fault, group: g, key: key, leader: leader.node,
                term: leader.view.term, startWallMs: start.wallMs, sendMonoNs: sent, ackMonoNs: ack.at, write: .ok,
                killRequestedMonoNs: watch.requested.monoNs, killAppliedMonoNs: watch.applied?.monoNs, killEffectMonoNs: watch.effect?.monoNs,
                detectMonoNs: watch.detect, leaderLostMonoNs: watch.leaderLost, electedMonoNs: watch.elected, newLeader: watch.newLeader,
                newTerm: watch.newTerm, firstWriteMonoNs: watch.firstWrite, survived: survived, catchUpIndex: ack.index,
                durationMs: Double(monotonicNow() - start.monoNs) / 1e6))
        }
        // Everyone back; the last node killed is timed to its catch-up, and every key read again.
        let target = leaders().byGroup[g]?.view.commitIndex ?? 0
        var lastBack: (restart: MonotonicNanos, caughtUp: MonotonicNanos)?
        for node in down {
            let restart = monotonicNow()
            try await recover(node)
            lastBack = (restart, try await caughtUp(node, group: g, index: target))
        }
        for k in rows.indices {
            rows[k].survivedLater = await readBack(rows[k].key, group: g, value: values[k])
        }
        if let lastBack {
            rows[rows.count - 1].restartMonoNs = lastBack.restart
            rows[rows.count - 1].caughtUpMonoNs = lastBack.caughtUp
            rows[rows.count - 1].catchUpIndex = target
        }
        if broughtBack > 0 {
            run.log(nil, "experiment \(run.directory.runID): rapid sequential: \(trials.count) kills; \(broughtBack) nodes brought back "
                    + "between kills to keep a quorum")
        }
        return rows
    }
}
