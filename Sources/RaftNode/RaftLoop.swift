import Core
import KVStore
import Raft
import RaftStorage
import NIOCore
import NIOPosix
import Synchronization

/// What a client request came to.
enum KVReply: Sendable, Equatable {
    /// A write was applied at `index` (a retry gets the first answer).
    case applied(KVResult, index: LogIndex)
    /// A read's value (nil: absent), as of `index`.
    case value(String?, index: LogIndex)
    case notLeader(leader: ReplicaID?)
    /// Leadership is moving; ask again shortly.
    case transferring
    /// The deadline passed before the outcome was known: the write may or may not be applied.
    /// A retry with the same (client_id, seq) is applied at most once.
    case timedOut
    /// Refused before it reached the log (too much is waiting for a quorum, or for an answer);
    /// nothing was applied, retry later.
    case overloaded(String)
}

/// A GET's consistency: the node's `read_policy`, or the request's `?consistency=`.
typealias ReadConsistency = ReadPolicy

/// The node's state as the HTTP API and events see it, refreshed by the loop after each pass.
struct RaftStatus: Sendable, Equatable {
    var role: Role = .follower
    var term: Term = 0
    var leader: ReplicaID?
    var commit: LogIndex = 0
    var applied: LogIndex = 0
    var lastIndex: LogIndex = 0
    var snapshotIndex: LogIndex = 0
    var keys = 0
    var syncs = 0
    var entriesWritten = 0
    var batches = 0
    /// Snapshots received from a leader (InstallSnapshot) since start.
    var snapshotsReceived = 0
}

/// What the loop itself times and bounds (heartbeat and election timeouts are `Raft.Config`'s, in ticks).
struct RaftTiming: Sendable {
    var tickMs = RaftSettings().tickMs
    /// Compact the log once this many entries were applied since the last snapshot.
    var snapshotEntries = RaftSettings().snapshotEntries
    /// A request whose outcome is not known by then is answered `timedOut`.
    var requestTimeoutMs = RaftSettings().requestTimeoutMs
    /// Compact the log once the applied entries since the last snapshot hold this many bytes, or
    /// a quarter of the store if that is more, so that the log never keeps in memory much more
    /// than the snapshot already holds.
    var snapshotBytes = 64 << 20
    /// Writes waiting for their answer; past this, new ones get 503 instead of an unbounded queue.
    var maxPendingWrites = 10_000
}

/// The one thread that owns the Raft value, the disk and the store, and carries out each Ready
/// in etcd's order: leader's appends go out while its own disk write runs (Raft thesis §10.2.1;
/// they count toward a quorum only once stable), then the write and one fdatasync for the whole
/// batch (group commit: every request that arrived during the last sync is in this one), then
/// every other message (votes and answers leave only after what they promise is on disk), then
/// apply, answer, advance.
final class RaftLoop: @unchecked Sendable {
    enum Input {
        case message(Message)
        case write(KVRequest, Continuation)
        case read(key: String, ReadConsistency, Continuation)
        /// A connection that carried this peer's messages closed.
        case peerDisconnected(ReplicaID)
        /// A leader's InstallSnapshot, its file complete and synced at `tempPath`, its store built.
        case snapshotReceived(Message, KVStateMachine, tempPath: String)
        /// A snapshot stream to this peer broke off.
        case snapshotSendFailed(ReplicaID)
    }
    typealias Continuation = CheckedContinuation<KVReply, Never>

    struct RoleChange: Sendable {
        enum Kind: Sendable { case elected, lost }
        var kind: Kind
        var leader: ReplicaID
        var term: Term
        var at: MonotonicNanos
    }

    let id: ReplicaID
    let status = Mutex(RaftStatus())
    private let inbox = Mutex<[Input]>([])
    /// The one thread that runs everything below; the peer transport's connections live on it too,
    /// so the messages of a Ready are written without another thread hop.
    let eventLoop: any EventLoop
    private let drainScheduled = Atomic<Bool>(false)
    private var lastTick: MonotonicNanos = 0
    private let timing: RaftTiming

