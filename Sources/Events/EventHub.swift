import Core
import Synchronization
import Systemd
import Timing
#if canImport(Glibc)
import Glibc
#endif

/// The single ordered stream of events: correlates, then passes each to every subscriber and the
/// history as it arrives, and writes it to the JSONL log and the journal (or stderr without one)
/// in time order. An event is stamped where it happened, and a node's report can reach the hub
/// after a later event of the supervisor's; so the writer holds each event until `reorderWindowMs`
/// past its stamp and writes what is due sorted by t_mono_ns. One that arrives later than that (a
/// node paused meanwhile) is written at once, out of order. The lock covers
/// only memory (correlation, history, subscriber queues, the write queue); write(2) and
/// sd_journal_sendv run after it, by one drainer at a time, so a fault thread that tells the
/// correlator its applied moment never waits behind a journal write.
public final class EventHub: Sendable {
    public typealias Subscriber = AsyncStream<Event>
    /// Events a slow subscriber may fall behind by; past that the oldest queued are dropped.
    public static let subscriberBuffer = 4096
    public static let historySize = 2000
    /// How long the writer holds an event for earlier-stamped ones still on their way (the observed
    /// lag of a node's detection behind the supervisor's own events: 4-45 ms).
    public static let reorderWindowMs: Int64 = 100

    private struct State {
        var correlator = Correlator()
        var history: [Event] = []
        var subscribers: [Int: (kinds: Set<EventKind>?, runID: String?, sink: AsyncStream<Event>.Continuation)] = [:]
        var nextSubscriber = 0
        var logFD: Int32 = -1
        /// Events not yet due for writing, sorted by t_mono_ns, each with when it arrived.
        var held: [(event: Event, arrived: MonotonicNanos)] = []
        /// Events due, in the order to write them; `draining` while a thread writes them.
        var unwritten: [Event] = []
        var draining = false
        var closed = false

        /// Names the late fault in the election it caused, wherever the event still is.
        mutating func amend(_ c: Correlator.LateCause) {
            func fix(_ e: inout Event) {
                guard e.kind == .leaderElected, (e.group ?? 0) == c.group, e.term == c.term, e.faultID == nil else { return }
                e.faultID = c.faultID
                e.fault = c.kind
                e.tFailMonoNs = c.appliedMonoNs
                e.sinceLostMs = millisBetween(c.appliedMonoNs, e.tMonoNs)
            }
            forEachHeld(fix)
        }

        /// Mends every event still here: held, not yet written, and the recent history.
        mutating func forEachHeld(_ fix: (inout Event) -> Void) {
            for i in held.indices { fix(&held[i].event) }
            for i in unwritten.indices { fix(&unwritten[i]) }
            for i in history.indices.suffix(256) { fix(&history[i]) }
        }

        /// Moves the events correlated with a fault's told stamp to its applied stamp, wherever they
        /// still are; an event stamped before the applied stamp keeps the told one.
        mutating func amend(_ r: Correlator.Restamp) {
            func fix(_ e: inout Event) {
                guard e.faultID == r.faultID, e.tFailMonoNs == r.from, r.to <= e.tMonoNs else { return }
                e.tFailMonoNs = r.to
                if e.detectionLatencyMs != nil { e.detectionLatencyMs = millisBetween(r.to, e.tMonoNs) }
                if let since = e.sinceLostMs, since == millisBetween(r.from, e.tMonoNs) { e.sinceLostMs = millisBetween(r.to, e.tMonoNs) }
            }
            forEachHeld(fix)
        }

        mutating func hold(_ e: Event, arrived: MonotonicNanos) {
            var i = held.count
            while i > 0 && held[i - 1].event.tMonoNs > e.tMonoNs { i -= 1 }
            held.insert((e, arrived), at: i)
        }

        /// Moves to the write queue, in stamp order, the held events stamped or arrived before
        /// `watermark` (all with nil): a stamp from the future (a node's wrong clock) is held no
        /// longer than any other event.
        mutating func release(before watermark: MonotonicNanos?) {
            guard let w = watermark else {
                unwritten += held.map(\.event)
                held.removeAll()
                return
            }
            // Every due event, not only a prefix: one stamped in the future must not wait behind
            // later arrivals stamped before it. Order kept on both sides.
            guard held.contains(where: { $0.event.tMonoNs <= w || $0.arrived <= w }) else { return }
            var keep: [(event: Event, arrived: MonotonicNanos)] = []
            for h in held {
                if h.event.tMonoNs <= w || h.arrived <= w { unwritten.append(h.event) } else { keep.append(h) }
            }
            held = keep
        }
    }
    private let state: Mutex<State>
    private let useJournal: Bool
    /// Without a journal, events are echoed to stderr as sentences (off in unit tests).
    private let echoToStderr: Bool
    public let logPath: String

