import Foundation
import ScenarioTesting
import Testing
@testable import Raft

/// Seeded random schedules over a simulated cluster: message delay, loss, duplication and
/// reordering, partitions, crashes and restarts from what was persisted, proposals. After every
/// step: election safety, log matching, leader completeness, state-machine safety. A failure names
/// its seed; `KV_RAFT_SEED=N swift test --filter raftSimulation` replays that schedule alone.
struct RaftSimulation {
    struct InFlight { var message: Message; var deliverAt: Int }
    struct Disk { var hardState = HardState(); var entries: [Entry] = [] }

    let seed: UInt64
    var rng: SplitMix64
    let ids: [ReplicaID]
    var nodes: [ReplicaID: Raft] = [:]
    var disks: [ReplicaID: Disk] = [:]
    var down: Set<ReplicaID> = []
    var side: [ReplicaID: Int] = [:]  // partition: messages cross only within a side
    var network: [InFlight] = []
    var now = 0
    var leaders: [Term: ReplicaID] = [:]
    var committed: [LogIndex: Entry] = [:]
    /// The term of the replica that first saw each entry committed: the entry was committed in
    /// that term or before, so every leader of a later term must hold it (Raft §5.4).
    var committedBy: [LogIndex: Term] = [:]
    var scanned: [ReplicaID: LogIndex] = [:]
    var checkedLeader: [ReplicaID: Term] = [:]
    var applied: [LogIndex: Entry] = [:]
    var proposals = 0
    var violations: [String] = []
    var maxEntries = 64

    /// Adjusts every replica's config (the planted-bug tests use it).
    let configure: @Sendable (inout Raft.Config) -> Void

    init(seed: UInt64, size: Int, configure: @escaping @Sendable (inout Raft.Config) -> Void = { _ in }) {
        self.seed = seed
        self.configure = configure
        rng = SplitMix64(seed: seed)
        ids = Array(1...size)
        // Small appends split a new leader's catch-up: old-term entries then reach a quorum
        // before its no-op does, the case the current-term commit rule exists for.
        maxEntries = [1, 2, 64][Int(seed % 3)]
        for id in ids {
            var c = Raft.Config(id: id, voters: ids)
            c.seed = seed
            c.maxEntriesPerAppend = maxEntries
            configure(&c)
            nodes[id] = Raft(config: c)
            disks[id] = Disk()
            side[id] = 0
        }
    }

    mutating func chance(_ percent: UInt64) -> Bool { rng.next() % 100 < percent }
    mutating func pick<T>(_ xs: [T]) -> T { xs[Int(rng.next() % UInt64(xs.count))] }

    mutating func run(steps: Int) {
        for step in 0..<steps {
            now += 1
            let live = ids.filter { !down.contains($0) }
            switch rng.next() % 100 {
            case 0..<45:
                for id in live { nodes[id]!.tick() }
            case 45..<50, 67..<72:
                if let leader = live.first(where: { nodes[$0]!.role == .leader }) {
                    proposals += 1
                    _ = nodes[leader]!.propose(Array("p\(proposals)".utf8))
                }
            case 50..<52:
                if down.count < ids.count / 2, !live.isEmpty { down.insert(pick(live)) }  // crash
            case 61..<64:
                // Crash the leader, often right after it replicated to only some: the schedules
                // where an old term's entries sit on a minority (Raft Figure 8).
                if down.count < ids.count / 2, let leader = live.first(where: { nodes[$0]!.role == .leader }) {
                    down.insert(leader)
                }
            case 52..<55:
                if let id = down.min() {  // restart from disk (min: a Set's order changes per process)
                    down.remove(id)
                    var c = Raft.Config(id: id, voters: ids)
                    c.seed = seed &+ UInt64(step)
                    c.maxEntriesPerAppend = maxEntries
                    configure(&c)
                    nodes[id] = Raft(config: c, hardState: disks[id]!.hardState, entries: disks[id]!.entries)
                    scanned[id] = 0
                    checkedLeader[id] = nil
                }
            case 55..<57:
                for id in ids { side[id] = Int(rng.next() % 2) }  // partition
            case 64..<67:
                // Cut the leader off with one follower: it keeps appending entries of its term
                // that only a minority holds, while the rest elect a new leader.
                if let leader = live.first(where: { nodes[$0]!.role == .leader }) {
                    for id in ids { side[id] = 0 }
                    side[leader] = 1
                    side[pick(ids.filter { $0 != leader })] = 1
                }
            case 57..<61:
                for id in ids { side[id] = 0 }  // heal
            default:
                break
            }
            processReadies()
            deliver()
            check(step: step)
            if !violations.isEmpty { return }
        }
    }