    // Owned by the loop thread.
    private var raft: Raft
    private let storage: DiskStorage
    private var store: KVStateMachine
    private var transport: PeerTransport?
    private var onRoleChange: @Sendable (RoleChange) -> Void = { _ in }
    private var onStatus: @Sendable (RaftStatus) -> Void = { _ in }
    private var reported = RaftStatus()
    private var reportedAt: MonotonicNanos = 0
    private var onFatal: @Sendable (String) -> Never
    private struct PendingWrite {
        var term: Term; var client: String; var seq: UInt64; var digest: UInt64; var deadline: MonotonicNanos; var reply: Continuation
    }
    private struct PendingRead { var key: String; var deadline: MonotonicNanos; var reply: Continuation }
    private var writes: [LogIndex: PendingWrite] = [:]
    /// A received snapshot's store, between its install on disk and its restore in a Ready.
    private var installed: KVStateMachine?
    private var reads: [UInt64: PendingRead] = [:]
    private var confirmed: [(index: LogIndex, read: PendingRead)] = []
    private var nextReadContext: UInt64 = 1
    private var snapshotsReceived = 0
    /// Received snapshots handed to Raft and not yet taken or refused, by (index, term).
    private var prepared: [LogIndex: (term: Term, state: KVStateMachine, tempPath: String)] = [:]
    /// A snapshot of this node's own store is being written on a worker.
    private var snapshotting = false
    /// After a failed snapshot (out of file descriptors, a full disk), not before this.
    private var nextSnapshotAttempt: MonotonicNanos = 0
    private let report: @Sendable (String) -> Void
    /// Workers for snapshot files (writing this node's, reading received ones), and for streams to peers.
    let pool: NIOThreadPool
    let streamPool: NIOThreadPool
    private var lastRole: Role = .follower
    private var lastLeader: ReplicaID?

    /// `state` is the store as the recovered snapshot holds it. Raft's snapshots carry no data
    /// here: the state lives in snapshot files, written, sent and read one chunk at a time.
    init(config: Raft.Config, timing: RaftTiming, storage: DiskStorage, recovered: Recovered, state: KVStateMachine,
         eventLoop: any EventLoop, pool: NIOThreadPool, streamPool: NIOThreadPool, report: @escaping @Sendable (String) -> Void,
         onFatal: @escaping @Sendable (String) -> Never) {
        self.eventLoop = eventLoop
        self.report = report
        self.id = config.id
        self.timing = timing
        self.storage = storage
        self.pool = pool
        self.streamPool = streamPool
        self.onFatal = onFatal
        raft = Raft(config: config, hardState: recovered.hardState, snapshot: Snapshot(index: recovered.snapshot.index, term: recovered.snapshot.term),
                    entries: recovered.entries)
        store = state
    }

