import Core

/// The coordinator process's bookkeeping around `Coordinator`, still a pure value: it turns the
/// name manager's effects into what each storage node must be told (an `Assignment`, versioned),
/// the pair epochs (one more at each change of a pair's active node), the syncs asked for, and
/// the notes the process reports as events. The process only sends assignments, calls the nodes
/// and feeds the answers back.
public struct CoordinatorDriver: Sendable {
    public private(set) var core: Coordinator
    /// Names this coordinator process in its assignments: a node drops a dead coordinator's
    /// numbering when a new one speaks.
    public let boot: String
    public let replicationPath: String
    public private(set) var version: UInt64 = 0
    /// Per pair.
    public private(set) var epochs: [UInt64]
    public struct SyncRequest: Sendable, Equatable {
        public var pair: Int
        public var from: NodeID
        public var id: UInt64
    }
    /// Syncs asked for and not yet reported done, by the node being synced.
    public private(set) var syncs: [NodeID: SyncRequest] = [:]
    /// Each pair's current fence round: the version of the assignment that fenced its active node.
    /// Only an answer to this round or later names a last write that can no longer move.
    public private(set) var fenceVersions: [Int: UInt64] = [:]
    private var nextSyncID: UInt64 = 0

    /// What happened, for the event log.
    public enum Note: Sendable, Equatable {
        case declaredDead(NodeID, silenceNs: Int64, lastHeardNs: Int64)
        case declaredAlive(NodeID)
        /// The pair's active node was declared dead (or came back empty).
        case activeLost(pair: Int, NodeID, epoch: UInt64)
        /// `node` serves the pair from this epoch on (a promotion of its partner, or the first to come).
        case promoted(pair: Int, NodeID, epoch: UInt64)
        case syncStarted(pair: Int, from: NodeID, to: NodeID)
        case synced(pair: Int, NodeID)
        /// The returning primary serves again, after its sync and the hand-back.
        case resumed(pair: Int, NodeID, epoch: UInt64)
        /// Neither node of the pair is alive: its keys go nowhere.
        case pairDown(pair: Int)
    }

    public struct Outcome: Sendable, Equatable {
        public var notes: [Note] = []
        /// Nodes whose assignment changed (send it now).
        public var push: [NodeID] = []
        /// Fenced active nodes: send their assignment and feed `.fenced` with the answer's `last_seq`.
        public var fence: [(pair: Int, node: NodeID)] = []
        /// The input came from a node the coordinator does not know as registered.
        public var mustRegister = false

        public init() {}

        public static func == (a: Outcome, b: Outcome) -> Bool {
            a.notes == b.notes && a.push == b.push && a.mustRegister == b.mustRegister
                && a.fence.elementsEqual(b.fence) { $0.pair == $1.pair && $0.node == $1.node }
        }
    }

    public init(config: Coordinator.Config, boot: String, replicationPath: String) {
        core = Coordinator(config: config)
        self.boot = boot
        self.replicationPath = replicationPath
        epochs = Array(repeating: 0, count: config.pairs.count)
    }

    public var allNodes: [NodeID] { core.config.pairs.flatMap { [$0.primary, $0.backup] } }

    public func pairIndex(of n: NodeID) -> Int? {
        core.config.pairs.firstIndex { $0.primary == n || $0.backup == n }
    }

