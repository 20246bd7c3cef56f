import Core
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

/// The coordinator (the original's name manager), running: `CoordinatorDriver` under one lock,
/// fed by the storage nodes' registers, beats and sync reports and by a check every
/// `checkIntervalMs` on a timing thread; its outcomes carried out as assignments sent to the
/// nodes and as events.
final class CoordinatorNode: Sendable {
    let options: PBOptions
    let driver: Mutex<CoordinatorDriver>
    let output: EventOutput
    let client = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// The last beat of each node (for /status).
    let beats = Mutex<[String: PBWire.Beat]>([:])
    /// The process behind each node id, from its last register.
    let incarnations = Mutex<[NodeID: String]>([:])

    init(options: PBOptions, output: EventOutput) {
        self.options = options
        self.output = output
        let config = Coordinator.Config(pairs: options.pairs.map { Coordinator.Pair(primary: $0.primary, backup: $0.backup) },
                                        checkIntervalNs: Int64(options.checkIntervalMs) * 1_000_000,
                                        failAfterNs: Int64(options.failAfterMs) * 1_000_000)
        // Ordered by start time (zero-padded wall-clock ns): a node prefers the newer coordinator.
        let now = Stamp.now()
        let wall = String(now.wallMs * 1_000_000 + now.monoNs % 1_000_000)
        let boot = String(repeating: "0", count: max(0, 20 - wall.count)) + wall
        driver = Mutex(CoordinatorDriver(config: config, boot: boot, replicationPath: options.replicationPath))
    }

    /// For the supervisor's node table (`KV_RAFT=`): role "coordinator", and each pair as a group
    /// with its active node and epoch.
    func reportView() {
        guard options.reportViaNotify else { return }
        let groups = driver.withLock { d in
            d.core.pairs.enumerated().map { p, s in
                RaftView.Group(id: p, role: "none", term: d.epochs[p], leader: s.active?.rawValue, commitIndex: 0, appliedIndex: 0)
            }
        }
        let view = RaftView(role: "coordinator", term: 0, leader: nil, commitIndex: 0, appliedIndex: 0, groups: groups)
        Notifier.send([RaftView.notifyPrefix + view.jsonLine()])
    }

    func startChecking() {
        reportView()
        let interval = Int64(options.checkIntervalMs) * 1_000_000
        startDetachedThread { [self] in
            var slots = FixedRateSlots(start: monotonicNow() + interval, intervalNs: interval)
            while true {
                PreciseClock.wait(until: slots.next, spinNs: 200_000)
                _ = feed(.check)
                slots.served(at: monotonicNow())
            }
        }
    }

    /// One input through the driver; its outcome carried out. Returns the outcome and the node's
    /// assignment after it (for register and beat answers).
    /// `when`: stepped only if it holds, checked under the same lock as the step.
    @discardableResult
    func feed(_ input: Coordinator.Input, answering node: NodeID? = nil,
              when condition: (CoordinatorDriver) -> Bool = { _ in true }) -> (CoordinatorDriver.Outcome, PBWire.Assignment?) {
        let now = monotonicNow()
        typealias Stepped = (CoordinatorDriver.Outcome, [(NodeID, PBWire.Assignment)], PBWire.Assignment?)
        let (outcome, pushes, answer) = driver.withLock { (d: inout CoordinatorDriver) -> Stepped in
            guard condition(d) else { return (CoordinatorDriver.Outcome(), [], nil) }
            let outcome = d.step(input, at: now)
            let pushes = outcome.push.compactMap { n in d.assignment(for: n).map { (n, $0) } }
            return (outcome, pushes, node.flatMap { d.assignment(for: $0) })
        }
        for note in outcome.notes { report(note, at: now) }
        if !pushes.isEmpty { reportView() }
        for (n, a) in pushes {
            if let pair = outcome.fence.first(where: { $0.node == n })?.pair {
                pushFence(a, to: n, pair: pair, round: a.version, deadline: monotonicNow() + Self.handBackNs)
            } else {
                push(a, to: n)
            }
        }
        return (outcome, answer)
    }

    /// How long a hand-back may wait for the fence's answer, and then for the catch-up.
    static let handBackNs: Int64 = 5_000_000_000

    /// Sends `a` to `n`.
    @discardableResult
    private func push(_ a: PBWire.Assignment, to n: NodeID) -> NodeHTTP.Call? {
        guard let address = options.traffic(to: n) else { return nil }
        return NodeHTTP.begin(host: address.host, port: address.port, method: "POST", path: "/pb/assign", body: JSON.encode(a),
                              timeoutMs: 2000, group: client)
    }

