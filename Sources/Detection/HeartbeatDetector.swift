import Core

/// What the detector concluded about a peer, and the evidence.
public struct Detection: Sendable, Equatable {
    public enum Verdict: Sendable, Equatable { case dead, alive }
    public var verdict: Verdict
    public var peer: NodeID
    public var at: MonotonicNanos
    /// When the last heartbeat before this verdict arrived.
    public var lastHeard: MonotonicNanos
    /// Silence observed: `at - lastHeard`.
    public var silenceNs: Int64 { at - lastHeard }
}

/// Fixed-timeout failure detector: a peer is dead once `timeout` passes with no heartbeat from it.
///
/// Pure state machine: callers feed it heartbeats and deadline expiries with explicit times, and
/// arm one timer per peer at `deadline(of:)`. A peer is not watched until its first heartbeat, so
/// nodes booting a few milliseconds apart are not declared dead at start.
public struct HeartbeatDetector: Sendable {
    public let timeoutNs: Int64

    private struct PeerState {
        var lastHeard: MonotonicNanos?
        var isDead = false
    }
    private var peers: [NodeID: PeerState]

    public init(peers: [NodeID], timeoutNs: Int64) {
        precondition(timeoutNs > 0, "detector timeout must be positive")
        self.timeoutNs = timeoutNs
        self.peers = Dictionary(uniqueKeysWithValues: peers.map { ($0, PeerState()) })
    }

    public var watchedPeers: [NodeID] { peers.keys.sorted() }

    /// Starts watching a peer learned at run time (the seed detector learns its peer's id from the wire).
    public mutating func watch(_ peer: NodeID) {
        if peers[peer] == nil { peers[peer] = PeerState() }
    }

    /// Records a heartbeat. Returns `.alive` if the peer had been declared dead (recovery).
    public mutating func heartbeat(from peer: NodeID, at now: MonotonicNanos) -> Detection? {
        guard var state = peers[peer] else { return nil }
        let previous = state.lastHeard
        let wasDead = state.isDead
        state.lastHeard = now
        state.isDead = false
        peers[peer] = state
        if wasDead, let previous {
            return Detection(verdict: .alive, peer: peer, at: now, lastHeard: previous)
        }
        return nil
    }

    /// When the peer will be declared dead if nothing more is heard; nil if unwatched or already dead.
    public func deadline(of peer: NodeID) -> MonotonicNanos? {
        guard let state = peers[peer], !state.isDead, let last = state.lastHeard else { return nil }
        return last + timeoutNs
    }

    /// Called when the peer's timer fires. Declares it dead if its deadline has really passed
    /// (a heartbeat may have moved the deadline after the timer was armed).
    public mutating func expire(_ peer: NodeID, at now: MonotonicNanos) -> Detection? {
        guard let deadline = deadline(of: peer), now >= deadline, let last = peers[peer]?.lastHeard else { return nil }
        peers[peer]?.isDead = true
        return Detection(verdict: .dead, peer: peer, at: now, lastHeard: last)
    }

    /// The soonest deadline of any watched, living peer: when a timing thread must next look.
    public var earliestDeadline: MonotonicNanos? {
        peers.values.lazy.compactMap { $0.isDead ? nil : $0.lastHeard.map { $0 + timeoutNs } }.min()
    }

    /// Declares dead every peer whose deadline is at or before `now`, in id order.
    public mutating func expireDue(at now: MonotonicNanos) -> [Detection] {
        peers.keys.sorted().compactMap { expire($0, at: now) }
    }

    public func isDead(_ peer: NodeID) -> Bool { peers[peer]?.isDead ?? false }
}
