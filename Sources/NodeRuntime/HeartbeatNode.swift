import Core
import Detection
import Synchronization
import Timing

/// The heartbeat side of one node: its detector, heartbeat numbering, readiness and event output.
/// Shared by two threads: the event loop feeds it the heartbeats it reads, and the node's timing
/// thread (`NodeClock`) asks it for the next deadline and expires peers at their deadlines.
final class HeartbeatNode: Sendable {
    let options: NodeOptions
    /// The timing thread sleeps on this; a peer that gains a deadline may need an earlier wake-up.
    let waiter = TimingWaiter()
    private let output: EventOutput
    /// Told of every verdict (dead: false, alive again: true), after its event (raft mode: a hint to Raft).
    private let onVerdict: (@Sendable (NodeID, _ alive: Bool) -> Void)?

    private struct State {
        var detector: FailureDetector
        var sequence: UInt64 = 0
        var unheard: Set<NodeID>
        /// Seed detectors know `--peer_addr` peers only by address: count them until their ids are heard.
        var unheardAnonymous: Int
        var heard: Set<NodeID> = []
        var armedCallbacks: [@Sendable () -> Void] = []
        var isArmed: Bool { unheard.isEmpty && unheardAnonymous == 0 }
    }
    private let state: Mutex<State>

    init(options: NodeOptions, output: EventOutput, onVerdict: (@Sendable (NodeID, _ alive: Bool) -> Void)? = nil) {
        self.options = options
        self.output = output
        self.onVerdict = onVerdict
        let watched: [NodeID] = options.role == .monitored ? [] : options.peers.compactMap(\.id)
        state = Mutex(State(
            detector: FailureDetector(kind: options.detector, peers: watched, intervalMs: options.hbIntervalMs,
                                      timeoutMs: options.hbTimeoutMs, phiThreshold: options.phiThreshold),
            unheard: Set(watched),
            unheardAnonymous: options.role == .detector ? options.peers.filter { $0.id == nil }.count : 0))
    }

    var isArmed: Bool { state.withLock { $0.isArmed } }

    /// Calls `body` once every configured peer has been heard at least once, i.e. once the detector
    /// watches all of them; at once if there is nobody to hear.
    func whenArmed(_ body: @escaping @Sendable () -> Void) {
        let now = state.withLock { s -> Bool in
            if s.isArmed { return true }
            s.armedCallbacks.append(body)
            return false
        }
        if now { body() }
    }

    /// Runs the armed callbacks once, whether all peers were heard or the wait gave up.
    func fireArmed() {
        let callbacks = state.withLock { s in
            defer { s.armedCallbacks = [] }
            return s.armedCallbacks
        }
        for c in callbacks { c() }
    }

    /// The last second's count of beats sent, to the node's own log only.
    func recordHeartbeatsSent(_ count: Int) {
        var e = Event(kind: .heartbeatsSent, runID: options.runID, node: options.id)
        e.count = count
        output.emit(e, reach: .logOnly)
    }

    /// A seed detector's `--peer_addr` cannot be reached: said once per outage, in the log and on stderr.
    func reportUnreachable(_ peer: PeerAddress, reason: String) {
        var e = Event(kind: .peerUnreachable, runID: options.runID, node: options.id)
        e.reason = "cannot connect to \(peer.host):\(peer.port): \(reason); retrying every \(options.hbIntervalMs) ms"
        output.emit(e, reach: .logAndStderr)
    }

    /// The next heartbeat line this node sends.
    func nextHeartbeatLine() -> String {
        let n = state.withLock { s in
            s.sequence &+= 1
            return s.sequence
        }
        return "HB \(options.id.rawValue) \(n)\n"
    }

    /// A line arrived on any connection. Lines that are not heartbeats are ignored.
    func received(line: String) {
        let now = monotonicNow()
        let parts = line.split(separator: " ")
        guard options.role != .monitored, parts.count >= 2, parts[0] == "HB",
              let peer = NodeID(validating: String(parts[1])), peer != options.id else { return }
        let (recovered, gainedDeadline, callbacks) = state.withLock { s in
            // The seed detector learns its peer's id from the first heartbeat on the connection.
            if options.role == .detector { s.detector.watch(peer) }
            var callbacks: [@Sendable () -> Void] = []
            if s.heard.insert(peer).inserted {
                if s.unheard.remove(peer) == nil, s.unheardAnonymous > 0 { s.unheardAnonymous -= 1 }
                if s.isArmed { swap(&callbacks, &s.armedCallbacks) }
            }
            let hadDeadline = s.detector.deadline(of: peer) != nil
            return (s.detector.heartbeat(from: peer, at: now), !hadDeadline, callbacks)
        }
        // Deadlines only move later, except for a peer that had none (first heard, or back from dead).
        if gainedDeadline { waiter.wake() }
        for c in callbacks { c() }
        if let recovered { report(recovered) }
    }

    /// When the timing thread must next look at the detector; nil while no peer is watched.
    var earliestDeadline: MonotonicNanos? { state.withLock { $0.detector.earliestDeadline } }

    /// Declares dead, and reports, every peer whose deadline is at or before `now`.
    func expireDue(at now: MonotonicNanos) {
        for dead in state.withLock({ $0.detector.expireDue(at: now) }) { report(dead) }
    }

    private func report(_ d: Detection) {
        var event = Event(kind: d.verdict == .dead ? .declaredDead : .declaredAlive, runID: options.runID,
                          node: options.id, peer: d.peer, at: Stamp.now())
        event.tMonoNs = d.at
        event.silenceMs = Double(d.silenceNs) / 1_000_000
        event.lastHeardMonoNs = d.lastHeard
        event.timeoutMs = options.hbTimeoutMs
        output.emit(event)
        onVerdict?(d.peer, d.verdict != .dead)
    }
}
