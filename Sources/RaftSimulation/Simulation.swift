import BinaryCodec
import Core
import KVStore
import Linearizability
import Raft

/// What one schedule is: its seed decides everything else.
public struct ScheduleOptions: Sendable {
    public var seed: UInt64
    public var size: Int
    /// Raft groups on the same replicas, as kvnode runs them: every fault hits a replica's
    /// process, so all its groups at once, and a replica's groups share one disk and one sync.
    public var groups: Int
    public var steps = 1500
    public var clients = 3
    /// Record a step-by-step trace (for replaying one schedule by hand).
    public var trace = false
    /// Keep the clients' history in the report (to write it out for `kvctl check`).
    public var keepHistory = false
    /// Adjusts every replica's config (the planted-bug tests use it).
    public var configure: @Sendable (inout Raft.Config) -> Void = { _ in }

    /// By default a quarter of the seeds (6 and 7 mod 8: on 3 and on 5 replicas) run 3 groups.
    public init(seed: UInt64, size: Int? = nil, groups: Int? = nil) {
        self.seed = seed
        self.size = size ?? (seed % 2 == 0 ? 3 : 5)
        self.groups = max(1, groups ?? (seed % 8 >= 6 ? 3 : 1))
    }
}

public struct ScheduleReport: Sendable {
    public var seed: UInt64
    public var size: Int
    public var groups: Int
    /// Empty: every invariant held.
    public var violations: [String] = []
    public var trace: [String] = []
    public var leadersElected = 0
    public var entriesCommitted = 0
    public var crashes = 0
    public var crashesMidWrite = 0
    public var pauses = 0
    public var snapshotsInstalled = 0
    public var transfers = 0
    public var operations = 0
    public var acknowledged = 0
    public var readIndexReads = 0
    public var staleReads = 0
    public var anonymousWrites = 0
    /// Sessions evicted past the limit (counted on replica 1), and requests refused as `sessionExpired`.
    public var sessionsExpired = 0
    public var expiredRetries = 0
    /// The clients' history checked by the linearizability checker, every group's (nil: the check
    /// did not run, because an invariant failed first).
    public var linearizable: Verdict?
    /// With `keepHistory`: every client operation, every group's (clients numbered across groups).
    public var history: [Operation<KVModel.Input, KVModel.Output>] = []
}

/// One seeded schedule over a simulated cluster of Raft replicas running the KV state machine:
/// a network with delay, loss, duplication, reordering and partitions (symmetric and one-way);
/// crashes (some in the middle of a disk write) and restarts from a disk that loses what was not
/// synced; snapshots; leadership transfers; clients that retry with the same (client, seq).
/// After every step: election safety, leader completeness, state-machine safety, committed entries
/// that never change; log matching over all pairs of logs every 25 steps (the costly pass).
/// At the end, with the faults healed: every acknowledged write is in every replica that applied
/// its index, every replica holds the same state, and the clients' history is linearizable.
/// With several groups, all of this holds per group: each has its own replicas' Raft and store,
/// its own clients on keys of that group (`KeyGroups`), its own invariants and history.
public final class Simulation {
    struct Directed: Hashable { var from: ReplicaID; var to: ReplicaID }
    /// One group's replica on one process.
    struct Slot: Hashable { var group: Int; var id: ReplicaID }

