import Core
import KVStore
import Raft
import RaftStorage
import NIOCore
import NIOPosix
import Synchronization

/// What a client request came to.
package enum KVReply: Sendable, Equatable {
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
package typealias ReadConsistency = ReadPolicy

/// One group's state on this node as the HTTP API and events see it, refreshed by the loop after
/// each pass.
package struct RaftStatus: Sendable, Equatable {
    package var group = 0
    package var role: Role = .follower
    package var term: Term = 0
    package var leader: ReplicaID?
    package var commit: LogIndex = 0
    package var applied: LogIndex = 0
    package var lastIndex: LogIndex = 0
    package var snapshotIndex: LogIndex = 0
    package var keys = 0
    /// The node's WAL, shared by its groups: the same in every group's status.
    var syncs = 0
    var entriesWritten = 0
    var batches = 0
    /// Snapshots received from a leader (InstallSnapshot) since start.
    var snapshotsReceived = 0

    /// Every field at its start value (for another module's replica).
    package static var initial: RaftStatus { RaftStatus() }
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
    /// Several groups: a group's preferred leader gets it back once caught up this long.
    var balanceSettleMs = 1000
    /// ... trying at most this often (a transfer that did not take is given up after an election timeout).
    var balanceRetryMs = 5000
}

/// The one thread that owns this node's replicas, one per Raft group (each its own `Raft` and
/// `KVStateMachine`: `GroupReplica`), and the node's WAL and peer outbox, which the groups share.
/// Each pass carries out one Ready of every group that has one, in etcd's order: leaders' appends
/// go out while the disk write runs (Raft thesis §10.2.1; they count toward a quorum only once
/// stable), then one write and one fdatasync for every group's batch (group commit: every request
/// of every group that arrived during the last sync is in this one), then every other message
/// (votes and answers leave only after what they promise is on disk), then apply, answer, advance.
/// Messages to a peer go out as one write per phase, every group's together. Inputs of every group
/// queue in one inbox and are taken in one pass.
final class RaftLoop: @unchecked Sendable {
    enum Input {
        case message(group: Int, Message)
        case write(group: Int, KVRequest, Continuation)
        case read(group: Int, key: String, ReadConsistency, Continuation)
        /// A connection that carried this peer's messages closed (every group's).
        case peerDisconnected(ReplicaID)
        /// The node's heartbeat detector declared this peer dead (every group's), or alive again.
        case peerSuspected(ReplicaID)
        case peerTrusted(ReplicaID)
        /// A leader's InstallSnapshot, its file complete and synced at `tempPath`, its store built.
        case snapshotReceived(group: Int, Message, KVStateMachine, tempPath: String)
        /// A snapshot stream to this peer broke off.
        case snapshotSendFailed(group: Int, ReplicaID)
    }
    typealias Continuation = CheckedContinuation<KVReply, Never>

    struct RoleChange: Sendable {
        enum Kind: Sendable { case elected, lost }
        var kind: Kind
        var group: Int
        var leader: ReplicaID
        var term: Term
        var at: MonotonicNanos
    }

    /// What a group's replica is made of when the node starts: what it recovered, and the store as
    /// the recovered snapshot holds it.
    struct Recovery {
        var recovered: Recovered
        var state: KVStateMachine
    }

    let id: ReplicaID
    private let inbox = Mutex<[Input]>([])
    /// The one thread that runs everything below; the peer transport's connections live on it too,
    /// so the messages of a Ready are written without another thread hop.
    let eventLoop: any EventLoop
    private let drainScheduled = Atomic<Bool>(false)
    private var lastTick: MonotonicNanos = 0
    let timing: RaftTiming
    /// Index = group.
    private(set) var replicas: [GroupReplica] = []
    /// Every group's WAL.
    let storage: DiskStorage
    /// Frames for each peer, posted during a phase of the pass and sent together at its end.
    private var outbox: [ReplicaID: [[UInt8]]] = [:]

    // Shared by the groups, used on the loop thread.
    private(set) var transport: PeerTransport?
    private(set) var onRoleChange: @Sendable (RoleChange) -> Void = { _ in }
    private(set) var onStatus: @Sendable ([RaftStatus]) -> Void = { _ in }
    let onFatal: @Sendable (String) -> Never
    let report: @Sendable (String) -> Void
    /// Workers for snapshot files (writing this node's, reading received ones), and for streams to peers.
    let pool: NIOThreadPool
    let streamPool: NIOThreadPool

    /// `config` is every group's (each gets its own seed from it); `groups[g]` is group g's
    /// recovered state, from `storage`. Raft's snapshots carry no data here: the state lives in
    /// snapshot files, written, sent and read one chunk at a time.
    init(config: Raft.Config, timing: RaftTiming, storage: DiskStorage, groups: [Recovery], eventLoop: any EventLoop, pool: NIOThreadPool,
         streamPool: NIOThreadPool, report: @escaping @Sendable (String) -> Void, onFatal: @escaping @Sendable (String) -> Never) {
        self.eventLoop = eventLoop
        self.report = report
        self.id = config.id
        self.timing = timing
        self.pool = pool
        self.streamPool = streamPool
        self.onFatal = onFatal
        self.storage = storage
        replicas = groups.enumerated().map { g, r in
            var c = config
            c.seed = config.seed &+ UInt64(g) &* 0x9E37_79B9_7F4A_7C15  // each group its own timeouts
            return GroupReplica(group: g, config: c, recovery: r, node: self)
        }
    }

    /// `onStatus` hears every group's status, once per pass in which any group's is due
    /// (`GroupReplica.refreshStatus`): one report for the node, however many groups changed.
    func start(transport: PeerTransport, onRoleChange: @escaping @Sendable (RoleChange) -> Void,
               onStatus: @escaping @Sendable ([RaftStatus]) -> Void) {
        self.transport = transport
        self.onRoleChange = onRoleChange
        self.onStatus = onStatus
        eventLoop.execute {
            self.lastTick = monotonicNow()
            for r in self.replicas { r.refreshStatus() }
            self.onStatus(self.statuses)
            let tick = TimeAmount.milliseconds(Int64(self.timing.tickMs))
            self.eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in self.ticked() }
        }
    }

    /// Queues an input; the loop takes every queued input in one pass (one Ready per group).
    func submit(_ input: Input) {
        inbox.withLock { $0.append(input) }
        if !drainScheduled.exchange(true, ordering: .acquiringAndReleasing) {
            eventLoop.execute { self.drain() }
        }
    }

    func request(_ make: (Continuation) -> Input) async -> KVReply {
        await withCheckedContinuation { c in submit(make(c)) }
    }

    var groupCount: Int { replicas.count }

    /// Each group's status, as of the loop's last pass.
    var statuses: [RaftStatus] { replicas.map { $0.status.withLock { $0 } } }

    // MARK: The loop

    private func drain() {
        drainScheduled.store(false, ordering: .sequentiallyConsistent)
        let inputs = inbox.withLock { box -> [Input] in
            defer { box.removeAll(keepingCapacity: true) }
            return box
        }
        let now = monotonicNow()
        let deadline = now + Int64(timing.requestTimeoutMs) * 1_000_000
        for input in inputs {
            switch input {
            case .message(let g, let m): replicas[g].raft.step(m)
            case .write(let g, let request, let reply): replicas[g].write(request, reply, deadline: deadline)
            case .read(let g, let key, let consistency, let reply): replicas[g].read(key, consistency, reply, deadline: deadline)
            case .peerDisconnected(let peer): for r in replicas { r.raft.peerDisconnected(peer) }
            case .peerSuspected(let peer): for r in replicas { r.raft.peerSuspected(peer) }
            case .peerTrusted(let peer): for r in replicas { r.raft.peerTrusted(peer) }
            case .snapshotSendFailed(let g, let peer): replicas[g].raft.reportSnapshotFailed(to: peer)
            case .snapshotReceived(let g, let m, let state, let tempPath): replicas[g].snapshotReceived(m, state, tempPath: tempPath)
            }
        }
        afterInput()
    }

    /// Every tick that came due: a node resumed after SIGSTOP catches up on the ticks it missed, so
    /// a stopped leader's check-quorum fires as soon as it runs.
    private func ticked() {
        let tickNs = Int64(timing.tickMs) * 1_000_000
        let now = monotonicNow()
        while now - lastTick >= tickNs {
            for r in replicas { r.raft.tick() }
            lastTick += tickNs
        }
        for r in replicas {
            r.expire(now: now)
            if replicas.count > 1 {
                r.balance(now: now)
                // A group with nothing to do has no Ready: its share of the WAL is checked here.
                r.maybeCompact()
            }
        }
        afterInput()
    }

    /// Passes until no group has a Ready: each group's Ready begun (early messages posted, writes
    /// staged), the early messages sent, every group's writes committed with one sync, then each
    /// Ready finished (late messages, apply, answers) and the late messages sent.
    private func afterInput() {
        do {
            while true {
                var begun: [GroupReplica.Begun] = []
                for r in replicas { if let b = try r.beginReady() { begun.append(b) } }
                guard !begun.isEmpty else { break }
                sendOutbox()
                try storage.commit()
                for b in begun { b.replica.finishReady(b) }
                sendOutbox()
            }
        } catch {
            onFatal("cannot write to the data directory: \(error). Stopping: a node that cannot persist must not vote or acknowledge")
        }
        // Every group's pass first (no short-circuit), then one report if any is due.
        let due = replicas.map { $0.afterPass() }
        if due.contains(true) { onStatus(statuses) }
    }

    /// Queues a group's messages for their peers; they leave with the phase's `sendOutbox`.
    func post(group: Int, _ messages: [Message]) {
        for m in messages { outbox[m.to, default: []].append(PeerFrame.message(group: group, m).encoded()) }
    }

    func sendOutbox() {
        guard !outbox.isEmpty else { return }
        transport?.send(outbox)
        outbox.removeAll(keepingCapacity: true)
    }
}
