import Core
import KVStore
import NIOCore
import NIOPosix
import Raft
import RaftStorage
import Synchronization

/// This node's replica of one Raft group: the consensus value, its disk and its store, and the
/// requests waiting on them. Lives on its node's `RaftLoop` thread; only `status` is read from others.
final class GroupReplica: @unchecked Sendable {
    let group: Int
    let status = Mutex(RaftStatus())
    unowned let node: RaftLoop

    var raft: Raft
    /// The node's, shared by its groups.
    var storage: DiskStorage { node.storage }
    private(set) var store: KVStateMachine
    private var reported = RaftStatus()
    private var reportedAt: MonotonicNanos = 0
    private struct PendingWrite {
        var term: Term; var client: String; var seq: UInt64; var digest: UInt64; var deadline: MonotonicNanos; var reply: RaftLoop.Continuation
    }
    private struct PendingRead { var key: String; var deadline: MonotonicNanos; var reply: RaftLoop.Continuation }
    private var writes: [LogIndex: PendingWrite] = [:]
    /// A received snapshot's store, between its install on disk and its restore in a Ready.
    private var installed: KVStateMachine?
    private var reads: [UInt64: PendingRead] = [:]
    private var confirmed: [(index: LogIndex, read: PendingRead)] = []
    private var nextReadContext: UInt64 = 1
    private var snapshotsReceived = 0
    /// Received snapshots handed to Raft and not yet taken or refused, by (index, term).
    private var prepared: [LogIndex: (term: Term, state: KVStateMachine, tempPath: String)] = [:]
    /// A snapshot of this replica's own store is being written on a worker.
    private var snapshotting = false
    /// After a failed snapshot (out of file descriptors, a full disk), not before this.
    private var nextSnapshotAttempt: MonotonicNanos = 0
    private var lastRole: Role = .follower
    private var lastLeader: ReplicaID?
    private var balancer: LeaderBalancer
    private let preferredLeader: ReplicaID

    init(group: Int, config: Raft.Config, recovery r: RaftLoop.Recovery, node: RaftLoop) {
        self.group = group
        self.node = node
        balancer = LeaderBalancer(settleNs: Int64(node.timing.balanceSettleMs) * 1_000_000,
                                  retryNs: Int64(node.timing.balanceRetryMs) * 1_000_000)
        preferredLeader = LeaderBalancer.preferred(group: group, voters: config.voters)
        store = r.state
        raft = Raft(config: config, hardState: r.recovered.hardState,
                    snapshot: Snapshot(index: r.recovered.snapshot.index, term: r.recovered.snapshot.term), entries: r.recovered.entries)
        status.withLock { $0.group = group }
        reported.group = group
    }

    // MARK: Inputs

    func write(_ request: KVRequest, _ reply: RaftLoop.Continuation, deadline: MonotonicNanos) {
        guard writes.count < node.timing.maxPendingWrites else {
            reply.resume(returning: .overloaded("\(writes.count) writes are waiting for their answer"))
            return
        }
        let entry = request.encoded()
        switch raft.propose(entry) {
        case .success(let index):
            // An earlier waiter at this index belonged to an entry gone from this node's log. Another
            // node may still hold it at that index and, elected, commit it: its outcome is unknown,
            // not "not applied" (at apply time a different entry committed there does settle it).
            writes[index]?.reply.resume(returning: .timedOut)
            #if RAFT_PLANTED_BUGS
            if raft.config.plantedBug == .ackOnPropose {
                reply.resume(returning: .applied(.ok, index: index))
                return
            }
            #endif
            writes[index] = PendingWrite(term: raft.term, client: request.client, seq: request.seq,
                                         digest: KVStateMachine.digest(entry), deadline: deadline, reply: reply)
        case .failure(let e): reply.resume(returning: Self.refusal(e))
        }
    }

    func read(_ key: String, _ consistency: ReadConsistency, _ reply: RaftLoop.Continuation, deadline: MonotonicNanos) {
        switch consistency {
        case .stale:
            reply.resume(returning: .value(store.get(key), index: LogIndex(store.applied)))
        case .linearizable:
            let context = nextReadContext
            nextReadContext += 1
            switch raft.readIndex(context) {
            case .success: reads[context] = PendingRead(key: key, deadline: deadline, reply: reply)
            case .failure(let e): reply.resume(returning: Self.refusal(e))
            }
        }
    }

    func snapshotReceived(_ m: Message, _ state: KVStateMachine, tempPath: String) {
        guard case .snapshot(let s) = m.kind else { return }
        if let old = prepared[s.index], old.tempPath != tempPath { SnapshotFile.discard(old.tempPath) }
        prepared[s.index] = (s.term, state, tempPath)
        raft.step(m)
    }

