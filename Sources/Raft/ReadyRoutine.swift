/// What carrying out a Ready takes from its host: the I/O. kvnode (disk, sockets, the store),
/// the simulator (a simulated disk and network) and the scenario tests each provide one; the
/// order and the rules are `ReadyRoutine`'s, written once.
public protocol ReadyIO {
    /// Messages out: first those that may leave before this Ready's writes are durable, then the rest.
    mutating func send(_ messages: [Message])
    /// Makes the snapshot, the hard state and the entries durable (written and synced), or stages
    /// them to be made durable before `ReadyRoutine.finish`. false: the process is gone before the
    /// sync (the simulator's crash mid-write); nothing after happens.
    mutating func persist(snapshot: Snapshot?, hardState: HardState?, entries: [Entry]) throws -> Bool
    /// The application takes the installed snapshot's state.
    mutating func restore(_ snapshot: Snapshot)
    /// The application applies a committed entry.
    mutating func apply(_ entry: Entry)
    /// Reads whose leadership was confirmed at an index, and reads that failed (leadership lost).
    mutating func reads(confirmed: [ReadState], failed: [UInt64])
}

/// Carries out one Ready in etcd's order, the rule every host follows:
/// 1. a leader's appends, snapshots and TimeoutNow go out at once: they promise nothing about
///    this node's disk, and the leader counts its own entries toward a quorum only once stable
///    (Raft thesis §10.2.1), so its disk write and its followers' run side by side;
/// 2. the snapshot, hard state and entries are made durable;
/// 3. every other message (votes, answers) leaves: each promises what is now on disk;
/// 4. the application restores the snapshot, then applies the committed entries (committed and
///    durable, both), and reads are confirmed or failed.
/// The caller then calls `Raft.advance` with the same Ready.
///
/// A host with several groups on one disk runs `begin` for each group's Ready, makes all of it
/// durable at once (one sync), then `finish` for each: `persist` may then only stage, as long as
/// everything staged is durable before `finish` is called.
public enum ReadyRoutine {
    @inlinable public static func sendsBeforePersisting(_ m: Message) -> Bool {
        switch m.kind {
        case .append, .snapshot, .timeoutNow: return true
        default: return false
        }
    }

    /// Steps 1 and 3 and 4 in one, with `persist` durable when it returns. False when `persist`
    /// stopped it: the Ready was not carried out, and must not be advanced.
    @discardableResult
    @inlinable public static func carryOut<IO: ReadyIO>(_ r: Raft.Ready, with io: inout IO) throws -> Bool {
        guard try begin(r, with: &io) else { return false }
        finish(r, with: &io)
        return true
    }

    /// Steps 1 and 2: the early messages, then `persist`. False: stopped (see `carryOut`).
    @inlinable public static func begin<IO: ReadyIO>(_ r: Raft.Ready, with io: inout IO) throws -> Bool {
        let early = r.messages.filter(sendsBeforePersisting)
        if !early.isEmpty { io.send(early) }
        return try io.persist(snapshot: r.snapshot, hardState: r.hardState, entries: r.entries)
    }

    /// Steps 3 and 4, once what `begin` persisted is durable.
    @inlinable public static func finish<IO: ReadyIO>(_ r: Raft.Ready, with io: inout IO) {
        let late = r.messages.filter { !sendsBeforePersisting($0) }
        if !late.isEmpty { io.send(late) }
        if let s = r.snapshot { io.restore(s) }
        for e in r.committed { io.apply(e) }
        if !r.readStates.isEmpty || !r.failedReads.isEmpty { io.reads(confirmed: r.readStates, failed: r.failedReads) }
    }
}
