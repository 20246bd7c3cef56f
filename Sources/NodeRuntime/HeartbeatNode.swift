import Core
import Detection
import NIOCore

/// The heartbeat side of one node: its detector, one deadline timer per peer, and event output.
/// Confined to one event loop; every method runs on `loop`.
final class HeartbeatNode {
    let options: NodeOptions
    let loop: any EventLoop
    private var detector: HeartbeatDetector
    private var timers: [NodeID: Scheduled<Void>] = [:]
    private let output: EventOutput
    private var sequence: UInt64 = 0
    private var unheard: Set<NodeID>
    /// Seed detectors know `--peer_addr` peers only by address: count them until their ids are heard.
    private var unheardAnonymous: Int
    private var heard: Set<NodeID> = []
    var isArmed: Bool { unheard.isEmpty && unheardAnonymous == 0 }
    private var armedCallbacks: [() -> Void] = []

    init(options: NodeOptions, loop: any EventLoop, output: EventOutput) {
        self.options = options
        self.loop = loop
        self.output = output
        let watched: [NodeID] = options.role == .monitored ? [] : options.peers.compactMap(\.id)
        self.detector = HeartbeatDetector(peers: watched, timeoutNs: Int64(options.hbTimeoutMs) * 1_000_000)
        self.unheard = Set(watched)
        self.unheardAnonymous = options.role == .detector ? options.peers.filter { $0.id == nil }.count : 0
    }

    /// Calls `body` once every configured peer has been heard at least once, i.e. once the detector
    /// watches all of them; at once if there is nobody to hear.
    func whenArmed(_ body: @escaping () -> Void) {
        if isArmed { body() } else { armedCallbacks.append(body) }
    }

    /// Runs the armed callbacks once, whether all peers were heard or the wait gave up.
    func fireArmed() {
        let callbacks = armedCallbacks
        armedCallbacks = []
        for c in callbacks { c() }
    }

    /// The next heartbeat line this node sends.
    func nextHeartbeatLine() -> String {
        sequence &+= 1
        return "HB \(options.id.rawValue) \(sequence)\n"
    }

    /// A line arrived on any connection. Lines that are not heartbeats are ignored.
    func received(line: String) {
        let now = monotonicNow()
        let parts = line.split(separator: " ")
        guard parts.count >= 2, parts[0] == "HB", let peer = NodeID(validating: String(parts[1])),
              peer != options.id else { return }
        if options.role == .monitored { return }
        // The seed detector learns its peer's id from the first heartbeat on the connection.
        if options.role == .detector { detector.watch(peer) }
        if heard.insert(peer).inserted {
            if unheard.remove(peer) == nil, unheardAnonymous > 0 { unheardAnonymous -= 1 }
            if isArmed { fireArmed() }
        }
        if let recovered = detector.heartbeat(from: peer, at: now) {
            report(recovered)
        }
        rearm(peer)
    }

    /// Moves the peer's timer to its new deadline: the deadline is a timer, not a periodic scan.
    private func rearm(_ peer: NodeID) {
        timers[peer]?.cancel()
        guard let deadline = detector.deadline(of: peer) else { return }
        let wait = max(0, deadline - monotonicNow())
        let loopBoundSelf = NIOLoopBound(self, eventLoop: loop)
        timers[peer] = loop.scheduleTask(in: .nanoseconds(wait)) {
            loopBoundSelf.value.deadlinePassed(peer)
        }
    }

    private func deadlinePassed(_ peer: NodeID) {
        let now = monotonicNow()
        if let dead = detector.expire(peer, at: now) {
            report(dead)
        } else {
            rearm(peer)  // woke a little early: wait for the rest
        }
    }

    private func report(_ d: Detection) {
        var event = Event(kind: d.verdict == .dead ? .declaredDead : .declaredAlive, runID: options.runID,
                          node: options.id, peer: d.peer, at: Stamp.now())
        event.tMonoNs = d.at
        event.silenceMs = Double(d.silenceNs) / 1_000_000
        event.lastHeardMonoNs = d.lastHeard
        event.timeoutMs = options.hbTimeoutMs
        output.emit(event)
    }

    func emit(_ event: Event) { output.emit(event) }
}
