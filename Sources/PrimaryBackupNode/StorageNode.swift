import Core
import KVStore
import NIOCore
import NIOPosix
import NodeClient
import NodeRuntime
import PrimaryBackup
import RaftNode
import Systemd
import Synchronization
import Timing
#if canImport(Glibc)
import Glibc
#endif

/// A storage node of primary-backup mode, running: its `StorageNodeState` under one lock, the
/// store's HTTP API over it, the pair's own endpoints, beats to the coordinator (a timing thread,
/// fixed-rate), the replication stream to the standby and the full copy from the active node.
final class StorageNode: Sendable {
    let options: PBOptions
    let state: Mutex<StorageNodeState>
    let output: EventOutput
    let client = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// Wakes the replication sender after a write or an assignment.
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>
    /// Set until the coordinator has taken this node's registration.
    private let mustRegister = Mutex(true)
    let lag = Mutex(LagWindow())
    /// How many ops one replication request carries at most (and at most 1 MiB of entries: hex
    /// doubles it, well inside the 64-MiB body limit of a node, which a single 4-MiB write also fits).
    static let batchOps = 512
    static let bodyLimit = 64 << 20
    /// This process: a register repeated by the same process is not a restart.
    let incarnation = "\(getpid())-\(monotonicNow())"

    init(options: PBOptions, output: EventOutput) {
        self.options = options
        self.output = output
        state = Mutex(StorageNodeState(id: options.id.rawValue))
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func kick() { wake.yield() }

    // MARK: Coordinator

    /// Beats (or registers) every check interval, from a timing thread: the coordinator's view of
    /// this node's silence must not wait on an event loop.
    func startBeating() {
        let interval = Int64(options.checkIntervalMs) * 1_000_000
        startDetachedThread { [self] in
            var slots = FixedRateSlots(start: monotonicNow(), intervalNs: interval)
            var lastLagReport = monotonicNow()
            while true {
                PreciseClock.wait(until: slots.next, spinNs: 200_000)
                beat()
                let now = monotonicNow()
                slots.served(at: now)
                if now - lastLagReport >= 1_000_000_000 {
                    reportLag(now)
                    lastLagReport = now
                }
            }
        }
    }

    private func beat() {
        let registering = mustRegister.withLock { $0 }
        let (applied, lagOps, resync, epoch) = state.withLock { ($0.appliedSeq, $0.lagOps, $0.needsFullSync, $0.assignment?.epoch ?? 0) }
        let body = registering
            ? JSON.encode(PBWire.Register(id: options.id.rawValue, incarnation: incarnation, applied_seq: applied, epoch: epoch))
            : JSON.encode(PBWire.Beat(id: options.id.rawValue, applied_seq: applied, lag_ops: lagOps, needs_full_sync: resync))
        let call = NodeHTTP.begin(host: options.coordinator.host, port: options.coordinator.port, method: "POST",
                                  path: registering ? "/pb/register" : "/pb/beat", body: body,
                                  timeoutMs: Int64(options.checkIntervalMs) * 2, group: client)
        call.response.whenSuccess { [self] response in
            guard response.status == 200, case .success(let reply) = JSON.decode(PBWire.BeatReply.self, response.body) else { return }
            if reply.register {
                // Whatever it took from now on would be discarded by its copy: it stops at once.
                state.withLock { $0.orphaned() }
                mustRegister.withLock { $0 = true }
                return
            }
            if registering { mustRegister.withLock { $0 = false } }
            if let a = reply.assignment { _ = take(a) }
        }
    }

    /// An assignment from the coordinator (pushed, or in a beat's answer): kept if newer, then
    /// acted on (a sync to start, a stream to resume).
    func take(_ a: PBWire.Assignment) -> PBWire.AssignReply {
        let (changed, reply, sync, view) = state.withLock { s in
            let changed = s.assign(a)
            return (changed, s.assignReply, s.takeSyncRequest(), changed ? s.raftView() : nil)
        }
        if changed {
            kick()
            if let view, options.reportViaNotify { Notifier.send([RaftView.notifyPrefix + view.jsonLine()]) }
        }
        if let sync { Task { await self.sync(from: sync.from, pair: a.pair, id: sync.id) } }
        return reply
    }

    /// The original's SYNC_ALL: the active node's whole state, then the stream from there.
    private func sync(from: String, pair: Int, id syncID: UInt64) async {
        var ok = false
        var seq: UInt64 = 0
        if let id = NodeID(validating: from), let address = options.traffic(to: id) {
            do {
                let r = try await NodeHTTP.send(host: address.host, port: address.port, method: "GET", path: "/pb/snapshot?for=\(options.id)",
                                                timeoutMs: 30_000, group: client)
                if r.status == 200, case .success(let snapshot) = JSON.decode(PBWire.Snapshot.self, r.body) {
                    switch state.withLock({ $0.install(snapshot, id: syncID) }) {
                    case .success(let s): ok = true; seq = s
                    case .failure(let why): writeStderr("kvnode \(options.id): sync from \(from) refused: \(why)")
                    }
                } else {
                    writeStderr("kvnode \(options.id): sync from \(from): HTTP \(r.status) \(r.text)")
                }
            } catch {
                writeStderr("kvnode \(options.id): sync from \(from): \(error)")
            }
        } else {
            writeStderr("kvnode \(options.id): sync from \(from): not a storage node of this cluster")
        }
        if !ok {
            state.withLock { $0.syncFailed(id: syncID) }
            // The coordinator asks again at once: not a loop of failures at full speed.
            try? await Task.sleep(for: .milliseconds(100))
        }
        // Said until the coordinator has it (200) or says it is not the sync it wants (409), while
        // this is still the sync asked of this node: a lost report would leave the pair waiting.
        let body = JSON.encode(PBWire.Synced(id: options.id.rawValue, pair: pair, sync_id: syncID, seq: seq, ok: ok))
        let giveUp = monotonicNow() + 60_000_000_000
        while monotonicNow() < giveUp, state.withLock({ $0.syncStarted == syncID }) {
            if let r = try? await NodeHTTP.send(host: options.coordinator.host, port: options.coordinator.port, method: "POST",
                                                path: "/pb/synced", body: body, timeoutMs: 2000, group: client),
               r.status == 200 || r.status == 409 { return }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    // MARK: Replication

    /// Sends the active node's writes to its standby, one batch at a time, oldest first; a batch
    /// that fails goes again (the standby skips what it has).
    func runReplication() async {
        for await _ in wakes {
            while let batch = state.withLock({ $0.nextBatch(max: Self.batchOps) }) {
                let request = PBWire.Replicate(pair: batch.pair, from: options.id.rawValue, to: batch.to, epoch: batch.epoch,
                                               ops: batch.ops.map(PBWire.Op.init))
                let target = options.replicationPath == "coordinator" ? options.coordinator
                    : NodeID(validating: batch.to).flatMap { options.traffic(to: $0) }
                guard let target else { break }
                let path = options.replicationPath == "coordinator" ? "/pb/relay" : "/pb/replicate"
                do {
                    let r = try await NodeHTTP.send(host: target.host, port: target.port, method: "POST", path: path,
                                                    body: JSON.encode(request), timeoutMs: 2000, group: client)
                    guard r.status == 200, case .success(let reply) = JSON.decode(PBWire.ReplicateReply.self, r.body) else {
                        throw NodeHTTP.Failure.unreachable(target.host, target.port, "HTTP \(r.status)")
                    }
                    let done = state.withLock { $0.replicated(reply, at: r.receivedMonoNs) }
                    lag.withLock { $0.add(done.map(\.lagNs)) }
                    // A hole (a standby still being synced, or one that restarted): give it time.
                    if reply.missing_from != 0 { try? await Task.sleep(for: .milliseconds(20)) }
                } catch {
                    state.withLock { $0.replicationFailed() }
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
        }
    }

    /// Once a second, when writes were confirmed: how far behind the standby was.
    private func reportLag(_ now: Int64) {
        guard let w = lag.withLock({ window in defer { window = LagWindow() }; return window.count > 0 ? window : nil }) else { return }
        var e = Event(kind: .replicationLag, runID: options.runID, node: options.id)
        e.count = w.count
        e.lagMsMax = Double(w.maxNs) / 1e6
        e.lagMsMean = Double(w.sumNs) / Double(w.count) / 1e6
        e.queued = Int(state.withLock { $0.lagOps })
        output.emit(e, reach: .logOnly)
        if options.reportViaNotify { Notifier.send(["KV_EVENT=\(e.jsonLine())"]) }
    }
}

/// Confirmed writes' lags since the last report.
struct LagWindow: Sendable {
    var count = 0
    var sumNs: Int64 = 0
    var maxNs: Int64 = 0
    var lastNs: Int64 = 0
    mutating func add(_ lags: [Int64]) {
        for l in lags {
            count += 1; sumNs += l; maxNs = max(maxNs, l); lastNs = l
        }
    }
}

extension StorageNodeState {
    /// For the supervisor's node table (`KV_RAFT=`): one entry per pair, "primary" where this node
    /// is active, the pair's epoch as its term, its active node as its leader.
    func raftView() -> RaftView {
        let a = assignment
        let groups = (a?.routes ?? []).enumerated().map { p, active in
            RaftView.Group(id: p, role: p == a?.pair ? (isActive ? "primary" : "backup") : "none",
                           term: p == a?.pair ? a?.epoch ?? 0 : 0, leader: active,
                           commitIndex: p == a?.pair ? (outgoing?.lastSeq ?? appliedSeq) : 0,
                           appliedIndex: p == a?.pair ? appliedSeq : 0)
        }
        let mine = groups.first { $0.id == a?.pair }
        return RaftView(role: mine?.role ?? "backup", term: mine?.term ?? 0, leader: mine?.leader, commitIndex: mine?.commitIndex ?? 0,
                        appliedIndex: appliedSeq, groups: groups.count > 1 ? groups : nil)
    }
}