    let options: ScheduleOptions
    var rng: SimRandom
    let ids: [ReplicaID]
    /// By group, then replica.
    var nodes: [[ReplicaID: SimNode]] = []
    /// By replica: one disk per process, every group's records in it (kvnode's shared WAL).
    var disks: [ReplicaID: SimDisk] = [:]
    var down: Set<ReplicaID> = []
    /// SIGSTOPped replicas and the step they resume at: no ticks, no Readies, and what is sent to
    /// them waits (in the socket buffer) until they run again.
    var paused: [ReplicaID: Int] = [:]
    var held: [ReplicaID: [Packet]] = [:]
    var side: [ReplicaID: Int] = [:]
    var blocked: Set<Directed> = []
    /// Messages on the wire, by the step they arrive at.
    var network: [Int: [Packet]] = [:]
    /// Snapshots arriving chunk by chunk, per receiver: from whom, which, and what came so far.
    var assembling: [Slot: (from: ReplicaID, index: LogIndex, term: Term, next: Int, chunks: [[UInt8]], assembler: SnapshotAssembler)] = [:]
    var inFlight = 0
    /// More than this on the wire at once is a message storm: a liveness bug, reported as such.
    static let stormLimit = 50_000
    var lossPercent: UInt64 = 5
    /// Off once the schedule is over and the cluster settles.
    var faults = true
    var now = 0
    let maxEntries: Int
    let snapshotEvery: UInt64
    /// A third of the schedules keep 4 sessions, fewer than the clients use as they take new
    /// names, so that sessions expire (by the same rule on every replica) and retries meet it.
    let sessionLimit: Int
    /// By group.
    var clients: [Clients]
    var background: UInt64 = 0
    var report: ScheduleReport
    /// By group.
    var invariants: [Invariants]
    var groups: Range<Int> { 0..<options.groups }

    public init(_ options: ScheduleOptions) {
        self.options = options
        rng = SimRandom(seed: options.seed)
        ids = Array(1...options.size)
        // Small appends split a new leader's catch-up: old-term entries then reach a quorum before
        // its no-op does, the case the current-term commit rule exists for.
        maxEntries = [1, 2, 64][Int(options.seed % 3)]
        snapshotEvery = [8, 20, 1000][Int(options.seed / 3 % 3)]
        sessionLimit = options.seed % 3 == 1 ? 4 : KVStateMachine.defaultSessionLimit
        let replicas = ids
        clients = (0..<options.groups).map { g in
            Clients(group: g, count: options.clients, nodes: replicas, keys: Clients.keys(group: g, of: options.groups))
        }
        invariants = [Invariants](repeating: Invariants(), count: options.groups)
        report = ScheduleReport(seed: options.seed, size: options.size, groups: options.groups)
        nodes = [[ReplicaID: SimNode]](repeating: [:], count: options.groups)
        for id in ids {
            for g in 0..<options.groups {
                nodes[g][id] = SimNode(raft: Raft(config: config(id, group: g, seed: options.seed)), sessionLimit: sessionLimit)
            }
            disks[id] = SimDisk()
            side[id] = 0
        }
    }

    func config(_ id: ReplicaID, group: Int, seed: UInt64) -> Raft.Config {
        var c = Raft.Config(id: id, voters: ids)
        // Each group its own timeouts (as kvnode seeds them); group 0 as before groups.
        c.seed = seed &+ UInt64(group) &* 0x9E37_79B9_7F4A_7C15
        c.maxEntriesPerAppend = maxEntries
        // Byte limits small enough to bind: appends split by size (an entry is 15-30 bytes), and a
        // leader without a quorum soon refuses proposals.
        c.maxBytesPerAppend = [1 << 20, 24, 80][Int(seed / 9 % 3)]
        if seed % 5 == 0 { c.maxUncommittedBytes = 150 }
        options.configure(&c)
        return c
    }

    public func run() -> ScheduleReport {
        for step in 0..<options.steps {
            now += 1
            resumeDue()
            act(step)
            processReadies()
            deliver()
            for g in groups { invariants[g].check(self, g, step: step) }
            checkStorm()
            if !report.violations.isEmpty || invariants.contains(where: { !$0.violations.isEmpty }) { return finish() }
        }
        settle()
        if report.violations.isEmpty && invariants.allSatisfy({ $0.violations.isEmpty }) { checkOutcome() }
        return finish()
    }

