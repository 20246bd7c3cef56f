import BinaryCodec
import KVStore
import Linearizability
import Raft

/// What one schedule is: its seed decides everything else.
public struct ScheduleOptions: Sendable {
    public var seed: UInt64
    public var size: Int
    public var steps = 1500
    public var clients = 3
    /// Record a step-by-step trace (for replaying one schedule by hand).
    public var trace = false
    /// Keep the clients' history in the report (to write it out for `kvctl check`).
    public var keepHistory = false
    /// Adjusts every replica's config (the planted-bug tests use it).
    public var configure: @Sendable (inout Raft.Config) -> Void = { _ in }

    public init(seed: UInt64, size: Int? = nil) {
        self.seed = seed
        self.size = size ?? (seed % 2 == 0 ? 3 : 5)
    }
}

public struct ScheduleReport: Sendable {
    public var seed: UInt64
    public var size: Int
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
    /// The clients' history checked by the linearizability checker (nil: the check did not run,
    /// because an invariant failed first).
    public var linearizable: Verdict?
    /// With `keepHistory`: every client operation.
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
public final class Simulation {
    struct Directed: Hashable { var from: ReplicaID; var to: ReplicaID }

    let options: ScheduleOptions
    var rng: SimRandom
    let ids: [ReplicaID]
    var nodes: [ReplicaID: SimNode] = [:]
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
    var assembling: [ReplicaID: (from: ReplicaID, index: LogIndex, term: Term, next: Int, chunks: [[UInt8]], assembler: SnapshotAssembler)] = [:]
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
    var clients: Clients
    var background: UInt64 = 0
    var report: ScheduleReport
    var invariants = Invariants()

    public init(_ options: ScheduleOptions) {
        self.options = options
        rng = SimRandom(seed: options.seed)
        ids = Array(1...options.size)
        // Small appends split a new leader's catch-up: old-term entries then reach a quorum before
        // its no-op does, the case the current-term commit rule exists for.
        maxEntries = [1, 2, 64][Int(options.seed % 3)]
        snapshotEvery = [8, 20, 1000][Int(options.seed / 3 % 3)]
        sessionLimit = options.seed % 3 == 1 ? 4 : KVStateMachine.defaultSessionLimit
        clients = Clients(count: options.clients, nodes: ids)
        report = ScheduleReport(seed: options.seed, size: options.size)
        for id in ids {
            nodes[id] = SimNode(raft: Raft(config: config(id, seed: options.seed)), sessionLimit: sessionLimit)
            disks[id] = SimDisk()
            side[id] = 0
        }
    }

    func config(_ id: ReplicaID, seed: UInt64) -> Raft.Config {
        var c = Raft.Config(id: id, voters: ids)
        c.seed = seed
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
            invariants.check(self, step: step)
            checkStorm()
            if !report.violations.isEmpty || !invariants.violations.isEmpty { return finish() }
        }
        settle()
        if report.violations.isEmpty && invariants.violations.isEmpty { checkOutcome() }
        return finish()
    }

