import KVStore

/// One storage node of primary-backup mode as a pure value: its copy of the pair's data (a
/// `KVStateMachine` in memory, as the original's servers held their files), its place in the pair
/// (the coordinator's latest `Assignment`), and both ends of the replication stream. The active
/// node numbers its writes; a write's number is its index in the state machine on both nodes, so
/// the backup's copy is the primary's as of a sequence number. The runtime holds it under one
/// lock: a write, its number and its place in the stream are one step, and a snapshot for a sync
/// is taken between two writes.
public struct StorageNodeState: Sendable {
    public let id: String
    public private(set) var machine = KVStateMachine()
    /// Present while this node is the pair's active node.
    public private(set) var outgoing: OutgoingReplication?
    public private(set) var assignment: PBWire.Assignment?
    /// The last sync asked of this node that it started (a new `sync_id` starts another).
    public private(set) var syncStarted: UInt64 = 0
    /// A full copy is under way: the stream waits for it (a batch applied before the copy would
    /// be undone by it, and its confirmation would tell the active node a lie).
    public private(set) var syncing = false

    public init(id: String) { self.id = id }

    public var appliedSeq: UInt64 { machine.applied }
    public var isActive: Bool { assignment?.active == id }
    public var lagOps: UInt64 { outgoing?.lagOps ?? 0 }
    /// The active node's standby lost the stream: it needs a full copy (said in beats).
    public var needsFullSync: Bool { outgoing?.needsFullSync ?? false }

    public enum WriteOutcome: Equatable {
        case applied(KVResult, seq: UInt64)
        /// Not this node's to write: the pair's active node (nil: none known).
        case notActive(String?)
        /// The coordinator is handing the pair back: writes wait for the new active node.
        case fenced
    }

    /// A client's write, on the active node: applied, numbered and queued for the standby at
    /// `now` (the acknowledgement follows at once: nothing waits for the standby).
    public mutating func write(_ request: KVRequest, at now: Int64) -> WriteOutcome {
        guard isActive, var out = outgoing else { return .notActive(assignment?.active) }
        if out.fenced { return .fenced }
        let entry = request.encoded()
        let seq = out.lastSeq + 1
        let result = machine.apply(index: seq, entry).result
        _ = out.completed(entry, at: now, followed: assignment?.standby != nil)
        outgoing = out
        return .applied(result, seq: seq)
    }

    public enum ReadOutcome: Equatable {
        case value(String?, seq: UInt64)
        case notActive(String?)
    }

    /// A read, answered by the active node from its own copy (no quorum: after a failover it may
    /// miss writes the old primary acknowledged); with `anyRole` (a stale read), by the backup too,
    /// from a copy as old as its replication lag.
    public func read(_ key: String, anyRole: Bool = false) -> ReadOutcome {
        isActive || anyRole ? .value(machine.get(key), seq: machine.applied) : .notActive(assignment?.active)
    }

    /// A newer assignment replaces the one held (an older one, or a repeat, is ignored): on
    /// becoming active the node numbers writes on from what it has applied; a fence stops them.
    @discardableResult
    public mutating func assign(_ a: PBWire.Assignment) -> Bool {
        // Boots order by the coordinator's start time: a late push from a coordinator that has
        // since been replaced is ignored, as is an older assignment of the same one.
        if let held = assignment, held.boot > a.boot || (held.boot == a.boot && held.version >= a.version) { return false }
        // A new coordinator numbers its syncs from 1 again.
        if assignment?.boot != a.boot { syncStarted = 0 }
        let wasActive = isActive
        assignment = a
        if isActive {
            if !wasActive || outgoing == nil { outgoing = OutgoingReplication(lastSeq: machine.applied) }
            if a.fenced { _ = outgoing!.fence() } else { outgoing!.unfence() }
        } else {
            outgoing = nil
        }
        return true
    }

    /// What the coordinator hears back from an assignment.
    public var assignReply: PBWire.AssignReply {
        PBWire.AssignReply(last_seq: outgoing?.lastSeq ?? machine.applied, applied_seq: machine.applied, boot: assignment?.boot ?? "",
                           version: assignment?.version ?? 0, fenced: outgoing?.fenced ?? false)
    }