    private func finish() -> ScheduleReport {
        // The first few distinct violations: the rest follow from them.
        var seen = Set<String>()
        let found = groups.flatMap { g in invariants[g].violations.map { options.groups > 1 ? "group \(g): \($0)" : $0 } }
        report.violations = (found + report.violations).filter { seen.insert($0).inserted }.prefix(3).map { $0 }
        report.leadersElected = invariants.reduce(0) { $0 + $1.leaders.count }
        report.entriesCommitted = invariants.reduce(0) { $0 + $1.committed.count }
        report.operations = clients.reduce(0) { $0 + $1.history.count }
        if options.keepHistory { report.history = mergedHistory }
        return report
    }

    func log(_ line: @autoclosure () -> String) {
        if options.trace { report.trace.append("\(now): " + line()) }
    }

    var live: [ReplicaID] { ids.filter { !down.contains($0) } }
    /// Live and not paused.
    var running: [ReplicaID] { ids.filter { !down.contains($0) && paused[$0] == nil } }

    private func resumeDue() {
        for id in ids where (paused[id] ?? Int.max) <= now {
            paused[id] = nil
            let waiting = held.removeValue(forKey: id) ?? []
            network[now, default: []] += waiting
            inFlight += waiting.count
            log("resume \(id) (\(waiting.count) messages waiting for it)")
            for g in groups { clients[g].resumed(self, node: id) }
        }
    }
    func leader(_ g: Int) -> ReplicaID? { live.first { nodes[g][$0]!.raft.role == .leader } }
    /// The group a fault that aims at a leader aims at: with one group, no draw (so that
    /// one-group schedules are those of before groups).
    private func someGroup() -> Int { options.groups == 1 ? 0 : rng.below(options.groups) }

    // MARK: Faults and workload

    /// What one step does, drawn by weight out of 100. The table's order is the draw's: a change
    /// of order or weight changes every schedule (and the seeds a failure was reported with).
    public enum StepAction: CaseIterable, Sendable {
        case tick, clientOperations, crashAny, crashLeader, restartDown, partitionHalves, oneWayCut, heal
        case isolateLeaderWithFollower, transferLeadership, backgroundWrite, reboot, pause, suspect, nothing
    }

    public static let stepWeights: [(action: StepAction, weight: UInt64)] = [
        (.tick, 40), (.clientOperations, 14), (.crashAny, 2), (.crashLeader, 4), (.restartDown, 3), (.partitionHalves, 2),
        (.oneWayCut, 1), (.heal, 4), (.isolateLeaderWithFollower, 3), (.transferLeadership, 1), (.backgroundWrite, 8),
        (.reboot, 2), (.pause, 1), (.suspect, 2), (.nothing, 13),
    ]

    public static func action(for roll: UInt64) -> StepAction {
        var left = roll
        for (action, weight) in stepWeights {
            if left < weight { return action }
            left -= weight
        }
        return .nothing
    }