    private func finish() -> ScheduleReport {
        // The first few distinct violations: the rest follow from them.
        var seen = Set<String>()
        report.violations = (invariants.violations + report.violations).filter { seen.insert($0).inserted }.prefix(3).map { $0 }
        report.leadersElected = invariants.leaders.count
        report.entriesCommitted = invariants.committed.count
        report.operations = clients.history.count
        if options.keepHistory { report.history = clients.history }
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
            clients.resumed(self, node: id)
        }
    }
    var leader: ReplicaID? { live.first { nodes[$0]!.raft.role == .leader } }

    // MARK: Faults and workload

    /// What one step does, drawn by weight out of 100. The table's order is the draw's: a change
    /// of order or weight changes every schedule (and the seeds a failure was reported with).
    public enum StepAction: CaseIterable, Sendable {
        case tick, clientOperations, crashAny, crashLeader, restartDown, partitionHalves, oneWayCut, heal
        case isolateLeaderWithFollower, transferLeadership, backgroundWrite, reboot, pause, nothing
    }

    public static let stepWeights: [(action: StepAction, weight: UInt64)] = [
        (.tick, 40), (.clientOperations, 14), (.crashAny, 2), (.crashLeader, 4), (.restartDown, 3), (.partitionHalves, 2),
        (.oneWayCut, 1), (.heal, 4), (.isolateLeaderWithFollower, 3), (.transferLeadership, 1), (.backgroundWrite, 8),
        (.reboot, 2), (.pause, 1), (.nothing, 15),
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
                nodes[id]!.raft.tick()
                drainTrace(id)
            }
        case .clientOperations:
            for c in 0..<options.clients { clients.act(self, client: c, newOperations: true) }
        case .crashAny:
            if down.count < ids.count / 2, !live.isEmpty { crash(rng.pick(live), midWrite: false) }
        case .crashLeader:
            // Crash the leader, often right after it replicated to only some: old-term entries then
            // sit on a minority (Raft Figure 8).
            if down.count < ids.count / 2, let l = leader { crash(l, midWrite: false) }
        case .restartDown:
            if let id = down.min() { restart(id, step: step) }  // min: a Set's order changes per process
        case .pause:
            // SIGSTOP, then SIGCONT 20-80 steps later; half the time the leader. A stopped leader
            // that resumes still takes itself for leader until it hears otherwise.
            let candidates = running
            if !candidates.isEmpty && down.count + paused.count < ids.count / 2 {
                let id = rng.chance(50) ? (leader.flatMap { paused[$0] == nil ? $0 : nil } ?? rng.pick(candidates)) : rng.pick(candidates)
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
                nodes[to]!.raft.peerDisconnected(from)
                drainTrace(to)
            }
        case .heal:
            for id in ids { side[id] = 0 }
            blocked = []
            log("heal")
        case .isolateLeaderWithFollower:
            // Cut the leader off with one follower: it keeps appending entries of its term that
            // only a minority holds, while the rest elect a new leader.
            if let l = leader, ids.count > 1 {
                for id in ids { side[id] = 0 }
                side[l] = 1
                side[rng.pick(ids.filter { $0 != l })] = 1
                log("leader \(l) cut off with a follower")
            }
        case .backgroundWrite:
            // Background writes from a client outside the checked history: a busier log.
            if let l = leader {
                background += 1
                let request = KVRequest(client: "background", seq: background, command: .put(key: "w", value: "\(background)"))
                _ = nodes[l]!.raft.propose(request.encoded())
            }
        case .transferLeadership:
            if let l = leader, ids.count > 1 {
                let target = rng.pick(ids.filter { $0 != l })
                if case .success = nodes[l]!.raft.transferLeadership(to: target) {
                    report.transfers += 1
                    log("leader \(l) asked to transfer to \(target)")
                }
                drainTrace(l)
            }
        case .nothing:
            break
        }
    }

    func crash(_ id: ReplicaID, midWrite: Bool) {
        down.insert(id)
        paused[id] = nil
        held[id] = nil
        assembling[id] = nil
        report.crashes += 1
        let what = disks[id]!.crash(&rng)
        if midWrite { report.crashesMidWrite += 1 }
        log("crash \(id)" + (midWrite ? " in the middle of a write: \(what)" : ""))
        clients.forget(node: id)
        // A crashed process's connections close: most peers' transports notice at once.
        for other in running where rng.chance(70) {
            nodes[other]!.raft.peerDisconnected(id)
            drainTrace(other)
        }
    }

    func restart(_ id: ReplicaID, step: Int) {
        down.remove(id)
        let (hs, snap, entries) = disks[id]!.recover()
        var node = SimNode(raft: Raft(config: config(id, seed: options.seed &+ UInt64(step)), hardState: hs, snapshot: snap, entries: entries),
                           sessionLimit: sessionLimit)
        if !snap.isEmpty {
            do { node.state = try KVStateMachine(snapshot: snap.data, sessionLimit: sessionLimit) } catch {
                report.violations.append("replica \(id) cannot read its own snapshot at \(snap.index): \(error)")
            }
        }
        nodes[id] = node
        invariants.restarted(id)
        log("restart \(id) at term \(hs.term) from \(snap.isEmpty ? "no snapshot" : "\(snap)") and \(entries.count) entries")
    }

    private func drainTrace(_ id: ReplicaID) {
        let lines = nodes[id]!.raft.takeTrace()
        if options.trace { for l in lines { log(l) } }
    }

    // MARK: Readies

    func processReadies() {
        for id in ids where !down.contains(id) && paused[id] == nil && nodes[id]!.raft.hasReady {
            let r = nodes[id]!.raft.ready()
            // The same routine kvnode runs (ReadyRoutine); only the I/O is the simulator's.
            var io = SimReadyIO(sim: self, id: id)
            guard (try? ReadyRoutine.carryOut(r, with: &io)) == true else { continue }  // crashed before the sync
            nodes[id]!.raft.advance(r)
            drainTrace(id)
            clients.serveReads(self, node: id)
            invariants.sawRole(self, id)
            takeSnapshotIfDue(id)
        }
    }

    /// The simulator's side of a Ready: the simulated disk (which a crash may cut before the
    /// sync), the simulated network, and the replica's store.
    struct SimReadyIO: ReadyIO {
        let sim: Simulation
        let id: ReplicaID

        func send(_ messages: [Message]) { for m in messages { sim.send(m) } }

        func persist(snapshot: Snapshot?, hardState: HardState?, entries: [Entry]) -> Bool {
            // Snapshot, entries, then the hard state (its commit covers the entries).
            var wrote = false
            if let s = snapshot { sim.disks[id]!.write(.snapshot(s)); wrote = true }
            if !entries.isEmpty { sim.disks[id]!.write(.entries(entries)); wrote = true }
            if let hs = hardState { sim.disks[id]!.write(.hardState(hs)); wrote = true }
            if wrote && sim.faults && sim.down.count < sim.ids.count / 2 && sim.rng.chance(1) {
                sim.crash(id, midWrite: true)  // before the sync: the rest of this Ready never happens
                return false
            }
            sim.disks[id]!.sync()
            return true
        }

        func restore(_ snapshot: Snapshot) { sim.installSnapshot(id, snapshot) }
        func apply(_ entry: Entry) { sim.apply(id, entry) }

        func reads(confirmed: [ReadState], failed: [UInt64]) {
            sim.nodes[id]!.confirmedReads += confirmed
            for context in failed { sim.clients.readFailed(sim, node: id, context: context) }
        }
    }

    /// A snapshot goes as its chunks (the store's format), each a packet of its own that the
    /// network may lose, delay, duplicate or reorder, then the InstallSnapshot message without its
    /// data; the receiver takes the message only if every chunk came, in order, before it (as
    /// kvnode's stream does).
    fileprivate func send(_ m: Message) {
        guard case .snapshot(let s) = m.kind, !s.data.isEmpty else { return transmit(.message(m)) }
        var r = ByteReader(s.data)
        var seq = 0
        while !r.atEnd, let chunk = try? r.data() {
            transmit(.chunk(from: m.from, to: m.to, index: s.index, term: s.term, seq: seq, bytes: chunk))
            seq += 1
        }
        transmit(.message(Message(from: m.from, to: m.to, term: m.term, kind: .snapshot(Snapshot(index: s.index, term: s.term)))))
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
    private func received(chunk bytes: [UInt8], from: ReplicaID, to: ReplicaID, index: LogIndex, term: Term, seq: Int) {
        if seq == 0 { assembling[to] = (from, index, term, 0, [], SnapshotAssembler(sessionLimit: sessionLimit)) }
        guard var a = assembling[to], a.from == from, a.index == index, a.term == term, a.next == seq else {
            assembling[to] = nil
            return
        }
        do { try a.assembler.add(bytes) } catch {
            report.violations.append("replica \(to): chunk \(seq) of snapshot \(term)/\(index) from \(from) does not decode: \(error)")
        }
        a.chunks.append(bytes)
        a.next += 1
        assembling[to] = a
    }

    /// The InstallSnapshot message: with its data if every chunk arrived, else nil (dropped).
    private func completed(_ m: Message) -> Message? {
        guard case .snapshot(let s) = m.kind else { return m }
        guard let a = assembling[m.to], a.from == m.from, a.index == s.index, a.term == s.term, a.assembler.isComplete else {
            log("\(m.to) dropped snapshot \(s.term)/\(s.index) from \(m.from): its chunks did not all arrive")
            return nil
        }
        assembling[m.to] = nil
        var w = ByteWriter()
        for c in a.chunks { w.data(c) }
        return Message(from: m.from, to: m.to, term: m.term, kind: .snapshot(Snapshot(index: s.index, term: s.term, data: w.bytes)))
    }

    fileprivate func installSnapshot(_ id: ReplicaID, _ s: Snapshot) {
        report.snapshotsInstalled += 1
        do {
            let state = try KVStateMachine(snapshot: s.data, sessionLimit: sessionLimit)
            invariants.sawState(self, id, state, index: s.index)
            nodes[id]!.state = state
            log("\(id) restored its state from \(s)")
        } catch {
            report.violations.append("replica \(id) cannot read the snapshot at \(s.index) it was sent: \(error)")
        }
    }

    fileprivate func apply(_ id: ReplicaID, _ e: Entry) {
        invariants.sawApply(self, id, e)
        let (request, result) = nodes[id]!.state.apply(index: e.index.value, e.data)
        invariants.sawState(self, id, nodes[id]!.state, index: e.index)
        if case .invalid(let why) = result { report.violations.append("replica \(id) applied an entry it cannot read at \(e.index): \(why)") }
        clients.applied(self, node: id, index: e.index, request: request, result: result)
    }

    private func takeSnapshotIfDue(_ id: ReplicaID) {
        let n = nodes[id]!
        guard n.state.applied >= n.raft.snapshot.index.value + snapshotEvery else { return }
        nodes[id]!.raft.compact(through: LogIndex(n.state.applied), data: n.state.snapshot())
        disks[id]!.write(.snapshot(nodes[id]!.raft.snapshot))
        disks[id]!.sync()
        disks[id]!.compact()
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
            case .chunk(let from, let to, let index, let term, let seq, let bytes):
                received(chunk: bytes, from: from, to: to, index: index, term: term, seq: seq)
            case .message(let original):
                guard let m = completed(original) else { continue }
                log(m.description)
                nodes[m.to]!.raft.step(m)
                drainTrace(m.to)
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
            if step % 2 == 0 { for id in live { nodes[id]!.raft.tick(); drainTrace(id) } }
            if step % 5 == 0 { for c in 0..<options.clients { clients.act(self, client: c, newOperations: false) } }
            processReadies()
            deliver()
            invariants.check(self, step: options.steps + step)
            checkStorm()
            if !report.violations.isEmpty || !invariants.violations.isEmpty { return }
            if converged && clients.idle { return }
        }
        if !converged {
            report.violations.append("liveness: with every fault healed the replicas did not converge within 5000 steps ("
                + ids.map { "\($0): \(nodes[$0]!.raft.role.rawValue) term \(nodes[$0]!.raft.term) applied \(nodes[$0]!.state.applied)" }.joined(separator: ", ") + ")")
        }
    }

    private func checkStorm() {
        if inFlight > Self.stormLimit && report.violations.isEmpty {
            report.violations.append("liveness: \(inFlight) messages on the wire at once, a message storm")
        }
    }

    private var converged: Bool {
        guard let l = leader else { return false }
        let last = nodes[l]!.raft.log.lastIndex
        return nodes[l]!.raft.log.committed == last && ids.allSatisfy { nodes[$0]!.state.applied == last.value }
    }

    private func checkOutcome() {
        let reference = nodes[ids[0]]!.state
        for id in ids.dropFirst() where nodes[id]!.state != reference {
            report.violations.append("replicas \(ids[0]) and \(id) both applied through index \(reference.applied) and hold different states")
        }
        for ack in clients.acknowledged {
            for id in ids where nodes[id]!.state.applied >= ack.index.value {
                let state = nodes[id]!.state
                let seen = state.sessions[ack.client]?.seq ?? 0
                // A session that expired after the write took its record with it (the store's rule).
                let expired = state.sessions[ack.client] == nil && state.expiredThrough >= ack.index.value
                if seen < ack.seq && !expired {
                    report.violations.append("acknowledged write lost: \(ack.client) #\(ack.seq) (index \(ack.index)) is not in replica \(id), which applied through \(nodes[id]!.state.applied)")
                }
            }
        }
        report.acknowledged = clients.acknowledged.count
        report.readIndexReads = clients.readIndexReads
        report.staleReads = clients.staleReads
        report.anonymousWrites = clients.anonymousWrites
        report.expiredRetries = clients.expiredRetries
        report.sessionsExpired = ids.map { nodes[$0]!.state.evictions }.max() ?? 0
        let result = Checker.check(KVModel(), clients.history, limits: CheckLimits(timeoutNs: 20_000_000_000))
        report.linearizable = result.verdict
        if result.verdict == .notLinearizable {
            let keys = result.keys.filter { $0.verdict == .notLinearizable }.map(\.key)
            report.violations.append("the clients' history is not linearizable (keys \(keys.joined(separator: ", "))); "
                + "kvctl sim schedules --seed \(options.seed) --count 1 --history FILE writes it for kvctl check")
        }
    }
}

/// What the simulated network carries: Raft messages, and the chunks snapshots travel in.
enum Packet {
    case message(Message)
    case chunk(from: ReplicaID, to: ReplicaID, index: LogIndex, term: Term, seq: Int, bytes: [UInt8])

    var from: ReplicaID { switch self { case .message(let m): m.from; case .chunk(let f, _, _, _, _, _): f } }
    var to: ReplicaID { switch self { case .message(let m): m.to; case .chunk(_, let t, _, _, _, _): t } }
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