    /// `onStatus` hears of role, term and leader changes at once, of index changes at most every
    /// 100 ms, and of the status unchanged every second.
    func start(transport: PeerTransport, onRoleChange: @escaping @Sendable (RoleChange) -> Void,
               onStatus: @escaping @Sendable (RaftStatus) -> Void) {
        self.transport = transport
        self.onRoleChange = onRoleChange
        self.onStatus = onStatus
        eventLoop.execute {
            self.lastTick = monotonicNow()
            self.refreshStatus()
            let tick = TimeAmount.milliseconds(Int64(self.timing.tickMs))
            self.eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in self.ticked() }
        }
    }

    /// Queues an input; the loop takes every queued input in one pass (one Ready, one sync).
    func submit(_ input: Input) {
        inbox.withLock { $0.append(input) }
        if !drainScheduled.exchange(true, ordering: .acquiringAndReleasing) {
            eventLoop.execute { self.drain() }
        }
    }

    func request(_ make: (Continuation) -> Input) async -> KVReply {
        await withCheckedContinuation { c in submit(make(c)) }
    }

    // MARK: The loop

    private func drain() {
        drainScheduled.store(false, ordering: .sequentiallyConsistent)
        let inputs = inbox.withLock { box -> [Input] in
            defer { box.removeAll(keepingCapacity: true) }
            return box
        }
        let now = monotonicNow()
        for input in inputs { handle(input, now: now) }
        afterInput()
    }

    /// Every tick that came due: a node resumed after SIGSTOP catches up on the ticks it missed, so
    /// a stopped leader's check-quorum fires as soon as it runs.
    private func ticked() {
        let tickNs = Int64(timing.tickMs) * 1_000_000
        let now = monotonicNow()
        while now - lastTick >= tickNs {
            raft.tick()
            lastTick += tickNs
        }
        expire(now: now)
        afterInput()
    }

    private func afterInput() {
        do {
            while raft.hasReady { try process(raft.ready()) }
        } catch {
            onFatal("cannot write to the data directory: \(error). Stopping: a node that cannot persist must not vote or acknowledge")
        }
        // Received snapshots Raft did not take (it had caught up meanwhile, or the term moved on).
        for (_, p) in prepared { SnapshotFile.discard(p.tempPath) }
        prepared = [:]
        // The core's notes would pile up unread; refusals of what no correct peer sends are worth a line.
        for line in raft.takeTrace() where line.contains("refused") { report(line) }
        noticeRoleChange()
        refreshStatus()
    }

    private func handle(_ input: Input, now: MonotonicNanos) {
        let deadline = now + Int64(timing.requestTimeoutMs) * 1_000_000
        switch input {
        case .message(let m):
            raft.step(m)
        case .peerDisconnected(let peer):
            raft.peerDisconnected(peer)
        case .snapshotSendFailed(let peer):
            raft.reportSnapshotFailed(to: peer)
        case .snapshotReceived(let m, let state, let tempPath):
            guard case .snapshot(let s) = m.kind else { return }
            if let old = prepared[s.index], old.tempPath != tempPath { SnapshotFile.discard(old.tempPath) }
            prepared[s.index] = (s.term, state, tempPath)
            raft.step(m)
        case .write(let request, let reply):
            guard writes.count < timing.maxPendingWrites else {
                reply.resume(returning: .overloaded("\(writes.count) writes are waiting for their answer"))
                return
            }
            let entry = request.encoded()
            switch raft.propose(entry) {
            case .success(let index):
                // An earlier waiter at this index belonged to an entry that was overwritten.
                writes[index]?.reply.resume(returning: .notLeader(leader: raft.leader))
                writes[index] = PendingWrite(term: raft.term, client: request.client, seq: request.seq,
                                             digest: KVStateMachine.digest(entry), deadline: deadline, reply: reply)
            case .failure(let e): reply.resume(returning: Self.refusal(e))
            }
        case .read(let key, .stale, let reply):
            reply.resume(returning: .value(store.get(key), index: LogIndex(store.applied)))
        case .read(let key, .linearizable, let reply):
            let context = nextReadContext
            nextReadContext += 1
            switch raft.readIndex(context) {
            case .success: reads[context] = PendingRead(key: key, deadline: deadline, reply: reply)
            case .failure(let e): reply.resume(returning: Self.refusal(e))
            }
        }
    }

    private static func refusal(_ e: Raft.ProposeError) -> KVReply {
        switch e {
        case .notLeader(let l): return .notLeader(leader: l)
        case .transferring: return .transferring
        case .unknownReplica: return .notLeader(leader: nil)
        case .overloaded: return .overloaded("\(e): the quorum is slow or unreachable")
        }
    }

    private func process(_ rd: Raft.Ready) throws {
        // The order and the rules are ReadyRoutine's (the simulator runs the same); this is the I/O.
        var io = LoopReadyIO(loop: self, leader: raft.leader)
        try ReadyRoutine.carryOut(rd, with: &io)
        raft.advance(rd)
        serveConfirmedReads()
        maybeCompact()
    }

    /// kvnode's side of a Ready: the peer transport (snapshots stream from their file on a
    /// worker), the disk, and the store with the writes and reads waiting on it. It never touches
    /// `raft`, which is the routine's caller's until `advance`.
    private struct LoopReadyIO: ReadyIO {
        unowned let loop: RaftLoop
        /// For answers to writes that lost their place: who to ask instead.
        let leader: ReplicaID?

        func send(_ messages: [Message]) {
            var rest = messages
            // InstallSnapshot goes as a stream of chunks from the snapshot file, on a worker.
            rest.removeAll { m in
                guard case .snapshot(let s) = m.kind else { return false }
                loop.transport?.sendSnapshot(m, path: loop.storage.snapshotPath(index: s.index, term: s.term), pool: loop.streamPool) {
                    [weak loop] in loop?.submit(.snapshotSendFailed(m.to))
                }
                return true
            }
            if !rest.isEmpty { loop.transport?.send(rest) }
        }

        func persist(snapshot: Snapshot?, hardState: HardState?, entries: [Entry]) throws -> Bool {
            if let s = snapshot {
                guard let p = loop.prepared.removeValue(forKey: s.index), p.term == s.term else {
                    loop.onFatal("Raft installed snapshot \(s.term)/\(s.index), which this node did not receive")
                }
                try loop.storage.install(snapshotAt: p.tempPath, index: s.index, term: s.term, replacesLog: true)
                loop.installed = p.state
            }
            try loop.storage.save(hardState: hardState, entries: entries)
            return true
        }

        func restore(_ snapshot: Snapshot) {
            guard let state = loop.installed else { return }
            loop.installed = nil
            loop.snapshotsReceived += 1
            loop.store = state
            for (index, w) in loop.writes where index <= snapshot.index {
                loop.writes[index] = nil
                loop.answerFromSession(w, index: index)
            }
        }

        func apply(_ e: Entry) {
            let (_, result) = loop.store.apply(index: e.index.value, e.data)
            if let w = loop.writes.removeValue(forKey: e.index) {
                w.reply.resume(returning: w.term == e.term ? .applied(result, index: e.index) : .notLeader(leader: leader))
            }
        }

        func reads(confirmed: [ReadState], failed: [UInt64]) {
            for rs in confirmed {
                guard let r = loop.reads.removeValue(forKey: rs.context) else { continue }
                loop.confirmed.append((rs.index, r))
            }
            for context in failed {
                loop.reads.removeValue(forKey: context)?.reply.resume(returning: .notLeader(leader: leader))
            }
        }
    }

    /// A write whose entry arrived inside a snapshot: its answer is in the session table, if the
    /// client has not moved on.
    private func answerFromSession(_ w: PendingWrite, index: LogIndex) {
        if let s = store.sessions[w.client], s.seq == w.seq {
            // The session's answer is this write's only if the session's entry was this one.
            let conflict = s.digest != 0 && s.digest != w.digest
            w.reply.resume(returning: .applied(conflict ? .sequenceConflict(seq: w.seq) : s.result, index: index))
        } else {
            w.reply.resume(returning: .timedOut)
        }
    }

    private func serveConfirmedReads() {
        let applied = LogIndex(store.applied)
        guard confirmed.contains(where: { $0.index <= applied }) else { return }
        confirmed.removeAll { item in
            guard item.index <= applied else { return false }
            item.read.reply.resume(returning: .value(store.get(item.read.key), index: applied))
            return true
        }
    }

    /// Snapshots the store once enough was applied since the last one, on a worker: the store is
    /// copied (its storage shared until the next write changes it), written chunk by chunk, synced,
    /// and only then installed and the log compacted, here on the loop. The loop goes on meanwhile,
    /// so a large store's snapshot does not hold up heartbeats.
    private func maybeCompact() {
        guard !snapshotting, monotonicNow() >= nextSnapshotAttempt else { return }
        let applied = LogIndex(store.applied)
        let dueByCount = applied.value >= raft.snapshot.index.value + UInt64(timing.snapshotEntries)
        // By size: once the log since the snapshot holds a quarter of the store (and at least
        // snapshotBytes), so that the log costs at most a quarter more memory than the data, while
        // each snapshot (which writes the whole store) pays for a quarter of it in new log: the
        // disk writes four bytes of snapshot per byte of log at worst, not one per 64 MiB.
        let sizeBound = max(timing.snapshotBytes, store.dataBytes / 4)
        // byteCount first: the exact sum walks the log, and is needed only when the whole log is that large.
        let dueBySize = raft.log.byteCount >= sizeBound
            && raft.log.bytes(after: raft.snapshot.index, through: applied) >= sizeBound
        guard dueByCount || dueBySize, applied > raft.snapshot.index, let term = raft.log.term(at: applied) else { return }
        snapshotting = true
        let state = store
        let writer: SnapshotFile.Writer
        do {
            writer = try SnapshotFile.Writer(path: storage.snapshotPath(index: applied, term: term), index: applied, term: term)
        } catch {
            return snapshotFailed(error)
        }
        pool.runIfActive(eventLoop: eventLoop) { () throws -> Void in
            try writer.write(SnapshotChunks(state))
        }.whenComplete { result in
            self.snapshotting = false
            switch result {
            case .failure(let error):
                self.snapshotFailed(error)
            case .success where applied <= self.raft.snapshot.index:
                writer.discard()  // a leader's snapshot got there first
            case .success:
                do {
                    try self.storage.install(snapshotAt: writer.tempPath, index: applied, term: term, replacesLog: false)
                } catch {
                    self.onFatal("cannot install a snapshot: \(error)")
                }
                self.raft.compact(through: applied, data: [])
            }
        }
    }

    /// A snapshot is an economy, not a duty: the log still holds everything, so a node that cannot
    /// write one (EMFILE, ENOSPC) says so and tries again in a second instead of stopping.
    private func snapshotFailed(_ error: any Error) {
        report("cannot write a snapshot: \(error); the log keeps every entry meanwhile; trying again in 1 s")
        nextSnapshotAttempt = monotonicNow() + 1_000_000_000
    }

    private func expire(now: MonotonicNanos) {
        for (index, w) in writes where w.deadline <= now {
            writes[index] = nil
            w.reply.resume(returning: .timedOut)
        }
        for (context, r) in reads where r.deadline <= now {
            reads[context] = nil
            r.reply.resume(returning: .timedOut)
        }
        confirmed.removeAll { item in
            guard item.read.deadline <= now else { return false }
            item.read.reply.resume(returning: .timedOut)
            return true
        }
    }

    private func noticeRoleChange() {
        let role = raft.role, leader = raft.leader
        defer { lastRole = role; lastLeader = leader }
        let now = monotonicNow()
        if role == .leader && lastRole != .leader {
            onRoleChange(RoleChange(kind: .elected, leader: id, term: raft.term, at: now))
        } else if lastRole == .leader && role != .leader {
            onRoleChange(RoleChange(kind: .lost, leader: id, term: raft.term, at: now))
        } else if let was = lastLeader, was != id, leader == nil {
            onRoleChange(RoleChange(kind: .lost, leader: was, term: raft.term, at: now))
        }
    }

    private func refreshStatus() {
        let s = RaftStatus(role: raft.role, term: raft.term, leader: raft.leader, commit: raft.log.committed,
                           applied: LogIndex(store.applied), lastIndex: raft.log.lastIndex,
                           snapshotIndex: raft.snapshot.index, keys: store.data.count, syncs: storage.stats.syncs,
                           entriesWritten: storage.stats.entries, batches: storage.stats.batches,
                           snapshotsReceived: snapshotsReceived)
        status.withLock { if $0 != s { $0 = s } }
        let now = monotonicNow()
        let changed = s.role != reported.role || s.term != reported.term || s.leader != reported.leader
        let moved = s.commit != reported.commit || s.applied != reported.applied
        // Unchanged, it is still said once a second: a report the supervisor missed (sent before it
        // registered this process) must not leave `kvctl nodes` without a role until the next change.
        if changed || (moved && now - reportedAt >= 100_000_000) || now - reportedAt >= 1_000_000_000 {
            reported = s
            reportedAt = now
            onStatus(s)
        }
    }
}