    private func act(_ step: Int) {
        switch Self.action(for: rng.next() % 100) {
        case .tick:
            for id in running {
                for g in groups {
                    nodes[g][id]!.raft.tick()
                    drainTrace(g, id)
                }
            }
        case .clientOperations:
            for g in groups { for c in 0..<options.clients { clients[g].act(self, client: c, newOperations: true) } }
        case .crashAny:
            if down.count < ids.count / 2, !live.isEmpty { crash(rng.pick(live), midWrite: false) }
        case .crashLeader:
            // Crash the leader, often right after it replicated to only some: old-term entries then
            // sit on a minority (Raft Figure 8).
            if down.count < ids.count / 2, let l = leader(someGroup()) { crash(l, midWrite: false) }
        case .restartDown:
            if let id = down.min() { restart(id, step: step) }  // min: a Set's order changes per process
        case .pause:
            // SIGSTOP, then SIGCONT 20-80 steps later; half the time the leader. A stopped leader
            // that resumes still takes itself for leader until it hears otherwise.
            let candidates = running
            if !candidates.isEmpty && down.count + paused.count < ids.count / 2 {
                let id = rng.chance(50) ? (leader(someGroup()).flatMap { paused[$0] == nil ? $0 : nil } ?? rng.pick(candidates)) : rng.pick(candidates)
                paused[id] = now + 20 + rng.below(61)
                report.pauses += 1
                log("pause \(id) until \(paused[id]!)")
            }
        case .reboot:
            // A reboot: the process dies and is back at once (as under Restart=always), while
            // messages sent to it before are still on the wire.
            if down.count < ids.count / 2, !live.isEmpty {
                let id = rng.pick(live)
                crash(id, midWrite: false)
                restart(id, step: step)
            }
        case .partitionHalves:
            for id in ids { side[id] = rng.below(2) }
            log("partition: " + ids.map { "\($0):\(side[$0]!)" }.joined(separator: " "))
        case .oneWayCut:
            guard ids.count > 1 else { break }  // faults between two replicas need two (a one-replica cluster is valid)
            let from = rng.pick(ids), to = rng.pick(ids.filter { $0 != from })
            blocked.insert(Directed(from: from, to: to))
            log("one-way partition: \(from) -/-> \(to)")
            // The cut connection may also close: a mistaken suspicion of a leader that is alive.
            if running.contains(to), rng.chance(50) {
                for g in groups {
                    nodes[g][to]!.raft.peerDisconnected(from)
                    drainTrace(g, to)
                }
            }
        case .suspect:
            // A replica's heartbeat detector declares a peer dead: rightly when it is paused, down
            // or cut off, wrongly (a late beat) otherwise. Half the time the peer is the leader.
            guard ids.count > 1, !running.isEmpty else { break }
            let at = rng.pick(running)
            let others = ids.filter { $0 != at }
            let peer = rng.chance(50) ? (leader(someGroup()).flatMap { $0 != at ? $0 : nil } ?? rng.pick(others)) : rng.pick(others)
            log("\(at)'s detector declares \(peer) dead")
            for g in groups {
                nodes[g][at]!.raft.peerSuspected(peer)
                drainTrace(g, at)
            }
        case .heal:
            for id in ids { side[id] = 0 }
            blocked = []
            log("heal")
        case .isolateLeaderWithFollower:
            // Cut the leader off with one follower: it keeps appending entries of its term that
            // only a minority holds, while the rest elect a new leader.
            if let l = leader(someGroup()), ids.count > 1 {
                for id in ids { side[id] = 0 }
                side[l] = 1
                side[rng.pick(ids.filter { $0 != l })] = 1
                log("leader \(l) cut off with a follower")
            }
        case .backgroundWrite:
            // Background writes from a client outside the checked history: a busier log.
            let g = someGroup()
            if let l = leader(g) {
                background += 1
                let request = KVRequest(client: "background", seq: background, command: .put(key: "w", value: "\(background)"))
                _ = nodes[g][l]!.raft.propose(request.encoded())
            }
        case .transferLeadership:
            let g = someGroup()
            if let l = leader(g), ids.count > 1 {
                let target = rng.pick(ids.filter { $0 != l })
                if case .success = nodes[g][l]!.raft.transferLeadership(to: target) {
                    report.transfers += 1
                    log("leader \(l) of group \(g) asked to transfer to \(target)")
                }
                drainTrace(g, l)
            }
        case .nothing:
            break
        }
    }

    func crash(_ id: ReplicaID, midWrite: Bool) {
        down.insert(id)
        paused[id] = nil
        held[id] = nil
        for g in groups { assembling[Slot(group: g, id: id)] = nil }
        report.crashes += 1
        let what = disks[id]!.crash(&rng)
        if midWrite { report.crashesMidWrite += 1 }
        log("crash \(id)" + (midWrite ? " in the middle of a write: \(what)" : ""))
        for g in groups { clients[g].forget(node: id) }
        // A crashed process's connections close: most peers' transports notice at once.
        for other in running where rng.chance(70) {
            for g in groups {
                nodes[g][other]!.raft.peerDisconnected(id)
                drainTrace(g, other)
            }
        }
    }

