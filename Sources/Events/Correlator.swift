import Core

/// Turns "fault applied to B" + "A declared B dead" into detection latency, the detector's
/// overshoot past its own deadline, and a ground-truth label. Pure: fed faults and events in order.
public struct Correlator: Sendable {
    /// Why a node is down or cut off: an injected fault (id, kind), or its process's exit without
    /// one (a stop or restart by the supervisor, a crash: `exit` says which).
    public struct ActiveFault: Sendable, Equatable {
        public var id: String?
        public var kind: FaultKind?
        public var appliedMonoNs: MonotonicNanos
        public var exit: String?
        /// The process is gone (it exited while this held it down): only a new start ends it.
        public var processGone = false
        /// For a fault told before its syscall and since confirmed: the stamp it was told with.
        /// An event stamped before `appliedMonoNs` (the thread lost its CPU after the syscall) keeps
        /// this one, so that no latency comes out negative.
        public var toldMonoNs: MonotonicNanos?

        /// t_fail for an event stamped at `t`.
        func tFail(for t: MonotonicNanos) -> MonotonicNanos {
            appliedMonoNs <= t ? appliedMonoNs : (toldMonoNs ?? appliedMonoNs)
        }

        public init(id: String?, kind: FaultKind?, appliedMonoNs: MonotonicNanos, exit: String? = nil) {
            self.id = id; self.kind = kind; self.appliedMonoNs = appliedMonoNs; self.exit = exit
        }
    }

    /// Nodes down because of a fault (killed, terminated, stopped) or an exit, until they start or continue again.
    private var down: [NodeID: ActiveFault] = [:]
    /// The cause of each node's last down period, once it ended (started again, continued): a
    /// detection that arrives after, of a silence that began before it, is still a true one.
    private var ended: [NodeID: ActiveFault] = [:]
    /// Network faults in force, by every node they touch.
    private var network: [NodeID: [ActiveFault]] = [:]

    /// Raft mode, per group: the leader last elected, and when it was first known lost since (the
    /// fault that took it down, or the first leader_lost report), for leader_elected's since_lost_ms.
    private struct GroupLeader {
        var leader: NodeID?
        var term: UInt64 = 0
        /// When the current leader was elected (its event's stamp).
        var electedMonoNs: MonotonicNanos = 0
        var lost: (monoNs: MonotonicNanos, fault: ActiveFault?)?
        /// The election that ended the last loss with no fault to name (yet): the leader it
        /// replaced, when that was first known lost, and the new term.
        var unexplained: (previous: NodeID, lostMonoNs: MonotonicNanos, term: UInt64)?
    }
    private var groups: [Int: GroupLeader] = [:]
    /// Faults told before their syscall and not yet applied or withdrawn: the stamp each was told
    /// with, and the losses it claimed with what they were before (given back if it is withdrawn).
    private struct Told {
        var atMonoNs: MonotonicNanos
        var claimed: [(group: Int, before: (monoNs: MonotonicNanos, fault: ActiveFault?)?)]
        /// The node's exit, if it was seen while the fault was told: what a withdrawal leaves as the cause.
        var exit: (node: NodeID, cause: ActiveFault)?
    }
    private var applying: [String: Told] = [:]

    /// Group 0's leader (the only group of a one-group store).
    public var leader: NodeID? { groups[0]?.leader }

    public init() {}

    /// A leader_elected already correlated without the fault that caused it: the fault's thread
    /// reported after the election (it can lose its CPU between syscall and report). Whoever still
    /// holds the event adds the fault to it.
    public struct LateCause: Sendable, Equatable {
        public var group: Int
        public var term: UInt64
        public var faultID: String
        public var kind: FaultKind
        public var appliedMonoNs: MonotonicNanos
    }

    /// A fault about to be applied, told just before its syscall or proxy switch and stamped then:
    /// its effect (an exit, a closed connection a follower notices at once, an election 20 ms
    /// later) cannot reach the correlator before it, however late the fault's thread runs after
    /// the syscall. `confirm` then moves it to the stamp after the syscall, the t_fail every
    /// figure uses; `faultWithdrawn` takes it back.
    @discardableResult
    public mutating func faultApplying(id: String, kind: FaultKind, node: NodeID, affected: [NodeID],
                                       atMonoNs: MonotonicNanos) -> [LateCause] {
        applying[id] = Told(atMonoNs: atMonoNs, claimed: [], exit: nil)
        return register(id: id, kind: kind, node: node, affected: affected, appliedMonoNs: atMonoNs)
    }

    /// A fault told before its syscall now has its applied stamp: t_fail from here on, and for
    /// what was already correlated with the told stamp (`Restamp`: the hub amends the events it
    /// still holds), except events stamped before it.
    public struct Restamp: Sendable, Equatable {
        public var faultID: String
        public var from: MonotonicNanos
        public var to: MonotonicNanos
    }

