import Core
import Events
import Experiments
import Faults
import NodeClient

/// A failover run's Raft store and the trials run on it. Every wait has a deadline; a store that
/// misses one is a `SweepRun.TrialError`, and the run starts a fresh store.
struct FailoverStore {
    let run: FailoverRun
    let cluster: ExperimentCluster
    let feed: EventFeed
    let client: StoreClient
    /// The storage nodes, sorted: group g's preferred leader is ids[g % n] (kvnode's LeaderBalancer);
    /// primary-backup's pair g is ids[2g]:ids[2g + 1].
    let ids: [NodeID]
    private var nextGroup = 0

    var spec: FailoverSpec { run.spec }
    typealias TrialError = SweepRun.TrialError

    static func start(run: FailoverRun, number: Int) async throws -> FailoverStore {
        let feed = EventFeed(run.hub.subscribe(kinds: nil))
        let cluster: ExperimentCluster
        do {
            cluster = try await ExperimentCluster.startStore(run.spec.layout, runID: run.directory.runID,
                                                             dataDir: run.directory.path + "/data-s\(run.session)-\(number)", hub: run.hub,
                                                             environment: run.environment, log: { node, line in run.log(node, line) })
        } catch { feed.close(); throw error }
        let ports = Dictionary(uniqueKeysWithValues: cluster.config.nodes.map { ($0.id, $0.port) })
        // The nodes that hold data (not primary-backup's coordinator).
        let storage = cluster.config.nodes.filter { $0.role != .coordinator }.map(\.id).sorted()
        let store = FailoverStore(run: run, cluster: cluster, feed: feed, client: StoreClient(group: run.environment.group, ports: ports),
                                  ids: storage)
        do {
            try await cluster.startAndAwaitReady(feed)
            // Every group led by its preferred node: no balancing transfer can then start mid-trial.
            try await store.until("every group led by its preferred node", seconds: 20) { s in
                (0..<s.spec.groups).allSatisfy { s.settled($0) }
            }
        } catch {
            await store.shutdown()
            throw error
        }
        return store
    }

    func shutdown() async {
        feed.close()
        await cluster.shutdown(graceMs: 1000)
    }

    // MARK: The store as the nodes report it

    func leaders() -> GroupLeaders { cluster.leaders(groups: spec.groups) }

    func preferred(_ g: Int) -> NodeID { spec.mode == .primaryBackup ? ids[2 * g] : ids[g % ids.count] }

    /// Group g is where a trial can start: led by its preferred node, which the balancer (several
    /// Raft groups) or the coordinator's hand-back (primary-backup) gives it back. A one-group
    /// Raft store has no balancer: any leader will do (waiting for its preferred one hung).
    func settled(_ g: Int) -> Bool {
        cluster.settled(g, layout: spec.layout, preferred: spec.groups == 1 && spec.mode == .raft ? nil : preferred(g))
    }

    /// Polls `condition` every 2 ms until it holds; a TrialError naming `what` after `seconds`.
    func until(_ what: String, seconds: Int, _ condition: (FailoverStore) -> Bool) async throws {
        try await pollUntil(what, seconds: seconds, every: .milliseconds(2), check: run.check) { condition(self) }
    }

    /// The next group, in turn, whose leader is its preferred node (a group whose node was just
    /// brought back gets it back from the balancer about a second later; the trial takes another).
    mutating func settledGroup() async throws -> Int {
        var chosen: Int?
        try await until("group led by its preferred node", seconds: 20) { s in
            chosen = (0..<s.spec.groups).map { (s.nextGroup + $0) % s.spec.groups }.first { g in
                s.settled(g)
            }
            return chosen != nil
        }
        nextGroup = (chosen! + 1) % spec.groups
        return chosen!
    }

    /// A key of group `g` no trial used before.
    func freshKey(_ g: Int, _ stem: String) -> String {
        var n = 0
        while true {
            let key = "\(stem)-\(n)"
            if KeyGroups.group(of: key, groups: spec.groups) == g { return key }
            n += 1
        }
    }

    // MARK: One trial

    /// What the watch of one kill saw. Events count only from the fault's applied instant on.
    struct Failover {
        var faultID: String
        /// When the fault was asked for (the engine's own requested stamp is set whole ms before
        /// the planned instant, so that its after_ms lands there).
        var requestedMonoNs: MonotonicNanos
        var applied: Stamp?
        var effect: Stamp?
        var detect: MonotonicNanos?
        var leaderLost: MonotonicNanos?
        var elected: MonotonicNanos?
        var newLeader: String?
        var newTerm: UInt64?
        /// The first write acknowledged after the fault, and its log index.
        var firstWrite: (at: MonotonicNanos, index: UInt64)?
    }