    func restart(_ id: ReplicaID, step: Int) {
        down.remove(id)
        let recovered = disks[id]!.recover(groups: options.groups)
        for (g, (hs, snap, entries)) in recovered.enumerated() {
            let c = config(id, group: g, seed: options.seed &+ UInt64(step))
            var node = SimNode(raft: Raft(config: c, hardState: hs, snapshot: snap, entries: entries), sessionLimit: sessionLimit)
            if !snap.isEmpty {
                do { node.state = try KVStateMachine(snapshot: snap.data, sessionLimit: sessionLimit) } catch {
                    report.violations.append("replica \(id) cannot read its own snapshot of group \(g) at \(snap.index): \(error)")
                }
            }
            nodes[g][id] = node
            invariants[g].restarted(id)
            log("restart \(id)\(label(g)) at term \(hs.term) from \(snap.isEmpty ? "no snapshot" : "\(snap)") and \(entries.count) entries")
        }
    }

    /// " of group g" with several groups; nothing with one (traces read as before groups).
    func label(_ g: Int) -> String { options.groups > 1 ? " of group \(g)" : "" }

    private func drainTrace(_ g: Int, _ id: ReplicaID) {
        let lines = nodes[g][id]!.raft.takeTrace()
        if options.trace { for l in lines { log(options.groups > 1 ? "g\(g) " + l : l) } }
    }

    // MARK: Readies

    /// Each running replica's pass, as kvnode's loop makes it: every group's Ready begun (early
    /// messages sent, writes on the disk unsynced), one sync for all of them (a crash may cut the
    /// process before it: every group's unsynced writes are then at the disk's mercy), then each
    /// Ready finished.
    func processReadies() {
        for id in ids where !down.contains(id) && paused[id] == nil {
            var begun: [(group: Int, ready: Raft.Ready, io: SimReadyIO)] = []
            for g in groups where nodes[g][id]!.raft.hasReady {
                let r = nodes[g][id]!.raft.ready()
                // The same routine kvnode runs (ReadyRoutine); only the I/O is the simulator's.
                var io = SimReadyIO(sim: self, id: id, group: g)
                _ = try? ReadyRoutine.begin(r, with: &io)
                begun.append((g, r, io))
            }
            guard !begun.isEmpty else { continue }
            if begun.contains(where: \.io.wrote) && faults && down.count < ids.count / 2 && rng.chance(1) {
                crash(id, midWrite: true)  // before the sync: the rest of these Readies never happens
                continue
            }
            // One sync for every group's writes, skipped as kvnode skips it when nothing must be durable.
            if disks[id]!.mustSync { disks[id]!.sync() }
            for var b in begun {
                ReadyRoutine.finish(b.ready, with: &b.io)
                nodes[b.group][id]!.raft.advance(b.ready)
                drainTrace(b.group, id)
                clients[b.group].serveReads(self, node: id)
                invariants[b.group].sawRole(self, b.group, id)
                takeSnapshotIfDue(b.group, id)
            }
        }
    }

    /// The simulator's side of a Ready: the simulated disk (written here, synced by the pass,
    /// which a crash may cut before the sync), the simulated network, and the replica's store.
    struct SimReadyIO: ReadyIO {
        let sim: Simulation
        let id: ReplicaID
        let group: Int
        /// Something went to the disk: a crash before the sync can lose it.
        var wrote = false

        func send(_ messages: [Message]) { for m in messages { sim.send(group, m) } }

        mutating func persist(snapshot: Snapshot?, hardState: HardState?, entries: [Entry]) -> Bool {
            // Snapshot, entries, then the hard state (its commit covers the entries).
            if let s = snapshot { sim.disks[id]!.write(.snapshot(group, s, replacesLog: true)); wrote = true }
            if !entries.isEmpty { sim.disks[id]!.write(.entries(group, entries)); wrote = true }
            if let hs = hardState { sim.disks[id]!.write(.hardState(group, hs)); wrote = true }
            return true
        }