    public mutating func confirm(id: String, appliedMonoNs t: MonotonicNanos) -> Restamp? {
        guard let told = applying.removeValue(forKey: id) else { return nil }
        func moved(_ f: ActiveFault) -> ActiveFault {
            var f = f
            f.toldMonoNs = told.atMonoNs
            f.appliedMonoNs = t
            return f
        }
        for (n, f) in down where f.id == id { down[n] = moved(f) }
        for (n, faults) in network where faults.contains(where: { $0.id == id }) {
            network[n] = faults.map { $0.id == id ? moved($0) : $0 }
        }
        for (g, track) in groups {
            guard let lost = track.lost, let f = lost.fault, f.id == id else { continue }
            groups[g]?.lost = (lost.monoNs == told.atMonoNs ? t : lost.monoNs, moved(f))
        }
        return Restamp(faultID: id, from: told.atMonoNs, to: t)
    }

    /// The fault was applied at `appliedMonoNs`: one told before is confirmed (`confirm`); one not
    /// told before is registered now, and names the elections it caused that were correlated
    /// without it (`LateCause`).
    @discardableResult
    public mutating func faultApplied(id: String, kind: FaultKind, node: NodeID, affected: [NodeID],
                                      appliedMonoNs: MonotonicNanos) -> [LateCause] {
        if confirm(id: id, appliedMonoNs: appliedMonoNs) != nil { return [] }
        return register(id: id, kind: kind, node: node, affected: affected, appliedMonoNs: appliedMonoNs)
    }

    /// A fault told by `faultApplying` was not applied after all (its process had already exited,
    /// or a restart's start failed). A node whose exit was seen meanwhile stays down, for its exit;
    /// the losses the fault had claimed go back to what they were.
    public mutating func faultWithdrawn(id: String) {
        guard let told = applying.removeValue(forKey: id) else { return }
        for (n, f) in down where f.id == id {
            if f.processGone {
                var exit = told.exit?.cause ?? ActiveFault(id: nil, kind: nil, appliedMonoNs: f.appliedMonoNs, exit: "\(n) exited")
                exit.processGone = true
                down[n] = exit
            } else {
                down[n] = nil
            }
        }
        for (n, faults) in network { network[n] = faults.filter { $0.id != id } }
        for (g, before) in told.claimed where groups[g]?.lost?.fault?.id == id {
            // The exit, when the leader's process was seen to end meanwhile; else the loss as it was.
            if let exit = told.exit, groups[g]?.leader == exit.node {
                groups[g]?.lost = (exit.cause.appliedMonoNs, exit.cause)
            } else {
                groups[g]?.lost = before
            }
        }
    }

    private mutating func register(id: String, kind: FaultKind, node: NodeID, affected: [NodeID],
                                   appliedMonoNs: MonotonicNanos) -> [LateCause] {
        var fault = ActiveFault(id: id, kind: kind, appliedMonoNs: appliedMonoNs)
        var late: [LateCause] = []
        for (g, track) in groups {
            if let u = track.unexplained, appliedMonoNs <= u.lostMonoNs,
               (kind.takesNodeDown && node == u.previous) || (kind.isNetwork && affected.contains(u.previous)) {
                late.append(LateCause(group: g, term: u.term, faultID: id, kind: kind, appliedMonoNs: appliedMonoNs))
                groups[g]?.unexplained = nil
            }
        }
        for (g, track) in groups {
            guard let leader = track.leader, (kind.takesNodeDown && node == leader) || (kind.isNetwork && affected.contains(leader)) else { continue }
            // The fault's thread may report after what it caused: the exit the supervisor saw, or a
            // follower's leader_lost (a closed connection is noticed within milliseconds). A loss
            // no earlier than the fault, and with no fault of its own, is this fault's.
            if let lost = track.lost, lost.fault?.id != nil || appliedMonoNs > lost.monoNs { continue }
            applying[id]?.claimed.append((g, track.lost))
            groups[g]?.lost = (appliedMonoNs, fault)
        }
        if kind.takesNodeDown {
            // A stop after a kill changes nothing: the first fault that took the node down is t_fail.
            // An exit reported before the fault that caused it gives way to the fault.
            if let current = down[node], current.id == nil, appliedMonoNs <= current.appliedMonoNs {
                fault.processGone = true
                down[node] = fault
            } else if down[node] == nil {
                down[node] = fault
            }
        } else if kind == .cont {
            if let d = down[node], !d.processGone { end(node) }
        } else if kind.isNetwork {
            for n in affected { network[n, default: []].append(fault) }
        }
        return late.sorted { ($0.group, $0.term) < ($1.group, $1.term) }
    }