    /// A store that could not bring a node back: the trial is recorded with what it measured, and
    /// the run goes on with a fresh store.
    private(set) var broken: String?

    mutating func trial(_ t: FailoverPlan.Trial) async throws -> FailoverTrial {
        let start = Stamp.now()
        let d = t.cell.killAfterMs
        let inFlight = t.cell.scenario == .inFlight
        drain()
        let g = try await settledGroup()
        let settled = monotonicNow()
        let stem = "fo-s\(run.session)-\(t.cell.scenario.rawValue)-\(d)-\(t.index)"
        let value = Self.writtenValue(startWallMs: start.wallMs, index: t.index, rapid: false)

        // The write through the key's leader; a refusal (leadership moving) is tried again on a
        // fresh key, so that no earlier attempt's value can be read back in its place.
        var attempt = 0
        while true {
            attempt += 1
            try run.check()
            guard let leader = leaders().byGroup[g], let leaderID = NodeID(validating: leader.node) else {
                try await until("leader of group \(g)", seconds: 10) { $0.leaders().byGroup[g] != nil }
                continue
            }
            let key = freshKey(g, stem + "-a\(attempt)")
            let call = client.put(leaderID, key: key, value: value, timeoutMs: inFlight ? Int64(d) + 1000 : 2000)
            let sent: MonotonicNanos
            do { sent = try await call.sentMonoNs() } catch {
                if attempt < 5 { try? await Task.sleep(for: .milliseconds(20)); continue }
                throw TrialError(description: "cannot write to \(leaderID), leader of group \(g): \(error)")
            }
            var ack: (at: MonotonicNanos, index: UInt64)?
            var killAt = sent + Int64(d) * 1_000_000
            if !inFlight {
                let r = try? await call.answer()
                guard let r, let index = StoreClient.index(of: r) else {
                    if attempt < 5 { try? await Task.sleep(for: .milliseconds(20)); continue }
                    throw TrialError(description: "write through \(leaderID), leader of group \(g), not acknowledged: "
                                     + (r.map { "\($0.status) \($0.text)" } ?? "no answer"))
                }
                ack = (r.receivedMonoNs, index)
                killAt = r.receivedMonoNs + Int64(d) * 1_000_000
            }
            var watch = try await kill(leaderID, at: killAt, group: g, term: leader.view.term)
            if watch.elected == nil {
                // Recorded (no election, no recovery) and the store replaced after it.
                broken = "no leader of group \(g) elected within 10 s of the \(spec.fault.rawValue) of \(leaderID)"
            }
            // In flight: the write's fate, once the kill has landed (an answer, an error, or nothing).
            var write: FailoverTrial.Write = .ok
            if inFlight {
                do {
                    let r = try await call.answer()
                    if let index = StoreClient.index(of: r) { ack = (r.receivedMonoNs, index) } else { write = .error }
                } catch {
                    if case .timedOut = error { write = .timeout } else { write = .error }
                }
            }
            let survived = await readBack(key, group: g, value: value)
            await awaitDetection(&watch, of: leaderID)
            // Caught up: the node holds what the new leader had committed when it first served a
            // write (so it has heard from the new leader), and at least the commit index the old
            // leader reported before the kill, and the trial's own write.
            // Primary-backup numbers writes afresh on the promoted node from what it holds: writes
            // the old primary acknowledged and lost leave its numbers behind, so the new primary's
            // first write is the target.
            let catchUpIndex = spec.mode == .primaryBackup ? watch.firstWrite?.index ?? 0
                : max(ack?.index ?? 0, leader.view.commitIndex, watch.firstWrite?.index ?? 0)
            let restart = monotonicNow()
            var caughtUp: MonotonicNanos?
            do {
                try await recover(leaderID)
                // Without a new leader there is nothing to catch up with: the store is replaced.
                if broken == nil { caughtUp = try await waitCaughtUp(leaderID, group: g, index: catchUpIndex) }
            } catch {
                // Recorded whatever stopped it (a cancel too): a loss already read is never dropped.
                broken = Task.isCancelled ? "cancelled while bringing \(leaderID) back" : "\(error)"
                run.log(nil, "experiment \(run.directory.runID): \(broken!); the trial is recorded (read after the failover: "
                        + "\(survived.rawValue))" + (Task.isCancelled ? "" : " and the store replaced"))
            }
            let later = broken == nil ? await readBack(key, group: g, value: value) : .unknown
            let end = monotonicNow()
            return FailoverTrial(
                session: run.session, cell: t.cell, index: t.index, fault: spec.fault, group: g, key: key, leader: leader.node,
                term: leader.view.term, startWallMs: start.wallMs, sendMonoNs: sent, ackMonoNs: ack?.at, write: write,
                killRequestedMonoNs: watch.requestedMonoNs, killAppliedMonoNs: watch.applied?.monoNs, killEffectMonoNs: watch.effect?.monoNs,
                detectMonoNs: watch.detect, leaderLostMonoNs: watch.leaderLost, electedMonoNs: watch.elected, newLeader: watch.newLeader,
                newTerm: watch.newTerm, firstWriteMonoNs: watch.firstWrite?.at, survived: survived, survivedLater: later,
                restartMonoNs: restart, caughtUpMonoNs: caughtUp, catchUpIndex: catchUpIndex,
                settleMs: Double(settled - start.monoNs) / 1e6, durationMs: Double(end - start.monoNs) / 1e6)
        }
    }