        func restore(_ snapshot: Snapshot) { sim.installSnapshot(group, id, snapshot) }
        func apply(_ entry: Entry) { sim.apply(group, id, entry) }

        func reads(confirmed: [ReadState], failed: [UInt64]) {
            sim.nodes[group][id]!.confirmedReads += confirmed
            for context in failed { sim.clients[group].readFailed(sim, node: id, context: context) }
        }
    }

    /// A snapshot goes as its chunks (the store's format), each a packet of its own that the
    /// network may lose, delay, duplicate or reorder, then the InstallSnapshot message without its
    /// data; the receiver takes the message only if every chunk came, in order, before it (as
    /// kvnode's stream does).
    fileprivate func send(_ group: Int, _ m: Message) {
        guard case .snapshot(let s) = m.kind, !s.data.isEmpty else { return transmit(.message(group, m)) }
        var r = ByteReader(s.data)
        var seq = 0
        while !r.atEnd, let chunk = try? r.data() {
            transmit(.chunk(group: group, from: m.from, to: m.to, index: s.index, term: s.term, seq: seq, bytes: chunk))
            seq += 1
        }
        transmit(.message(group, Message(from: m.from, to: m.to, term: m.term, kind: .snapshot(Snapshot(index: s.index, term: s.term)))))
    }

    private func transmit(_ p: Packet) {
        if rng.chance(lossPercent) { return }
        // Mostly quick, sometimes slow: a message may arrive after its sender or receiver restarted.
        let delay = rng.chance(10) ? 1 + rng.below(30) : 1 + rng.below(6)
        network[now + delay, default: []].append(p)
        inFlight += 1
        if rng.chance(3) {  // duplicated
            network[now + 1 + rng.below(10), default: []].append(p)
            inFlight += 1
        }
    }

    /// A chunk continues the receiver's snapshot only as the next of the same one; chunk 0 starts
    /// one afresh; anything else breaks it off (the stream would have been cut).
    private func received(chunk bytes: [UInt8], group: Int, from: ReplicaID, to: ReplicaID, index: LogIndex, term: Term, seq: Int) {
        let slot = Slot(group: group, id: to)
        if seq == 0 { assembling[slot] = (from, index, term, 0, [], SnapshotAssembler(sessionLimit: sessionLimit)) }
        guard var a = assembling[slot], a.from == from, a.index == index, a.term == term, a.next == seq else {
            assembling[slot] = nil
            return
        }
        do { try a.assembler.add(bytes) } catch {
            report.violations.append("replica \(to)\(label(group)): chunk \(seq) of snapshot \(term)/\(index) from \(from) does not decode: \(error)")
        }
        a.chunks.append(bytes)
        a.next += 1
        assembling[slot] = a
    }

    /// The InstallSnapshot message: with its data if every chunk arrived, else nil (dropped).
    private func completed(_ group: Int, _ m: Message) -> Message? {
        guard case .snapshot(let s) = m.kind else { return m }
        let slot = Slot(group: group, id: m.to)
        guard let a = assembling[slot], a.from == m.from, a.index == s.index, a.term == s.term, a.assembler.isComplete else {
            log("\(m.to) dropped snapshot \(s.term)/\(s.index)\(label(group)) from \(m.from): its chunks did not all arrive")
            return nil
        }
        assembling[slot] = nil
        var w = ByteWriter()
        for c in a.chunks { w.data(c) }
        return Message(from: m.from, to: m.to, term: m.term, kind: .snapshot(Snapshot(index: s.index, term: s.term, data: w.bytes)))
    }

