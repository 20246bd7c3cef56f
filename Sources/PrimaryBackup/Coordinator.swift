import Core

/// The original name manager (NM) of primary-backup mode as a pure value: storage nodes register
/// and beat; a node silent for `failAfterNs` is declared dead at the next check (every
/// `checkIntervalNs`, the original's 5 s / 15 s); a dead active node's partner is promoted and the
/// pair's keys routed to it; a node that registers again is synced in full from the active copy
/// (the original's SYNC_ALL), and a returning primary then gets its role back through a fenced
/// hand-back, so that no write acknowledged by the acting primary is left behind:
///
///     normal ──primary dead──▶ failedOver ──primary registers──▶ syncing ──synced(seq)──▶
///     handingBack (active fenced: refuses writes, reports its last seq) ──target applied it──▶ normal
///
/// Inputs carry explicit times (monotonic ns); the result is the effects to carry out, in order.
/// The coordinator process (`kvnode --mode coordinator`) only carries them out.
public struct Coordinator: Sendable, Equatable {
    public struct Pair: Sendable, Equatable {
        public var primary: NodeID
        public var backup: NodeID
        public init(primary: NodeID, backup: NodeID) { self.primary = primary; self.backup = backup }
        func partner(of n: NodeID) -> NodeID { n == primary ? backup : primary }
    }

    public struct Config: Sendable, Equatable {
        public var pairs: [Pair]
        public var checkIntervalNs: Int64
        public var failAfterNs: Int64
        public init(pairs: [Pair], checkIntervalNs: Int64, failAfterNs: Int64) {
            self.pairs = pairs; self.checkIntervalNs = checkIntervalNs; self.failAfterNs = failAfterNs
        }
    }

    /// Where a pair stands.
    public enum Phase: Sendable, Equatable {
        /// The primary serves; the backup, when alive and synced, follows it.
        case normal
        /// The primary is dead: the backup serves.
        case failedOver
        /// `target` registered again and is being synced in full from the active node.
        case syncing(target: NodeID)
        /// The sync is done: the active node is fenced (it refuses writes) until `target` has
        /// applied every write it acknowledged, then `target` takes over.
        case handingBack(target: NodeID, fencedAt: UInt64?)
        /// Neither node is alive.
        case down
    }

    public struct PairState: Sendable, Equatable {
        public var pair: Pair
        /// Who serves the pair's keys (nil: nobody).
        public var active: NodeID?
        public var phase: Phase
        /// The other node holds every write the active one acknowledged up to its replication
        /// lag: false after it was down, until a full sync brought it back.
        public var standbySynced: Bool
    }

    public struct NodeState: Sendable, Equatable {
        public var registered = false
        public var alive = false
        public var lastHeardNs: Int64?
    }

    public enum Effect: Sendable, Equatable {
        /// A storage node silent for `silenceNs`, declared dead.
        case declaredDead(NodeID, silenceNs: Int64)
        /// A node heard again (registered after being dead): recovery detected.
        case recovered(NodeID)
        /// The pair's keys now go to `active` (nil: nowhere).
        case route(pair: Int, active: NodeID?)
        /// `node` is promoted to serve the pair (the partner is dead).
        case promoted(pair: Int, NodeID)
        /// Copy everything of the pair from `from` to `to`; `synced` reports the end.
        case startSync(pair: Int, from: NodeID, to: NodeID)
        /// The active node must stop acknowledging writes and say its last sequence number.
        case fence(pair: Int, NodeID)
        /// The active node may acknowledge writes again (a hand-back that did not finish).
        case unfence(pair: Int, NodeID)
        /// `node` serves the pair again as its primary (after a hand-back).
        case resumed(pair: Int, NodeID)
        /// A heartbeat from a node that has not registered: it must register first.
        case askToRegister(NodeID)
    }

    public enum Input: Sendable, Equatable {
        case register(NodeID)
        case heartbeat(NodeID)
        /// The periodic check of every node's silence.
        case check
        /// The full copy to `node` is done (it applied the snapshot and the writes since).
        case synced(pair: Int, NodeID)
        /// The fenced active node's last acknowledged sequence number.
        case fenced(pair: Int, seq: UInt64)
        /// `node` has applied the pair's writes up to `seq`.
        case applied(pair: Int, NodeID, seq: UInt64)
        case syncFailed(pair: Int, NodeID)
        /// The active node's stream to its standby broke off for good (its queue overflowed): the
        /// standby needs a full copy again.
        case resync(pair: Int)
    }