    /// Injects the spec's fault on `leader` to land at `at` (monotonic), then watches the failover
    /// of `group`: the fault applied and its effect, leader lost, a leader elected in a later
    /// term (nil if none within 10 s), and the first write the group acknowledges after the fault.
    func kill(_ leader: NodeID, at: MonotonicNanos, group g: Int, term: UInt64) async throws -> Failover {
        let kind: FaultKind = switch spec.fault { case .kill: .kill; case .stop: .stop; case .partition: .partition }
        // The engine waits after_ms from the requested stamp: the stamp is set whole ms before `at`.
        let now = Stamp.now()
        let afterMs = max(0, Int((at - now.monoNs + 999_999) / 1_000_000))
        let requested = Stamp(wallMs: now.wallMs, monoNs: max(at - Int64(afterMs) * 1_000_000, now.monoNs - 1_000_000))
        let injected: FaultEngine.InjectResult
        do {
            injected = try await cluster.engine.inject(FaultSpec(kind: kind, node: leader, afterMs: afterMs), requested: requested,
                                                       knownNodes: Set(cluster.nodes))
        } catch { throw TrialError(description: "cannot inject \(kind) on \(leader): \(error)") }
        var w = Failover(faultID: injected.faultID, requestedMonoNs: now.monoNs, applied: injected.applied)
        var failure: String?
        // Candidates as they come (a node's event may arrive before the fault's own); those before
        // the applied instant belong to something else.
        var detects: [MonotonicNanos] = [], losts: [MonotonicNanos] = [], electeds: [(at: MonotonicNanos, node: String?, term: UInt64)] = []
        func see(_ e: Event) {
            if e.faultID == w.faultID {
                if e.kind == .faultApplied, let a = e.applied { w.applied = a }
                if let effect = e.effect { w.effect = effect }
                if e.kind == .faultFailed { failure = e.reason ?? "fault failed" }
            }
            if e.kind == .declaredDead, e.peer == leader { detects.append(e.tMonoNs) }
            if e.kind == .leaderLost, (e.group ?? 0) == g { losts.append(e.tMonoNs) }
            // Raft's new leader reports itself; primary-backup's coordinator names the node it promoted.
            if e.kind == .leaderElected, (e.group ?? 0) == g, let t = e.term, t > term {
                electeds.append((e.tMonoNs, (e.leader ?? e.node)?.rawValue, t))
            }
        }
        func electedSince(_ a: MonotonicNanos) -> (at: MonotonicNanos, node: String?, term: UInt64)? { electeds.first { $0.at >= a } }
        _ = await feed.wait(until: at + 5_000_000_000) { e in see(e); return failure != nil || w.applied != nil }
        if let failure { throw TrialError(description: "\(kind) on \(leader) failed: \(failure)") }
        guard let applied = w.applied?.monoNs else { throw TrialError(description: "\(kind) on \(leader) was not applied within 5 s") }
        // Writes go to every other node until one is acknowledged; meanwhile the events come in.
        async let firstWrite = Self.firstServedWrite(client, nodes: ids.filter { $0 != leader }, key: probeKey(g), seconds: 10)
        _ = await feed.wait(until: monotonicNow() + 10_000_000_000) { e in see(e); return failure != nil || electedSince(applied) != nil }
        if w.effect == nil && failure == nil {
            let deadline = applied + Int64(run.environment.faultEffectDeadlineMs) * 1_000_000
            _ = await feed.wait(until: deadline) { e in see(e); return failure != nil || w.effect != nil }
        }
        w.firstWrite = await firstWrite
        try run.check()
        // A fault that failed after it was applied (a cut whose effect never showed is undone) is no failover.
        if let failure { throw TrialError(description: "\(kind) on \(leader) failed after it was applied: \(failure)") }
        // No election within 10 s: returned without one, for the trial to record.
        if let elected = electedSince(applied) { (w.elected, w.newLeader, w.newTerm) = (elected.at, elected.node, elected.term) }
        w.detect = detects.first { $0 >= applied }
        w.leaderLost = losts.first { $0 >= applied }
        return w
    }