    public init(logPath: String, useJournal: Bool, echoToStderr: Bool = true) throws {
        let fd = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw EventLogError(path: logPath, reason: String(cString: strerror(errno)))
        }
        var s = State()
        s.logFD = fd
        state = Mutex(s)
        self.useJournal = useJournal
        self.echoToStderr = echoToStderr
        self.logPath = logPath
        // Writes what came due while nothing was published; ends with `close`. A thread of its own:
        // a cooperative-pool task would wait behind whatever blocks the pool's few threads.
        startDetachedThread { [weak self] in
            while let hub = self, hub.flushDue() { usleep(20_000) }
        }
    }

    /// Writes the held events now due; false once the hub is closed.
    private func flushDue() -> Bool {
        let (open, mustDrain) = state.withLock { s -> (Bool, Bool) in
            if s.closed { return (false, false) }
            s.release(before: monotonicNow() - Self.reorderWindowMs * 1_000_000)
            if s.draining || s.unwritten.isEmpty { return (true, false) }
            s.draining = true
            return (true, true)
        }
        if mustDrain { drain() }
        return open
    }

    /// `alreadyCorrelated`: the event comes from another hub that labelled it (an experiment's,
    /// whose faults this hub's correlator never saw): it is recorded and passed on as it is.
    public func publish(_ incoming: Event, alreadyCorrelated: Bool = false) {
        let mustDrain = state.withLock { s -> Bool in
            var event = incoming
            if !alreadyCorrelated { s.correlator.process(&event) }
            s.history.append(event)
            if s.history.count > Self.historySize { s.history.removeFirst(s.history.count - Self.historySize) }
            for (_, sub) in s.subscribers where (sub.kinds == nil || sub.kinds!.contains(event.kind))
                && (sub.runID == nil || sub.runID == event.runID) {
                sub.sink.yield(event)
            }
            let now = monotonicNow()
            s.hold(event, arrived: now)
            s.release(before: s.closed ? nil : now - Self.reorderWindowMs * 1_000_000)
            if s.draining || s.unwritten.isEmpty { return false }
            s.draining = true
            return true
        }
        if mustDrain { drain() }
    }

    /// Writes queued events to the log and the journal, outside the lock, until none is left.
    /// Only one thread drains at a time, so the order of the queue is the order on disk.
    private func drain() {
        while true {
            let (batch, fd) = state.withLock { s -> ([Event], Int32) in
                let batch = s.unwritten
                s.unwritten.removeAll(keepingCapacity: true)
                if batch.isEmpty { s.draining = false }
                return (batch, s.logFD)
            }
            if batch.isEmpty { return }
            var bytes: [UInt8] = []
            for event in batch { bytes += Array((event.jsonLine() + "\n").utf8) }
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }  // a full disk must not stop the daemon; the journal still has them
                offset += n
            }
            for event in batch { toJournal(event) }
        }
    }

    public func faultApplied(id: String, kind: FaultKind, node: NodeID, affected: [NodeID], appliedMonoNs: MonotonicNanos) {
        state.withLock { s in
            // Told before its syscall: what was correlated with the told stamp moves to this one.
            if let r = s.correlator.confirm(id: id, appliedMonoNs: appliedMonoNs) {
                s.amend(r)
                return
            }
            let late = s.correlator.faultApplied(id: id, kind: kind, node: node, affected: affected, appliedMonoNs: appliedMonoNs)
            // An election correlated before its fault was reported: named now, in what still
            // holds it (the events not yet written, and the history `kvctl events` reads).
            for cause in late { s.amend(cause) }
        }
    }

    /// See `Correlator.faultApplying`: called on the fault's thread just before its syscall.
    public func faultApplying(id: String, kind: FaultKind, node: NodeID, affected: [NodeID], atMonoNs: MonotonicNanos) {
        state.withLock { s in
            for cause in s.correlator.faultApplying(id: id, kind: kind, node: node, affected: affected, atMonoNs: atMonoNs) {
                s.amend(cause)
            }
        }
    }

    /// A fault told but refused after all (its process had already gone): the correlator forgets
    /// it, and the events still held stop naming it, since it ended as fault_failed.
    public func faultWithdrawn(id: String) {
        state.withLock { s in
            s.correlator.faultWithdrawn(id: id)
            func strip(_ e: inout Event) {
                guard e.faultID == id, e.kind == .leaderElected || e.kind == .declaredDead else { return }
                e.faultID = nil
                e.fault = nil
            }
            s.forEachHeld(strip)
        }
    }

    public func faultCleared(id: String, kind: FaultKind, node: NodeID) {
        state.withLock { $0.correlator.faultCleared(id: id, kind: kind, node: node) }
    }

    /// A live stream of events (optionally only some kinds), after the `replay` most recent ones.
    /// On a closed hub the stream holds the replay and ends: nothing more will come.
    public func subscribe(kinds: Set<EventKind>?, replay: Int = 0, runID: String? = nil) -> Subscriber {
        let (stream, sink) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(Self.subscriberBuffer))
        let id = state.withLock { s -> Int? in
            let mine = s.history.filter { (kinds == nil || kinds!.contains($0.kind)) && (runID == nil || $0.runID == runID) }
            for e in mine.suffix(replay) { sink.yield(e) }
            if s.closed { return nil }
            s.nextSubscriber += 1
            s.subscribers[s.nextSubscriber] = (kinds, runID, sink)
            return s.nextSubscriber
        }
        guard let id else {
            sink.finish()
            return stream
        }
        sink.onTermination = { [weak self] _ in self?.state.withLock { _ = $0.subscribers.removeValue(forKey: id) } }
        return stream
    }

    public func recent(_ n: Int, kinds: Set<EventKind>?, runID: String? = nil) -> [Event] {
        state.withLock { s in
            Array(s.history.filter { (kinds == nil || kinds!.contains($0.kind)) && (runID == nil || $0.runID == runID) }.suffix(n))
        }
    }

    /// Ends every subscription, writes what is queued and syncs the log to disk.
    public func close() {
        let (sinks, mustDrain) = state.withLock { s -> ([AsyncStream<Event>.Continuation], Bool) in
            let sinks = s.subscribers.values.map(\.sink)
            s.subscribers.removeAll()
            s.closed = true
            s.release(before: nil)
            if s.draining { return (sinks, false) }
            s.draining = true
            return (sinks, true)
        }
        // Outside the lock: finishing runs each stream's onTermination, which takes it.
        for sink in sinks { sink.finish() }
        if mustDrain { drain() }
        // Another thread may be draining: wait (bounded) until it has written everything.
        let deadline = monotonicNow() + 2_000_000_000
        while state.withLock({ $0.draining || !$0.unwritten.isEmpty || !$0.held.isEmpty }) && monotonicNow() < deadline { usleep(200) }
        let fd = state.withLock { $0.logFD }
        fsync(fd)
    }

    /// Supervisor diagnostics (not events): journal when present, stderr otherwise.
    public func log(_ message: String, priority: Int = 6, node: NodeID? = nil) {
        if useJournal {
            var fields: [(String, String)] = [("SYSLOG_IDENTIFIER", "kvsupervisor")]
            if let node { fields.append(("KV_NODE", node.rawValue)) }
            Journal.send(message: message, priority: priority, fields: fields)
        } else {
            writeStderr("kvsupervisor: " + (node.map { "[\($0)] " } ?? "") + message)
        }
    }

    private func toJournal(_ e: Event) {
        let message = EventText.message(e)
        guard useJournal else {
            if echoToStderr { writeStderr("kvsupervisor: \(message)") }
            return
        }
        var fields: [(String, String)] = [
            ("MESSAGE_ID", MessageIDs.id(for: e.kind)), ("SYSLOG_IDENTIFIER", "kvsupervisor"),
            ("KV_EVENT", e.kind.rawValue), ("KV_RUN_ID", e.runID), ("KV_JSON", e.jsonLine()),
        ]
        if let n = e.node { fields.append(("KV_NODE", n.rawValue)) }
        if let p = e.peer { fields.append(("KV_PEER", p.rawValue)) }
        if let l = e.detectionLatencyMs { fields.append(("KV_LATENCY_MS", String(l))) }
        if let f = e.faultID { fields.append(("KV_FAULT_ID", f)) }
        if let f = e.fault { fields.append(("KV_FAULT", f.rawValue)) }
        if let l = e.label { fields.append(("KV_LABEL", l.rawValue)) }
        if let l = e.leader { fields.append(("KV_LEADER", l.rawValue)) }
        if let t = e.term { fields.append(("KV_TERM", String(t))) }
        if let g = e.group { fields.append(("KV_GROUP", String(g))) }
        if let s = e.sinceLostMs { fields.append(("KV_SINCE_LOST_MS", String(s))) }
        Journal.send(message: message, priority: EventText.priority(e), fields: fields)
    }
}

public struct EventLogError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "cannot open event log \(path): \(reason)" }
}
