/// One completed write on its way to the backup: the pair's sequence number, the log entry (a
/// `KVRequest`'s bytes, applied by the backup's state machine as the primary's was), and when the
/// primary acknowledged it to its client (monotonic ns; every node runs on one host in the lab).
public struct ReplicationOp: Sendable, Equatable {
    public var seq: UInt64
    public var entry: [UInt8]
    public var ackedAtNs: Int64
    public init(seq: UInt64, entry: [UInt8], ackedAtNs: Int64) { self.seq = seq; self.entry = entry; self.ackedAtNs = ackedAtNs }
}

/// The acting primary's side of asynchronous replication, as the original did it: a write is
/// applied and acknowledged first, then queued for the backup; nothing waits for the backup.
/// The backup confirms what it applied (with when), which gives the replication lag, the
/// window in which an acknowledged write lives on the primary alone. A queue past its bound is
/// dropped whole and the backup must be synced in full: memory stays bounded, and the loss is
/// said, not silent. A fence (the coordinator's hand-back) stops new writes and names the last.
public struct OutgoingReplication: Sendable, Equatable {
    public let maxQueued: Int
    /// The last sequence number given to a write.
    public private(set) var lastSeq: UInt64
    /// What the backup has confirmed applying.
    public private(set) var confirmedSeq: UInt64
    /// Written, not yet confirmed, oldest first (sent or not).
    public private(set) var queue: [ReplicationOp] = []
    /// How many of `queue` went out and await confirmation.
    public private(set) var inFlight = 0
    /// The backup lost the stream (the queue overflowed): it needs a full sync.
    public private(set) var needsFullSync = false
    public private(set) var fenced = false

    /// Bytes of entries held at most (with `maxQueued` entries): past either, the stream is dropped.
    public let maxQueuedBytes: Int
    public private(set) var queuedBytes = 0

    public init(maxQueued: Int = 100_000, maxQueuedBytes: Int = 256 << 20, lastSeq: UInt64 = 0) {
        self.maxQueued = maxQueued; self.maxQueuedBytes = maxQueuedBytes; self.lastSeq = lastSeq; self.confirmedSeq = lastSeq
    }

    public enum Refusal: Error, Equatable { case fenced }

    /// A write completed and acknowledged at `at`: its sequence number. Refused while fenced (the
    /// client is told to ask the coordinator where the pair's keys go now).
    /// `followed`: a standby follows the stream. Without one, nothing is kept for it: whoever
    /// follows next needs a full copy (and a queue would only grow).
    public mutating func completed(_ entry: [UInt8], at: Int64, followed: Bool = true) -> Result<UInt64, Refusal> {
        if fenced { return .failure(.fenced) }
        lastSeq += 1
        if !followed { dropStream() }
        if !needsFullSync {
            queue.append(ReplicationOp(seq: lastSeq, entry: entry, ackedAtNs: at))
            queuedBytes += entry.count
            if queue.count > maxQueued || queuedBytes > maxQueuedBytes { dropStream() }
        }
        return .success(lastSeq)
    }

    private mutating func dropStream() {
        queue = []
        queuedBytes = 0
        inFlight = 0
        needsFullSync = true
    }

    /// Ops not sent yet, marked sent: up to `max`, and up to `maxBytes` of entries (at least one op,
    /// however large, so that a big write still goes).
    public mutating func nextBatch(max: Int, maxBytes: Int = .max) -> [ReplicationOp] {
        var batch: [ReplicationOp] = []
        var bytes = 0
        for op in queue.dropFirst(inFlight).prefix(max) {
            if !batch.isEmpty && bytes + op.entry.count > maxBytes { break }
            batch.append(op)
            bytes += op.entry.count
        }
        inFlight += batch.count
        return batch
    }

    /// The backup applied everything through `seq` at `at`: each op newly confirmed, with its lag
    /// (ack to applied on the backup, ns).
    public mutating func confirmed(through seq: UInt64, at: Int64) -> [(seq: UInt64, lagNs: Int64)] {
        guard seq > confirmedSeq, seq <= lastSeq else { return [] }
        confirmedSeq = seq
        let done = queue.prefix { $0.seq <= seq }
        queue.removeFirst(done.count)
        queuedBytes -= done.reduce(0) { $0 + $1.entry.count }
        inFlight = max(0, inFlight - done.count)
        return done.map { ($0.seq, at - $0.ackedAtNs) }
    }

    /// The connection to the backup broke: what was in flight goes again (the backup skips
    /// what it already has).
    public mutating func resend() { inFlight = 0 }

    /// A full sync of the backup began at `seq` (the snapshot holds every write through it): the
    /// stream goes on from there.
    public mutating func syncStarted(at seq: UInt64) {
        queue.removeAll { $0.seq <= seq }
        queuedBytes = queue.reduce(0) { $0 + $1.entry.count }
        inFlight = 0
        confirmedSeq = seq
        needsFullSync = false
    }

    /// The hand-back's fence: no more writes; the last one's number.
    public mutating func fence() -> UInt64 {
        fenced = true
        return lastSeq
    }

    public mutating func unfence() { fenced = false }

    /// Writes acknowledged and not yet confirmed by the backup: what dies with this node.
    public var lagOps: UInt64 { lastSeq - confirmedSeq }
}

/// The backup's side: ops applied in sequence order, each once. A duplicate (a resend) is
/// skipped; a gap (an op lost in between, or a stream that started after a missed sync) asks for
/// a resend from the first missing number.
public struct IncomingReplication: Sendable, Equatable {
    public private(set) var appliedSeq: UInt64

    public init(appliedSeq: UInt64 = 0) { self.appliedSeq = appliedSeq }

    /// What a received batch gives: the ops to apply, in order, and where a hole begins, if the
    /// batch has one (ask the primary to send again from there).
    public struct Received: Equatable {
        public var apply: [ReplicationOp]
        public var missingFrom: UInt64?
    }

    public mutating func receive(_ ops: [ReplicationOp]) -> Received {
        var fresh: [ReplicationOp] = []
        var missing: UInt64?
        for op in ops.sorted(by: { $0.seq < $1.seq }) {
            let next = appliedSeq + UInt64(fresh.count) + 1
            if op.seq < next { continue }  // a resend of what is applied
            guard op.seq == next else {
                missing = next
                break
            }
            fresh.append(op)
        }
        appliedSeq += UInt64(fresh.count)
        return Received(apply: fresh, missingFrom: missing)
    }

    /// A full copy through `seq` was installed: the stream continues after it.
    public mutating func installed(through seq: UInt64) { appliedSeq = seq }
}