    public let config: Config
    public private(set) var pairs: [PairState]
    public private(set) var nodes: [NodeID: NodeState]

    public init(config: Config) {
        self.config = config
        pairs = config.pairs.map { PairState(pair: $0, active: nil, phase: .down, standbySynced: false) }
        nodes = Dictionary(uniqueKeysWithValues: config.pairs.flatMap { [$0.primary, $0.backup] }.map { ($0, NodeState()) })
    }

    /// The pair a key belongs to: the Raft groups' rule, over the pairs.
    public func pair(of key: String) -> Int { KeyGroups.group(of: key, groups: pairs.count) }

    /// Who serves `key` now.
    public func route(_ key: String) -> NodeID? { pairs[pair(of: key)].active }

    public mutating func step(_ input: Input, at now: Int64) -> [Effect] {
        switch input {
        case .register(let n): return register(n, now)
        case .heartbeat(let n):
            guard nodes[n] != nil else { return [] }
            // A node declared dead that beats again (it was paused, or cut off) holds what it held
            // then, and its pair has moved on: it comes back the one way, by registering and a full copy.
            guard nodes[n]!.registered, nodes[n]!.alive else { return [.askToRegister(n)] }
            nodes[n]!.lastHeardNs = now
            return []
        case .check: return check(now)
        case .synced(let p, let n): return synced(p, n)
        case .fenced(let p, let seq): return fenced(p, seq)
        case .applied(let p, let n, let seq): return applied(p, n, seq)
        case .syncFailed(let p, let n): return syncFailed(p, n)
        case .resync(let p): return resync(p)
        }
    }

    private func pairIndex(of n: NodeID) -> Int? { pairs.firstIndex { $0.pair.primary == n || $0.pair.backup == n } }

    private mutating func register(_ n: NodeID, _ now: Int64) -> [Effect] {
        guard nodes[n] != nil, let p = pairIndex(of: n) else { return [] }
        let was = nodes[n]!
        nodes[n] = NodeState(registered: true, alive: true, lastHeardNs: now)
        var effects: [Effect] = []
        if was.registered && !was.alive { effects.append(.recovered(n)) }
        if was.registered && was.alive {
            // Registered again before the check saw it silent: it restarted, and what it held is
            // gone as surely as after a declared death.
            effects += lost(n, pair: p)
        }
        var s = pairs[p]
        defer { pairs[p] = s }
        switch s.phase {
        case .down:
            // The first of the pair to come (back) serves it with what it holds.
            s.active = n
            s.phase = n == s.pair.primary ? .normal : .failedOver
            s.standbySynced = false
            effects.append(.route(pair: p, active: n))
            if n == s.pair.backup { effects.append(.promoted(pair: p, n)) }
        case .normal, .failedOver:
            guard let active = s.active, active != n else { break }
            // The partner serves: a full copy first. A returning primary then takes its role back.
            s.standbySynced = false
            if n == s.pair.primary { s.phase = .syncing(target: n) }
            effects.append(.startSync(pair: p, from: active, to: n))
        case .syncing(let target), .handingBack(let target, _):
            guard target == n, let active = s.active else { break }
            // Restarted in the middle of its sync: start it over.
            if case .handingBack = s.phase { effects.append(.unfence(pair: p, active)) }
            s.phase = .syncing(target: n)
            effects.append(.startSync(pair: p, from: active, to: n))
        }
        return effects
    }

    private mutating func check(_ now: Int64) -> [Effect] {
        var effects: [Effect] = []
        for (n, st) in nodes.sorted(by: { $0.key < $1.key }) where st.alive {
            guard let heard = st.lastHeardNs, now - heard >= config.failAfterNs else { continue }
            nodes[n]!.alive = false
            effects.append(.declaredDead(n, silenceNs: now - heard))
            if let p = pairIndex(of: n) { effects += lost(n, pair: p) }
        }
        return effects
    }