    /// Sends a fencing assignment. Its answer names the last write the node acknowledged: the
    /// returning primary takes over once it has applied that one. Only an answer to this round's
    /// fence counts (a late answer to an earlier round could name an earlier write); a lost one is
    /// asked again until `deadline`, after which the hand-back is dropped and the sync starts over.
    private func pushFence(_ a: PBWire.Assignment, to n: NodeID, pair: Int, round: UInt64, deadline: MonotonicNanos) {
        guard let call = push(a, to: n) else { return }
        call.response.whenComplete { [self] result in
            if case .success(let r) = result, r.status == 200, case .success(let reply) = JSON.decode(PBWire.AssignReply.self, r.body),
               reply.fenced {
                var taken = false
                feed(.fenced(pair: pair, seq: reply.last_seq)) { d in
                    taken = d.answersFence(pair: pair, round: round, boot: reply.boot, version: reply.version)
                    return taken
                }
                if taken {
                    Task { await self.awaitCatchUp(pair: pair, seq: reply.last_seq, round: round, deadline: deadline) }
                    return
                }
            }
            Task {
                try? await Task.sleep(for: .milliseconds(50))
                // Still this round, still waiting for its answer: again, or give up at the deadline.
                let (again, target) = self.driver.withLock { d -> (PBWire.Assignment?, NodeID?) in
                    guard case .handingBack(let t, nil) = d.core.pairs[pair].phase, d.core.pairs[pair].active == n,
                          d.fenceVersions[pair] == round else { return (nil, nil) }
                    return (d.assignment(for: n), t)
                }
                guard let again, let target else { return }
                if monotonicNow() > deadline {
                    self.feed(.syncFailed(pair: pair, target))
                } else {
                    self.pushFence(again, to: n, pair: pair, round: round, deadline: deadline)
                }
            }
        }
    }

    /// Polls the node taking the pair back until it has applied `seq` (every write the fenced node
    /// acknowledged), then hands the pair to it; at `deadline` the hand-back is dropped and the
    /// sync starts over. Only while the fence round `round` lasts: a newer round has its own wait.
    private func awaitCatchUp(pair: Int, seq: UInt64, round: UInt64, deadline: MonotonicNanos) async {
        func target() -> NodeID? {
            driver.withLock { d -> NodeID? in
                guard d.fenceVersions[pair] == round, case .handingBack(let t, _?) = d.core.pairs[pair].phase else { return nil }
                return t
            }
        }
        while monotonicNow() < deadline {
            guard let t = target(), let address = options.traffic(to: t) else { return }
            if let r = try? await NodeHTTP.send(host: address.host, port: address.port, method: "GET", path: "/pb/applied",
                                                timeoutMs: 1000, group: client),
               r.status == 200, case .success(let reply) = JSON.decode(PBWire.AssignReply.self, r.body), reply.applied_seq >= seq {
                feed(.applied(pair: pair, t, seq: reply.applied_seq))
                return
            }
            try? await Task.sleep(for: .milliseconds(2))
        }
        if let t = target() { feed(.syncFailed(pair: pair, t)) }
    }

    // MARK: Events

    private func report(_ note: CoordinatorDriver.Note, at now: Int64) {
        let me = options.id
        func event(_ kind: EventKind, peer: NodeID? = nil) -> Event {
            var e = Event(kind: kind, runID: options.runID, node: me, peer: peer)
            e.tMonoNs = now
            return e
        }
        let pairText = { (p: Int) in
            self.options.pairs.indices.contains(p) ? "pair \(p) (\(self.options.pairs[p].primary):\(self.options.pairs[p].backup))" : "pair \(p)"
        }
        var e: Event
        switch note {
        case .declaredDead(let n, let silence, let heard):
            e = event(.declaredDead, peer: n)
            e.silenceMs = Double(silence) / 1e6
            e.lastHeardMonoNs = heard
            e.timeoutMs = options.failAfterMs
        case .declaredAlive(let n):
            e = event(.declaredAlive, peer: n)
            e.reason = "registered again"
        case .activeLost(let p, let n, let epoch):
            e = event(.leaderLost)
            e.leader = n; e.group = p; e.term = epoch
            e.reason = "\(pairText(p)): its active node \(n) is dead"
        case .promoted(let p, let n, let epoch):
            e = event(.leaderElected, peer: n)
            e.leader = n; e.group = p; e.term = epoch
            e.reason = options.pairs.indices.contains(p) && n == options.pairs[p].backup ? "\(pairText(p)): backup \(n) promoted"
                : "\(pairText(p)): \(n) serves"
        case .syncStarted(let p, let from, let to):
            e = event(.syncStarted, peer: to)
            e.group = p; e.leader = from
            e.reason = "\(pairText(p)): full copy from \(from) to \(to)"
        case .synced(let p, let n):
            e = event(.syncFinished, peer: n)
            e.group = p
            e.reason = "\(pairText(p)): \(n) holds the full copy"
        case .resumed(let p, let n, let epoch):
            e = event(.primaryResumed, peer: n)
            e.leader = n; e.group = p; e.term = epoch
            e.reason = "\(pairText(p)): \(n) serves again as primary"
        case .pairDown(let p):
            e = event(.leaderLost)
            e.group = p
            e.reason = "\(pairText(p)): both nodes are dead; its keys are unavailable"
        }
        output.emit(e)
        // A promotion is this mode's election: for its own lane and for `leader_elected` readers.
        if case .resumed(let p, let n, let epoch) = note {
            var elected = event(.leaderElected, peer: n)
            elected.leader = n; elected.group = p; elected.term = epoch
            elected.reason = "\(pairText(p)): primary \(n) resumed after its sync"
            output.emit(elected)
        }
    }
}