    /// The peers' detection of a killed leader comes at the detector's timeout, often after the
    /// election: waited for up to hb_timeout + 2 intervals + 300 ms after the fault.
    func awaitDetection(_ w: inout Failover, of leader: NodeID) async {
        guard w.detect == nil, let applied = w.applied?.monoNs else { return }
        let config = cluster.config
        let (timeout, interval) = spec.mode == .primaryBackup ? (spec.primaryBackup.failAfterMs, spec.primaryBackup.checkIntervalMs)
            : (config.hbTimeoutMs, config.hbIntervalMs)
        let deadline = applied + Int64(timeout + 2 * interval + 300) * 1_000_000
        var detect: MonotonicNanos?
        _ = await feed.wait(until: deadline) { e in
            if e.kind == .declaredDead, e.peer == leader, e.tMonoNs >= applied { detect = e.tMonoNs; return true }
            return false
        }
        w.detect = detect
    }

    /// The key every probe of group `g` writes.
    func probeKey(_ g: Int) -> String { freshKey(g, "probe-g\(g)") }

    /// Every given node is asked to write, each again 2 ms after its answer, until one acknowledges: a follower answers
    /// 307 or 503, only a leader 200. The first acknowledgement's arrival, or nil after `seconds`.
    static func firstServedWrite(_ client: StoreClient, nodes: [NodeID], key: String, seconds: Int) async
        -> (at: MonotonicNanos, index: UInt64)? {
        let deadline = monotonicNow() + Int64(seconds) * 1_000_000_000
        return await withTaskGroup(of: (at: MonotonicNanos, index: UInt64)?.self) { tasks in
            for node in nodes {
                tasks.addTask {
                    while monotonicNow() < deadline && !Task.isCancelled {
                        if let r = try? await client.put(node, key: key, value: "p", timeoutMs: 1000).answer(),
                           let index = StoreClient.index(of: r) {
                            return (r.receivedMonoNs, index)
                        }
                        try? await Task.sleep(for: .milliseconds(2))
                    }
                    return nil
                }
            }
            var first: (at: MonotonicNanos, index: UInt64)?
            for await r in tasks {
                if let r {
                    first = r
                    tasks.cancelAll()
                }
            }
            return first
        }
    }

    /// The key read linearizably from whoever leads its group, until a definite answer or 5 s.
    func readBack(_ key: String, group g: Int, value: String) async -> FailoverTrial.Survival {
        let deadline = monotonicNow() + 5_000_000_000
        while monotonicNow() < deadline && !Task.isCancelled {
            if let l = leaders().byGroup[g], let node = NodeID(validating: l.node) {
                switch await client.read(node, key: key) {
                case .value(let v): return v == value ? .yes : .no
                case .absent: return .no
                case .unknown: break
                }
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return .unknown
    }

    /// Undoes the fault: a killed node is started again, a stopped one continued, a cut one healed.
    func recover(_ node: NodeID) async throws {
        do {
            switch spec.fault {
            case .kill: try await cluster.supervisor.start(node)
            case .stop: _ = try await cluster.engine.inject(FaultSpec(kind: .cont, node: node), requested: .now(), knownNodes: Set(cluster.nodes))
            case .partition: _ = cluster.engine.heal(node: node)
            }
        } catch { throw TrialError(description: "cannot bring \(node) back after the \(spec.fault.rawValue): \(error)") }
    }

    /// Cuts `node` off from every peer again (the cascade, after a heal restored its links to another).
    func cut(_ node: NodeID) async throws {
        do { _ = try await cluster.engine.inject(FaultSpec(kind: .partition, node: node), requested: .now(), knownNodes: Set(cluster.nodes)) }
        catch { throw TrialError(description: "cannot cut \(node) off again: \(error)") }
    }

    /// When `node` had applied `index` in group `g`, from its /status polled every 2 ms.
    func waitCaughtUp(_ node: NodeID, group g: Int, index: UInt64) async throws -> MonotonicNanos {
        let deadline = monotonicNow() + 30_000_000_000
        while monotonicNow() < deadline {
            try run.check()
            if let a = await client.applied(node, group: g), a.index >= index { return a.atMonoNs }
            try? await Task.sleep(for: .milliseconds(2))
        }
        throw TrialError(description: "\(node) did not apply index \(index) of group \(g) within 30 s of coming back")
    }

    /// Events of earlier trials are not this one's.
    func drain() {
        feed.discardBuffered()
    }
}