    private static func refusal(_ e: Raft.ProposeError) -> KVReply {
        switch e {
        case .notLeader(let l): return .notLeader(leader: l)
        case .transferring: return .transferring
        case .unknownReplica: return .notLeader(leader: nil)
        case .overloaded: return .overloaded("\(e): the quorum is slow or unreachable")
        }
    }

    /// Hands the group to its preferred leader when the balancer says so.
    func balance(now: MonotonicNanos) {
        let target = balancer.decide(now: now, leading: raft.role == .leader, me: node.id, preferred: preferredLeader,
                                     preferredCaughtUp: raft.isCaughtUp(preferredLeader), transferring: raft.transferee != nil)
        guard let target else { return }
        if case .success = raft.transferLeadership(to: target) {
            node.report("group \(group): handing leadership to replica \(target), its preferred leader, caught up for "
                        + "\(node.timing.balanceSettleMs) ms")
        }
    }

    // MARK: Readies

    /// A Ready whose early messages were posted and whose writes were staged: it is carried on
    /// (`finishReady`) once the node's commit made them durable.
    struct Begun {
        let replica: GroupReplica
        let ready: Raft.Ready
        fileprivate var io: LoopReadyIO
    }

    /// This group's part of a loop pass, up to the commit: nil when it has nothing to do.
    func beginReady() throws -> Begun? {
        guard raft.hasReady else { return nil }
        let rd = raft.ready()
        // The order and the rules are ReadyRoutine's (the simulator runs the same); this is the I/O.
        var io = LoopReadyIO(replica: self, leader: raft.leader)
        guard try ReadyRoutine.begin(rd, with: &io) else { return nil }
        return Begun(replica: self, ready: rd, io: io)
    }

    /// The rest of the pass, with what `beginReady` staged now durable.
    func finishReady(_ begun: Begun) {
        var io = begun.io
        ReadyRoutine.finish(begun.ready, with: &io)
        raft.advance(begun.ready)
        serveConfirmedReads()
        maybeCompact()
    }

    /// After every pass: leftovers discarded, notes read, role changes told, the status refreshed;
    /// true when the status is due to be reported.
    func afterPass() -> Bool {
        // Received snapshots Raft did not take (it had caught up meanwhile, or the term moved on).
        for (_, p) in prepared { SnapshotFile.discard(p.tempPath) }
        prepared = [:]
        // The core's notes would pile up unread; refusals of what no correct peer sends are worth a line.
        for line in raft.takeTrace() where line.contains("refused") { node.report(node.groupCount > 1 ? "group \(group): \(line)" : line) }
        noticeRoleChange()
        return refreshStatus()
    }