    /// `n` of pair `p` is dead: fail over, or abandon a sync or hand-back it was part of.
    private mutating func lost(_ n: NodeID, pair p: Int) -> [Effect] {
        var s = pairs[p]
        defer { pairs[p] = s }
        let partner = s.pair.partner(of: n)
        let partnerAlive = nodes[partner]!.alive
        switch s.phase {
        case .down: return []
        case .syncing(let target) where target == n, .handingBack(let target, _) where target == n:
            // The returning node died again before taking over: the active one goes on.
            var effects: [Effect] = []
            if case .handingBack = s.phase, let active = s.active { effects.append(.unfence(pair: p, active)) }
            s.phase = s.active == s.pair.primary ? .normal : .failedOver
            return effects
        default:
            guard s.active == n else {
                // The standby died: the pair goes on without a copy, and needs a sync when it returns.
                s.standbySynced = false
                return []
            }
            // The active node died. Only a standby that holds the pair's writes (synced, up to
            // the replication lag: the mode's known loss) may take over; one still syncing holds
            // only part of them, but is the only copy left, and serves what it has.
            // A fence on it ends with it (said, so that whoever keeps it lets it go).
            var effects: [Effect] = []
            if case .handingBack = s.phase { effects.append(.unfence(pair: p, n)) }
            guard partnerAlive else {
                s.active = nil
                s.phase = .down
                return effects + [.route(pair: p, active: nil)]
            }
            s.active = partner
            s.phase = partner == s.pair.primary ? .normal : .failedOver
            s.standbySynced = false
            return effects + [.promoted(pair: p, partner), .route(pair: p, active: partner)]
        }
    }

    private mutating func synced(_ p: Int, _ n: NodeID) -> [Effect] {
        guard pairs.indices.contains(p) else { return [] }
        var s = pairs[p]
        defer { pairs[p] = s }
        guard nodes[n]?.alive == true, s.active != nil, s.active != n else { return [] }
        if case .syncing(let target) = s.phase, target == n {
            // The returning primary takes its role back once it has every acknowledged write.
            s.phase = .handingBack(target: n, fencedAt: nil)
            return [.fence(pair: p, s.active!)]
        }
        // A returning backup: synced, it follows again.
        s.standbySynced = true
        return []
    }

    private mutating func fenced(_ p: Int, _ seq: UInt64) -> [Effect] {
        guard pairs.indices.contains(p), case .handingBack(let target, nil) = pairs[p].phase else { return [] }
        pairs[p].phase = .handingBack(target: target, fencedAt: seq)
        return []
    }

    private mutating func applied(_ p: Int, _ n: NodeID, _ seq: UInt64) -> [Effect] {
        guard pairs.indices.contains(p), case .handingBack(let target, let fencedAt?) = pairs[p].phase, target == n, seq >= fencedAt,
              let old = pairs[p].active else { return [] }
        pairs[p].active = n
        pairs[p].phase = .normal
        pairs[p].standbySynced = true
        // The old active node becomes the standby again: it holds everything up to the fence.
        return [.route(pair: p, active: n), .resumed(pair: p, n), .unfence(pair: p, old)]
    }

    private mutating func syncFailed(_ p: Int, _ n: NodeID) -> [Effect] {
        guard pairs.indices.contains(p), let active = pairs[p].active else { return [] }
        switch pairs[p].phase {
        case .syncing(let target) where target == n:
            return [.startSync(pair: p, from: active, to: n)]
        case .handingBack(let target, _) where target == n:
            pairs[p].phase = .syncing(target: n)
            return [.unfence(pair: p, active), .startSync(pair: p, from: active, to: n)]
        default:
            return n != active && nodes[n]?.alive == true && !pairs[p].standbySynced ? [.startSync(pair: p, from: active, to: n)] : []
        }
    }

    private mutating func resync(_ p: Int) -> [Effect] {
        guard pairs.indices.contains(p), let active = pairs[p].active else { return [] }
        let partner = pairs[p].pair.partner(of: active)
        switch pairs[p].phase {
        case .normal, .failedOver:
            // Not synced: a copy is asked for already (or the partner is away and will get one on its return).
            guard nodes[partner]?.alive == true, pairs[p].standbySynced else { return [] }
            pairs[p].standbySynced = false
            return [.startSync(pair: p, from: active, to: partner)]
        default:
            return []  // a sync or hand-back under way copies it in full already
        }
    }
}
