import KVStore
import Raft

/// Raft's safety properties (Figure 3), checked as the schedule runs: election safety, log
/// matching, leader completeness and state-machine safety, plus the store's determinism (the same
/// index gives the same state on every replica, whether applied entry by entry or from a snapshot).
/// One group's: with several groups each has its own.
struct Invariants {
    var leaders: [Term: ReplicaID] = [:]
    var committed: [LogIndex: Entry] = [:]
    /// The term of the replica that first saw each entry committed: the entry was committed in
    /// that term or before, so every leader of a later term must hold it (Raft §5.4).
    var committedBy: [LogIndex: Term] = [:]
    var scanned: [ReplicaID: LogIndex] = [:]
    var checkedLeader: [ReplicaID: Term] = [:]
    var applied: [LogIndex: Entry] = [:]
    var states: [LogIndex: KVStateMachine] = [:]
    var violations: [String] = []

    mutating func restarted(_ id: ReplicaID) {
        scanned[id] = nil
        checkedLeader[id] = nil
    }

    mutating func sawRole(_ sim: Simulation, _ g: Int, _ id: ReplicaID) {
        let r = sim.nodes[g][id]!.raft
        guard r.role == .leader else { return }
        if let other = leaders[r.term], other != id {
            violations.append("election safety: \(other) and \(id) both leaders at term \(r.term)")
        }
        leaders[r.term] = id
    }

    mutating func sawApply(_ sim: Simulation, _ id: ReplicaID, _ e: Entry) {
        if let seen = applied[e.index], seen != e {
            violations.append("state-machine safety: \(id) applied \(e) at \(e.index), another replica applied \(seen)")
        }
        applied[e.index] = e
    }

    mutating func sawState(_ sim: Simulation, _ id: ReplicaID, _ state: KVStateMachine, index: LogIndex) {
        if let seen = states[index] {
            if seen != state { violations.append("determinism: replica \(id) holds another state at index \(index) than a replica before it") }
        } else {
            states[index] = state
        }
    }

    /// Whether `log` holds `e` (an index compacted into the snapshot is committed there, and the
    /// snapshot's state is compared on its own).
    private func holds(_ log: RaftLog, _ e: Entry) -> Bool {
        e.index <= log.snapshotIndex || log.term(at: e.index) == e.term
    }

    mutating func check(_ sim: Simulation, _ g: Int, step: Int) {
        let live = sim.live
        let nodes = sim.nodes[g]
        // Log matching: same index and term means the same entry and the same history before it.
        // A pass over every pair of logs is costly: every 25 steps.
        if step % 25 == 0 {
            for (i, a) in live.enumerated() {
                for b in live[(i + 1)...] { checkLogMatching(a, nodes[a]!.raft.log, b, nodes[b]!.raft.log) }
            }
        }
        // Committed entries never change; leader completeness: every entry committed by some term is
        // in the log of every leader of a later term. Incremental: each replica's newly committed
        // entries, and each leader once per term (then the entries committed after).
        for id in live {
            let r = nodes[id]!.raft
            var i = max(scanned[id] ?? 0, r.log.snapshotIndex)
            while i < r.log.committed {
                i = i + 1
                guard let e = r.log.entry(at: i) else { break }
                if let seen = committed[i] {
                    if seen != e { violations.append("committed entries differ at \(i): \(seen) and \(e) (at \(id))") }
                    continue
                }
                committed[i] = e
                committedBy[i] = r.term
                for l in live where nodes[l]!.raft.role == .leader && nodes[l]!.raft.term > r.term && !holds(nodes[l]!.raft.log, e) {
                    violations.append("leader completeness: leader \(l) at term \(nodes[l]!.raft.term) lacks \(e), committed by term \(r.term)")
                }
            }
            scanned[id] = i
            if r.role == .leader && checkedLeader[id] != r.term {
                checkedLeader[id] = r.term
                for (index, e) in committed where committedBy[index]! < r.term && !holds(r.log, e) {
                    violations.append("leader completeness: leader \(id) at term \(r.term) lacks \(e), committed by term \(committedBy[index]!)")
                }
            }
        }
    }

    private mutating func checkLogMatching(_ a: ReplicaID, _ la: RaftLog, _ b: ReplicaID, _ lb: RaftLog) {
        let low = max(la.firstIndex, lb.firstIndex)
        var idx = min(la.lastIndex, lb.lastIndex)
        var matched = false
        while idx >= low {
            let ea = la.entry(at: idx)!, eb = lb.entry(at: idx)!
            if ea.term == eb.term {
                if ea != eb { violations.append("log matching: \(a) and \(b) hold different entries of term \(ea.term) at \(idx)"); return }
                matched = true
            } else if matched {
                violations.append("log matching: \(a) and \(b) agree on a later entry but differ at \(idx)")
                return
            }
            idx = idx - 1
        }
    }
}