    mutating func processReadies() {
        for id in ids where !down.contains(id) && nodes[id]!.hasReady {
            let r = nodes[id]!.ready()
            if let hs = r.hardState { disks[id]!.hardState = hs }
            if let first = r.entries.first {
                disks[id]!.entries.removeAll { $0.index >= first.index }
                disks[id]!.entries += r.entries
            }
            for m in r.messages {
                if chance(5) { continue }  // lost
                network.append(InFlight(message: m, deliverAt: now + 1 + Int(rng.next() % 6)))
                if chance(3) { network.append(InFlight(message: m, deliverAt: now + 1 + Int(rng.next() % 10))) }  // duplicated
            }
            for e in r.committed {
                if let seen = applied[e.index], seen != e {
                    violations.append("state-machine safety: \(id) applied \(e) at \(e.index), another replica applied \(seen)")
                }
                applied[e.index] = e
            }
            nodes[id]!.advance(r)
            if nodes[id]!.role == .leader {
                if let other = leaders[nodes[id]!.term], other != id {
                    violations.append("election safety: \(other) and \(id) both leaders at term \(nodes[id]!.term)")
                }
                leaders[nodes[id]!.term] = id
            }
        }
    }

    mutating func deliver() {
        // Due messages in a shuffled order: reordering within and across links.
        var due = network.indices.filter { network[$0].deliverAt <= now }
        due.shuffle(using: &rng)
        let messages = due.map { network[$0].message }
        for i in due.sorted(by: >) { network.remove(at: i) }
        for m in messages where !down.contains(m.to) && side[m.to] == side[m.from] {
            nodes[m.to]!.step(m)
        }
    }

    mutating func check(step: Int) {
        let live = ids.filter { !down.contains($0) }
        // Log matching: same index and term means the same entry and the same history before it.
        // A pass over every pair of logs is costly: every 25 steps.
        for (i, a) in live.enumerated() where step % 25 == 0 {
            for b in live[(i + 1)...] {
                let la = nodes[a]!.log, lb = nodes[b]!.log
                let upTo = min(la.lastIndex, lb.lastIndex)
                var matched = false
                var idx = upTo
                while idx.value > 0 {
                    let ea = la.entries[Int(idx.value) - 1], eb = lb.entries[Int(idx.value) - 1]
                    if matched && ea != eb {
                        violations.append("log matching: \(a) and \(b) agree on a later entry but differ at \(idx)")
                        return
                    }
                    if ea.term == eb.term { matched = true; if ea != eb { violations.append("log matching: same term, different entry at \(idx)") } }
                    idx = idx - 1
                }
            }
        }
        // Committed entries never change; and leader completeness: every entry committed by some
        // term is in the log of every leader of a later term. Incremental: each replica's newly
        // committed entries, and each leader once per term (then the entries committed after).
        for id in live {
            let r = nodes[id]!
            var i = min(scanned[id] ?? 0, r.log.committed)
            while i < r.log.committed {
                i = i + 1
                let e = r.log.entries[Int(i.value) - 1]
                if let seen = committed[i] {
                    if seen != e { violations.append("committed entries differ at \(i): \(seen) and \(e) (at \(id))") }
                    continue
                }
                committed[i] = e
                committedBy[i] = r.term
                for l in live where nodes[l]!.role == .leader && nodes[l]!.term > r.term && nodes[l]!.log.term(at: i) != e.term {
                    violations.append("leader completeness: leader \(l) at term \(nodes[l]!.term) lacks \(e), committed by term \(r.term)")
                }
            }
            scanned[id] = i
            if r.role == .leader && checkedLeader[id] != r.term {
                checkedLeader[id] = r.term
                for (index, e) in committed where committedBy[index]! < r.term && r.log.term(at: index) != e.term {
                    violations.append("leader completeness: leader \(id) at term \(r.term) lacks \(e), committed by term \(committedBy[index]!)")
                }
            }
        }
    }
}

@Test func raftSimulationKeepsItsInvariants() {
    let only = ProcessInfo.processInfo.environment["KV_RAFT_SEED"].flatMap(UInt64.init)
    let count = UInt64(ProcessInfo.processInfo.environment["KV_RAFT_SCHEDULES"].flatMap(Int.init) ?? 400)
    let seeds: [UInt64] = only.map { [$0] } ?? Array(1...count)
    var commits = 0, elections = 0
    let started = Date()
    for seed in seeds {
        var sim = RaftSimulation(seed: seed, size: seed % 2 == 0 ? 3 : 5)
        sim.run(steps: 1500)
        #expect(sim.violations.isEmpty, "seed \(seed): \(sim.violations.joined(separator: "; ")) — replay: KV_RAFT_SEED=\(seed) swift test --filter raftSimulation")
        commits += sim.committed.count
        elections += sim.leaders.count
    }
    let seconds = Date().timeIntervalSince(started)
    print("raft simulation: \(seeds.count) schedules of 1500 steps in \(String(format: "%.1f", seconds)) s "
          + "(\(String(format: "%.0f", Double(seeds.count) / seconds)) schedules/s); \(elections) leaders elected, \(commits) entries committed")
    // The schedules must exercise something: leaders were elected and entries committed.
    #expect(elections > seeds.count && commits > seeds.count * 5)
}

@Test func aScheduleReplaysExactly() {
    var a = RaftSimulation(seed: 7, size: 5), b = RaftSimulation(seed: 7, size: 5)
    a.run(steps: 1500)
    b.run(steps: 1500)
    #expect(a.committed == b.committed && a.leaders == b.leaders && a.proposals == b.proposals)
    #expect(!a.committed.isEmpty)
}