    fileprivate func installSnapshot(_ g: Int, _ id: ReplicaID, _ s: Snapshot) {
        report.snapshotsInstalled += 1
        do {
            let state = try KVStateMachine(snapshot: s.data, sessionLimit: sessionLimit)
            invariants[g].sawState(self, id, state, index: s.index)
            nodes[g][id]!.state = state
            log("\(id) restored its state\(label(g)) from \(s)")
        } catch {
            report.violations.append("replica \(id) cannot read the snapshot\(label(g)) at \(s.index) it was sent: \(error)")
        }
    }

    fileprivate func apply(_ g: Int, _ id: ReplicaID, _ e: Entry) {
        invariants[g].sawApply(self, id, e)
        let (request, result) = nodes[g][id]!.state.apply(index: e.index.value, e.data)
        invariants[g].sawState(self, id, nodes[g][id]!.state, index: e.index)
        if case .invalid(let why) = result {
            report.violations.append("replica \(id) applied an entry it cannot read\(label(g)) at \(e.index): \(why)")
        }
        clients[g].applied(self, node: id, index: e.index, request: request, result: result)
    }

    private func takeSnapshotIfDue(_ g: Int, _ id: ReplicaID) {
        let n = nodes[g][id]!
        guard n.state.applied >= n.raft.snapshot.index.value + snapshotEvery else { return }
        nodes[g][id]!.raft.compact(through: LogIndex(n.state.applied), data: n.state.snapshot())
        disks[id]!.write(.snapshot(g, nodes[g][id]!.raft.snapshot, replacesLog: false))
        disks[id]!.sync()
        disks[id]!.compact(groups: options.groups)
    }

    func deliver() {
        // Due messages in a shuffled order: reordering within and across links.
        guard var packets = network.removeValue(forKey: now) else { return }
        inFlight -= packets.count
        packets.shuffle(using: &rng)
        for p in packets where !down.contains(p.to) && side[p.to] == side[p.from] && !blocked.contains(Directed(from: p.from, to: p.to)) {
            if paused[p.to] != nil {
                held[p.to, default: []].append(p)
                continue
            }
            switch p {
            case .chunk(let g, let from, let to, let index, let term, let seq, let bytes):
                received(chunk: bytes, group: g, from: from, to: to, index: index, term: term, seq: seq)
            case .message(let g, let original):
                guard let m = completed(g, original) else { continue }
                log(options.groups > 1 ? "g\(g) \(m)" : m.description)
                nodes[g][m.to]!.raft.step(m)
                drainTrace(g, m.to)
            }
        }
    }

    // MARK: The end

    /// Heals every fault and restarts every replica, then runs until all have applied the same
    /// index (a leader of the final term committed everything), giving clients the time to finish.
    private func settle() {
        for id in down.sorted() { restart(id, step: options.steps) }
        for id in paused.keys.sorted() { paused[id] = now }
        resumeDue()
        for id in ids { side[id] = 0 }
        blocked = []
        lossPercent = 0
        faults = false
        log("settle: every fault healed, every replica up")
        for step in 0..<5000 {
            now += 1
            if step % 2 == 0 { for id in live { for g in groups { nodes[g][id]!.raft.tick(); drainTrace(g, id) } } }
            if step % 5 == 0 { for g in groups { for c in 0..<options.clients { clients[g].act(self, client: c, newOperations: false) } } }
            processReadies()
            deliver()
            for g in groups { invariants[g].check(self, g, step: options.steps + step) }
            checkStorm()
            if !report.violations.isEmpty || invariants.contains(where: { !$0.violations.isEmpty }) { return }
            if groups.allSatisfy(converged) && clients.allSatisfy(\.idle) { return }
        }
        for g in groups where !converged(g) {
            report.violations.append("liveness: with every fault healed the replicas\(label(g)) did not converge within 5000 steps ("
                + ids.map { "\($0): \(nodes[g][$0]!.raft.role.rawValue) term \(nodes[g][$0]!.raft.term) applied \(nodes[g][$0]!.state.applied)" }
                    .joined(separator: ", ") + ")")
        }
    }

    private func checkStorm() {
        if inFlight > Self.stormLimit && report.violations.isEmpty {
            report.violations.append("liveness: \(inFlight) messages on the wire at once, a message storm")
        }
    }