    public mutating func step(_ input: Coordinator.Input, at now: Int64) -> Outcome {
        // A report about a node names its pair too (it comes from a request): only its own counts.
        switch input {
        case .synced(let p, let n), .syncFailed(let p, let n), .applied(let p, let n, _):
            guard pairIndex(of: n) == p else { return Outcome() }
        default: break
        }
        let activeBefore = core.pairs.map(\.active)
        let heardBefore = core.nodes.mapValues(\.lastHeardNs)
        if case .synced(_, let n) = input { syncs[n] = nil }
        var out = Outcome()
        var pushAll = false
        var push = Set<NodeID>()
        for effect in core.step(input, at: now) {
            switch effect {
            case .declaredDead(let n, let silence):
                out.notes.append(.declaredDead(n, silenceNs: silence, lastHeardNs: heardBefore[n].flatMap { $0 } ?? now - silence))
                syncs[n] = nil
                if let p = pairIndex(of: n), activeBefore[p] == n { out.notes.append(.activeLost(pair: p, n, epoch: epochs[p])) }
            case .recovered(let n):
                out.notes.append(.declaredAlive(n))
            case .route(let p, let active):
                if active != activeBefore[p] { epochs[p] += 1 }
                if active == nil { out.notes.append(.pairDown(pair: p)) }
                pushAll = true
            case .promoted(let p, let n):
                out.notes.append(.promoted(pair: p, n, epoch: 0))  // the epoch is filled in below, once routes are counted
            case .startSync(let p, let from, let to):
                nextSyncID += 1
                syncs[to] = SyncRequest(pair: p, from: from, id: nextSyncID)
                out.notes.append(.syncStarted(pair: p, from: from, to: to))
                push.formUnion([from, to])
            case .fence(let p, let n):
                out.fence.append((p, n))
                push.insert(n)
            case .unfence(_, let n):
                push.insert(n)
            case .resumed(let p, let n):
                out.notes.append(.resumed(pair: p, n, epoch: 0))
            case .askToRegister:
                out.mustRegister = true
            }
        }
        if case .synced(let p, let n) = input, core.nodes[n]?.alive == true { out.notes.insert(.synced(pair: p, n), at: 0) }
        // A pair that gets an active node without a promotion or a hand-back (the first node of a
        // pair to register) is served from now on too: said the same way.
        for (p, s) in core.pairs.enumerated() {
            guard let active = s.active, active != activeBefore[p] else { continue }
            let said = out.notes.contains { note in
                switch note {
                case .promoted(let q, _, _), .resumed(let q, _, _): return q == p
                default: return false
                }
            }
            if !said { out.notes.append(.promoted(pair: p, active, epoch: 0)) }
        }
        out.notes = out.notes.map { note in
            switch note {
            case .promoted(let p, let n, _): return .promoted(pair: p, n, epoch: epochs[p])
            case .resumed(let p, let n, _): return .resumed(pair: p, n, epoch: epochs[p])
            default: return note
            }
        }
        // A node that registered may need its assignment even if nothing else changed (its old one died with it).
        if case .register(let n) = input, core.nodes[n]?.registered == true { push.insert(n) }
        if pushAll { push.formUnion(allNodes) }
        // Only live nodes can take an assignment; the others get theirs when they register.
        out.push = allNodes.filter { push.contains($0) && core.nodes[$0]?.alive == true }
        out.fence = out.fence.filter { core.nodes[$0.node]?.alive == true }
        if !out.push.isEmpty { version += 1 }
        for f in out.fence { fenceVersions[f.pair] = version }
        return out
    }

    /// A registering node's last epoch of its pair: a new coordinator numbers on from the highest
    /// its nodes have seen, so that epochs (the supervisor's terms) never go back.
    public mutating func observe(epoch: UInt64, of n: NodeID) {
        guard let p = pairIndex(of: n) else { return }
        epochs[p] = max(epochs[p], epoch)
    }

    /// Whether an answer from `boot` at `version` answers the fence round `round` of pair `p`, and
    /// that round is still the pair's current one, waiting for its answer.
    public func answersFence(pair p: Int, round: UInt64, boot: String, version: UInt64) -> Bool {
        guard fenceVersions[p] == round, case .handingBack(_, nil) = core.pairs.indices.contains(p) ? core.pairs[p].phase : .down
        else { return false }
        return boot == self.boot && version >= round
    }

    /// Whether a sync report is for the sync this coordinator asked of `n` (a late report of an
    /// earlier round, or of another coordinator's, is not).
    public func isCurrentSync(_ id: UInt64, of n: NodeID) -> Bool { syncs[n]?.id == id }

    /// What node `n` must be told now.
    public func assignment(for n: NodeID) -> PBWire.Assignment? {
        guard let p = pairIndex(of: n) else { return nil }
        let s = core.pairs[p]
        var fenced = false
        if case .handingBack = s.phase, s.active == n { fenced = true }
        let partner = s.pair.primary == n ? s.pair.backup : s.pair.primary
        let standby = s.active == n && core.nodes[partner]?.alive == true ? partner.rawValue : nil
        let sync = syncs[n]
        return PBWire.Assignment(
            boot: boot, version: version, pair: p, active: s.active?.rawValue, epoch: epochs[p], fenced: fenced, standby: standby,
            sync_from: sync?.from.rawValue, sync_id: sync?.id ?? 0, replication_path: replicationPath,
            routes: core.pairs.map { $0.active?.rawValue })
    }
}