    public mutating func faultCleared(id: String, kind: FaultKind, node: NodeID) {
        // A stop ends with its process too; then the node is down until it starts again.
        if kind == .stop, let d = down[node], d.id == id, !d.processGone { end(node) }
        for (n, faults) in network { network[n] = faults.filter { $0.id != id } }
    }

    /// Adds correlation fields to detection events and updates state from lifecycle events.
    public mutating func process(_ event: inout Event) {
        switch event.kind {
        case .nodeStarted:
            if let node = event.node { end(node) }
        case .nodeExited:
            // Down without a fault (kvctl stop or restart, a crash): its peers' detections are true ones.
            // A fault that took it down first stays the cause, with its own t_fail.
            guard let node = event.node else { return }
            let how = event.signal.map { "killed by \($0)" } ?? "exit status \(event.exitCode ?? -1)"
            var exit = ActiveFault(id: nil, kind: nil, appliedMonoNs: event.tMonoNs,
                                   exit: "\(node) exited (\(event.reason.map { "\($0), " } ?? "")\(how))")
            if let current = down[node] {
                down[node]?.processGone = true
                // A fault told but not yet applied may be withdrawn: the exit is then the cause.
                if let id = current.id, applying[id] != nil {
                    exit.processGone = true
                    applying[id]?.exit = (node, exit)
                }
                return
            }
            down[node] = exit
            for (g, track) in groups where track.leader == node && track.lost == nil { groups[g]?.lost = (event.tMonoNs, exit) }
        case .leaderLost:
            let g = event.group ?? 0
            let track = groups[g, default: GroupLeader()]
            // Reports reach the hub in arrival order, not stamp order: the old leader's step-down in
            // a transfer can arrive after its successor's election. A loss of another leader than
            // the current one, or stamped before its election, is history: the current leader was
            // not lost (taken for a loss, it kept the next kill from naming the election it caused).
            if let named = event.leader, let current = track.leader, named != current { return }
            if track.leader != nil && event.tMonoNs < track.electedMonoNs { return }
            if track.lost == nil { groups[g, default: GroupLeader()].lost = (event.tMonoNs, nil) }
        case .leaderElected:
            let g = event.group ?? 0
            if let lost = groups[g]?.lost {
                event.sinceLostMs = millisBetween(lost.monoNs, event.tMonoNs)
                if let fault = lost.fault {
                    event.faultID = fault.id; event.fault = fault.kind; event.tFailMonoNs = fault.tFail(for: event.tMonoNs)
                    if let exit = fault.exit { event.reason = exit }
                }
            }
            if let term = event.term, term >= groups[g, default: GroupLeader()].term {
                let before = groups[g]
                // Raft's new leader reports itself; primary-backup's coordinator names the node it promoted.
                groups[g] = GroupLeader(leader: event.leader ?? event.node, term: term, electedMonoNs: event.tMonoNs, lost: nil)
                if let lost = before?.lost, lost.fault?.id == nil, let previous = before?.leader {
                    groups[g]?.unexplained = (previous, lost.monoNs, term)
                }
            }
        case .declaredDead:
            guard let peer = event.peer else { return }
            if let last = event.lastHeardMonoNs, let timeout = event.timeoutMs {
                event.detectorOvershootMs = millisBetween(last + Int64(timeout) * 1_000_000, event.tMonoNs)
            }
            // Down now, or down when the silence began (the detection came after a restart or a cont).
            let cause = down[peer] ?? ended[peer].flatMap { f in event.lastHeardMonoNs.map { $0 <= f.appliedMonoNs } == true ? f : nil }
            if let fault = cause {
                event.label = .trueDetection
                annotate(&event, with: fault)
            } else {
                event.label = .falseSuspicion
                // The peer was up: name the network fault that explains the silence, if any.
                let candidates = (network[peer] ?? []) + (event.node.flatMap { network[$0] } ?? [])
                if let fault = candidates.max(by: { $0.appliedMonoNs < $1.appliedMonoNs }) {
                    annotate(&event, with: fault)
                }
            }
        default:
            break
        }
    }

    /// The node's down period is over: its cause is kept for detections still on their way.
    private mutating func end(_ node: NodeID) {
        if let d = down.removeValue(forKey: node) { ended[node] = d }
    }

    private func annotate(_ event: inout Event, with fault: ActiveFault) {
        event.faultID = fault.id
        event.fault = fault.kind
        if let exit = fault.exit { event.reason = exit }
        let tFail = fault.tFail(for: event.tMonoNs)
        event.tFailMonoNs = tFail
        event.detectionLatencyMs = millisBetween(tFail, event.tMonoNs)
    }
}