    private func converged(_ g: Int) -> Bool {
        guard let l = leader(g) else { return false }
        let last = nodes[g][l]!.raft.log.lastIndex
        return nodes[g][l]!.raft.log.committed == last && ids.allSatisfy { nodes[g][$0]!.state.applied == last.value }
    }

    /// Every group's history; client c of group g is client g * clients + c.
    private var mergedHistory: [Operation<KVModel.Input, KVModel.Output>] {
        groups.flatMap { g in
            clients[g].history.map { op in
                var o = op
                o.client += g * options.clients
                return o
            }
        }
    }

    private func checkOutcome() {
        for g in groups { checkOutcome(g) }
        report.acknowledged = clients.reduce(0) { $0 + $1.acknowledged.count }
        report.readIndexReads = clients.reduce(0) { $0 + $1.readIndexReads }
        report.staleReads = clients.reduce(0) { $0 + $1.staleReads }
        report.anonymousWrites = clients.reduce(0) { $0 + $1.anonymousWrites }
        report.expiredRetries = clients.reduce(0) { $0 + $1.expiredRetries }
        report.sessionsExpired = groups.reduce(0) { sum, g in sum + (ids.map { nodes[g][$0]!.state.evictions }.max() ?? 0) }
        // Keys are per group, and the checker checks each key on its own: one check covers them all.
        let result = Checker.check(KVModel(), mergedHistory, limits: CheckLimits(timeoutNs: 20_000_000_000))
        report.linearizable = result.verdict
        if result.verdict == .notLinearizable {
            let keys = result.keys.filter { $0.verdict == .notLinearizable }.map(\.key)
            report.violations.append("the clients' history is not linearizable (keys \(keys.joined(separator: ", "))); "
                + "kvctl sim schedules --seed \(options.seed) --count 1 --history FILE writes it for kvctl check")
        }
    }

    private func checkOutcome(_ g: Int) {
        let reference = nodes[g][ids[0]]!.state
        for id in ids.dropFirst() where nodes[g][id]!.state != reference {
            report.violations.append("replicas \(ids[0]) and \(id)\(label(g)) both applied through index \(reference.applied) and hold different states")
        }
        for ack in clients[g].acknowledged {
            for id in ids where nodes[g][id]!.state.applied >= ack.index.value {
                let state = nodes[g][id]!.state
                let seen = state.sessions[ack.client]?.seq ?? 0
                // A session that expired after the write took its record with it (the store's rule).
                let expired = state.sessions[ack.client] == nil && state.expiredThrough >= ack.index.value
                if seen < ack.seq && !expired {
                    report.violations.append("acknowledged write lost\(label(g)): \(ack.client) #\(ack.seq) (index \(ack.index)) is not in replica \(id), which applied through \(state.applied)")
                }
            }
        }
    }
}

/// What the simulated network carries: Raft messages, and the chunks snapshots travel in.
enum Packet {
    case message(Int, Message)
    case chunk(group: Int, from: ReplicaID, to: ReplicaID, index: LogIndex, term: Term, seq: Int, bytes: [UInt8])

    var from: ReplicaID { switch self { case .message(_, let m): m.from; case .chunk(_, let f, _, _, _, _, _): f } }
    var to: ReplicaID { switch self { case .message(_, let m): m.to; case .chunk(_, _, let t, _, _, _, _): t } }
}

/// One replica: its consensus state and its store.
struct SimNode {
    init(raft: Raft, sessionLimit: Int) { self.raft = raft; state = KVStateMachine(sessionLimit: sessionLimit) }
    var raft: Raft
    var state: KVStateMachine
    /// ReadIndex answers waiting until the store has applied their index.
    var confirmedReads: [ReadState] = []
    /// For the planted bug `anonymousCounter`: a per-process counter, reset by a restart.
    var anonymousCounter: UInt64 = 0
}