    /// kvnode's side of a Ready: the node's outbox (snapshots stream from their file on a
    /// worker), the node's WAL (staged; the loop commits every group's at once), and the store
    /// with the writes and reads waiting on it. It never touches `raft`, which is the routine's
    /// caller's until `advance`.
    fileprivate struct LoopReadyIO: ReadyIO {
        unowned let replica: GroupReplica
        /// For answers to writes that lost their place: who to ask instead.
        let leader: ReplicaID?

        func send(_ messages: [Message]) {
            let r = replica, node = r.node, group = r.group
            var rest = messages
            // InstallSnapshot goes as a stream of chunks from the snapshot file, on a worker.
            rest.removeAll { m in
                guard case .snapshot(let s) = m.kind else { return false }
                node.transport?.sendSnapshot(group: group, m, path: r.storage.snapshotPath(group: group, index: s.index, term: s.term),
                                             pool: node.streamPool) { [weak node] in
                    node?.submit(.snapshotSendFailed(group: group, m.to))
                }
                return true
            }
            if !rest.isEmpty { node.post(group: group, rest) }
        }

        func persist(snapshot: Snapshot?, hardState: HardState?, entries: [Entry]) throws -> Bool {
            let r = replica
            if let s = snapshot {
                guard let p = r.prepared.removeValue(forKey: s.index), p.term == s.term else {
                    r.node.onFatal("Raft installed snapshot \(s.term)/\(s.index) of group \(r.group), which this node did not receive")
                }
                // The install syncs and deletes files: other groups' appends need not wait for it.
                r.node.sendOutbox()
                try r.storage.install(group: r.group, snapshotAt: p.tempPath, index: s.index, term: s.term, replacesLog: true)
                r.installed = p.state
            }
            r.storage.stage(group: r.group, hardState: hardState, entries: entries)
            return true
        }

        func restore(_ snapshot: Snapshot) {
            let r = replica
            guard let state = r.installed else { return }
            r.installed = nil
            r.snapshotsReceived += 1
            r.store = state
            for (index, w) in r.writes where index <= snapshot.index {
                r.writes[index] = nil
                r.answerFromSession(w, index: index)
            }
        }

        func apply(_ e: Entry) {
            let r = replica
            let (_, result) = r.store.apply(index: e.index.value, e.data)
            if let w = r.writes.removeValue(forKey: e.index) {
                w.reply.resume(returning: w.term == e.term ? .applied(result, index: e.index) : .notLeader(leader: leader))
            }
        }

        func reads(confirmed: [ReadState], failed: [UInt64]) {
            let r = replica
            for rs in confirmed {
                guard let read = r.reads.removeValue(forKey: rs.context) else { continue }
                r.confirmed.append((rs.index, read))
            }
            for context in failed {
                r.reads.removeValue(forKey: context)?.reply.resume(returning: .notLeader(leader: leader))
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
    func maybeCompact() {
        guard !snapshotting, monotonicNow() >= nextSnapshotAttempt else { return }
        let timing = node.timing
        let applied = LogIndex(store.applied)
        let dueByCount = applied.value >= raft.snapshot.index.value + UInt64(timing.snapshotEntries)
        // The groups share the WAL: a quiet group's few entries would keep every segment after them.
        let dueByWAL = storage.holdsOldestSegment(group)
        // By size: once the log since the snapshot holds a quarter of the store (and at least
        // snapshotBytes), so that the log costs at most a quarter more memory than the data, while
        // each snapshot (which writes the whole store) pays for a quarter of it in new log: the
        // disk writes four bytes of snapshot per byte of log at worst, not one per 64 MiB.
        let sizeBound = max(timing.snapshotBytes, store.dataBytes / 4)
        // byteCount first: the exact sum walks the log, and is needed only when the whole log is that large.
        let dueBySize = raft.log.byteCount >= sizeBound
            && raft.log.bytes(after: raft.snapshot.index, through: applied) >= sizeBound
        guard dueByCount || dueBySize || dueByWAL, applied > raft.snapshot.index, let term = raft.log.term(at: applied) else { return }
        snapshotting = true
        let state = store
        let writer: SnapshotFile.Writer
        do {
            writer = try SnapshotFile.Writer(path: storage.snapshotPath(group: group, index: applied, term: term), index: applied, term: term)
        } catch {
            return snapshotFailed(error)
        }
        node.pool.runIfActive(eventLoop: node.eventLoop) { () throws -> Void in
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
                    try self.storage.install(group: self.group, snapshotAt: writer.tempPath, index: applied, term: term, replacesLog: false)
                } catch {
                    self.node.onFatal("cannot install a snapshot of group \(self.group): \(error)")
                }
                self.raft.compact(through: applied, data: [])
            }
        }
    }

    /// A snapshot is an economy, not a duty: the log still holds everything, so a node that cannot
    /// write one (EMFILE, ENOSPC) says so and tries again in a second instead of stopping.
    private func snapshotFailed(_ error: any Error) {
        node.report("cannot write a snapshot of group \(group): \(error); the log keeps every entry meanwhile; trying again in 1 s")
        nextSnapshotAttempt = monotonicNow() + 1_000_000_000
    }

    func expire(now: MonotonicNanos) {
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
        let me = node.id
        if role == .leader && lastRole != .leader {
            node.onRoleChange(.init(kind: .elected, group: group, leader: me, term: raft.term, at: now))
        } else if lastRole == .leader && role != .leader {
            node.onRoleChange(.init(kind: .lost, group: group, leader: me, term: raft.term, at: now))
        } else if let was = lastLeader, was != me, leader == nil {
            node.onRoleChange(.init(kind: .lost, group: group, leader: was, term: raft.term, at: now))
        }
    }

    /// Refreshes `status`; true when a report is due: at once for a role, term or leader change,
    /// at most every 100 ms while indexes move, and every second unchanged (a report the supervisor
    /// missed, sent before it registered this process, must not leave `kvctl nodes` without a role).
    @discardableResult
    func refreshStatus() -> Bool {
        let s = RaftStatus(group: group, role: raft.role, term: raft.term, leader: raft.leader, commit: raft.log.committed,
                           applied: LogIndex(store.applied), lastIndex: raft.log.lastIndex,
                           snapshotIndex: raft.snapshot.index, keys: store.data.count, syncs: storage.stats.syncs,
                           entriesWritten: storage.stats.entries, batches: storage.stats.batches,
                           snapshotsReceived: snapshotsReceived)
        status.withLock { if $0 != s { $0 = s } }
        let now = monotonicNow()
        let changed = s.role != reported.role || s.term != reported.term || s.leader != reported.leader
        let moved = s.commit != reported.commit || s.applied != reported.applied
        guard changed || (moved && now - reportedAt >= 100_000_000) || now - reportedAt >= 1_000_000_000 else { return false }
        reported = s
        reportedAt = now
        return true
    }
}