    /// A sync to start now: the node to copy from, once per `sync_id`.
    public mutating func takeSyncRequest() -> (from: String, id: UInt64)? {
        guard let a = assignment, !isActive, let from = a.sync_from, a.sync_id > syncStarted else { return nil }
        syncStarted = a.sync_id
        syncing = true
        return (from, a.sync_id)
    }

    /// The copy of sync `id` could not be had: the stream may go on (the coordinator asks again).
    /// A failure of an earlier sync, still running when a newer one was asked, changes nothing.
    public mutating func syncFailed(id: UInt64) { if id == syncStarted { syncing = false } }

    /// The coordinator no longer knows this node (it must register): it acknowledges nothing more
    /// until it has an assignment again, since whatever it takes now is discarded by its copy.
    public mutating func orphaned() { _ = outgoing?.fence() }

    public enum ReceiveRefusal: Error, Equatable { case active, syncing }

    /// A batch from the acting primary (or the coordinator relaying it), applied in order, each
    /// write once.
    public mutating func receive(_ ops: [ReplicationOp]) -> Result<PBWire.ReplicateReply, ReceiveRefusal> {
        // Two nodes that both think they are active: the coordinator's latest word decides, and
        // this node's is that it serves; it must not take another's writes over its own.
        if isActive { return .failure(.active) }
        if syncing { return .failure(.syncing) }
        // The stream goes on from what this copy holds, however it got there: its own writes while
        // it was active, a full copy, or the stream itself.
        var incoming = IncomingReplication(appliedSeq: machine.applied)
        let got = incoming.receive(ops)
        for op in got.apply { _ = machine.apply(index: op.seq, op.entry) }
        return .success(PBWire.ReplicateReply(applied_seq: machine.applied, missing_from: got.missingFrom ?? 0))
    }

    /// The full copy for a returning node, on the active node: the state through the last write,
    /// and the stream to the standby goes on after it.
    public mutating func snapshotForSync(for requester: String) -> PBWire.Snapshot? {
        // Only for the standby the coordinator named: the stream then continues to it from here.
        guard isActive, var out = outgoing, assignment?.standby == requester else { return nil }
        let seq = out.lastSeq
        out.syncStarted(at: seq)
        outgoing = out
        return PBWire.Snapshot(seq: seq, state: Hex.encode(machine.snapshot()))
    }

    public enum InstallError: Error, Equatable { case active, superseded, badSnapshot(String) }

    /// The copy of sync `id` installed on the returning node: its state becomes the active node's
    /// as of `seq`. Only the latest sync's copy: an earlier one, late, would go back in time.
    public mutating func install(_ s: PBWire.Snapshot, id: UInt64) -> Result<UInt64, InstallError> {
        if isActive { return .failure(.active) }
        if id != syncStarted { return .failure(.superseded) }
        guard let bytes = Hex.decode(s.state) else { return .failure(.badSnapshot("not hex")) }
        do {
            let m = try KVStateMachine(snapshot: bytes)
            guard m.applied == s.seq else { return .failure(.badSnapshot("applied \(m.applied), announced \(s.seq)")) }
            machine = m
            syncing = false
            return .success(s.seq)
        } catch {
            return .failure(.badSnapshot("\(error)"))
        }
    }

    /// The next batch for the standby (active node with a standby only).
    public mutating func nextBatch(max: Int, maxBytes: Int = 1 << 20) -> (to: String, pair: Int, epoch: UInt64, ops: [ReplicationOp])? {
        guard isActive, let a = assignment, let to = a.standby, var out = outgoing else { return nil }
        let ops = out.nextBatch(max: max, maxBytes: maxBytes)
        outgoing = out
        return ops.isEmpty ? nil : (to, a.pair, a.epoch, ops)
    }

    /// The standby's answer: ops confirmed (with their lag), or what to send again.
    public mutating func replicated(_ r: PBWire.ReplicateReply, at now: Int64) -> [(seq: UInt64, lagNs: Int64)] {
        guard var out = outgoing else { return [] }
        let done = out.confirmed(through: r.applied_seq, at: now)
        if r.missing_from != 0 { out.resend() }
        outgoing = out
        return done
    }

    /// A batch that got no answer: send it again.
    public mutating func replicationFailed() { outgoing?.resend() }
}
