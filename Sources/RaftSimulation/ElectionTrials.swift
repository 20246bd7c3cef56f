import HeapModule
import Raft

public struct ElectionTrialOptions: Sendable {
    public var servers = 5
    /// Election timeouts are drawn in [electionMinMs, electionMaxMs).
    public var electionMinMs = 150
    public var electionMaxMs = 300
    public var heartbeatMs = 50
    /// One-way network delay, uniform in delayMs ± jitterMs.
    public var delayMs = 7.0
    public var jitterMs = 1.0
    public var trials = 1000
    /// A trial with no new leader this long after the crash did not converge.
    public var limitMs = 10_000
    public var seed: UInt64 = 1
    /// The Raft core's pre-vote round (on in the store; the Raft paper's Figure 16 had none).
    public var preVote = true
    /// A leader that has not heard from a quorum for an election timeout steps down (on in the
    /// store; not in Figure 16's LogCabin).
    public var checkQuorum = true
    public init() {}

    /// What is wrong with these options, if anything (a sentence a person can act on).
    public var problem: String? {
        if servers < 3 { return "a cluster needs at least 3 servers to survive its leader's crash (got \(servers))" }
        if servers > 99 { return "at most 99 servers (got \(servers))" }
        if electionMinMs < 1 || electionMaxMs < electionMinMs { return "the election timeout range must be MIN-MAX with 0 < MIN <= MAX (got \(electionMinMs)-\(electionMaxMs))" }
        if heartbeatMs < 1 || heartbeatMs >= electionMinMs { return "the heartbeat interval must be at least 1 ms and below the election timeout (got \(heartbeatMs) ms)" }
        if delayMs < 0 || jitterMs < 0 || jitterMs > delayMs { return "the delay must be at least 0 and the jitter at most the delay (got \(delayMs) ± \(jitterMs) ms)" }
        if trials < 1 { return "at least one trial (got \(trials))" }
        if limitMs < electionMaxMs { return "the limit must be at least the largest election timeout (got \(limitMs) ms)" }
        return nil
    }

    /// The mean time to a new leader when no vote splits: the first follower's timeout (the
    /// minimum of n-1 uniform draws) after the last heartbeat reached it, less how far into the
    /// heartbeat interval the crash came (uniform), plus a vote round trip (and a pre-vote one).
    public var modelMeanMs: Double {
        let lo = Double(electionMinMs), hi = Double(electionMaxMs), n = Double(servers - 1)
        return lo + (hi - lo) / (n + 1) + delayMs - Double(heartbeatMs) / 2 + Double(roundTrips) * 2 * delayMs
    }

    /// Vote round trips of one election: a pre-vote and a vote, or the vote alone.
    var roundTrips: Int { preVote ? 2 : 1 }

    /// The earliest a new leader can be elected: the shortest timeout, started by a heartbeat sent
    /// a whole interval before the crash, plus the heartbeat's trip and the votes' ones.
    public var floorMs: Double { Double(electionMinMs) - Double(heartbeatMs) + Double(1 + 2 * roundTrips) * (delayMs - jitterMs) }
}

public struct ElectionTrial: Sendable {
    public var trial: Int
    /// How far into the leader's heartbeat interval the crash came.
    public var crashOffsetMs: Double
    /// From the crash to a new leader; nil if none within the limit.
    public var electionMs: Double?
    public var newLeader: ReplicaID?
    /// How many terms the election took (1: the first candidate won).
    public var terms: UInt64
    /// The node crashed still led at that moment. Not so when it had stepped down before (its
    /// check-quorum found no quorum within an election timeout): the time then says nothing.
    public var crashedTheLeader = true
}

/// Crashes a stable leader at a random point of its heartbeat interval and times the election
/// that follows, in simulated time: an event queue of 1 ms ticks (each replica with its own
/// phase) and message deliveries with the configured delay. Deterministic for a seed.
public enum ElectionTrials {
    public static func run(_ o: ElectionTrialOptions) -> [ElectionTrial] {
        (0..<o.trials).map { trial in
            var run = ElectionTrialRun(o, trial: trial)
            return run.run()
        }
    }

    /// One trial again (the same seed gives the same trial), with what happened from two heartbeat
    /// intervals before the crash to the new leader: every role change the Raft core notes and
    /// every vote and pre-vote delivered, each with its time in ms from the crash.
    public static func trace(_ o: ElectionTrialOptions, trial: Int) -> (ElectionTrial, [(ms: Double, line: String)]) {
        var run = ElectionTrialRun(o, trial: trial)
        run.log = []
        let result = run.run()
        let from = run.crashAt - Int64(2 * o.heartbeatMs) * 1000
        return (result, run.log!.filter { $0.at >= from }.map { (Double($0.at - run.crashAt) / 1000, $0.line) })
    }
}

private struct ElectionTrialRun {
    enum Kind { case tick(ReplicaID), deliver(Message) }
    struct Event: Comparable {
        var at: Int64  // µs
        var seq: Int
        var kind: Kind
        static func < (a: Event, b: Event) -> Bool { (a.at, a.seq) < (b.at, b.seq) }
        static func == (a: Event, b: Event) -> Bool { a.at == b.at && a.seq == b.seq }
    }

    let o: ElectionTrialOptions
    let trial: Int
    var rng: SimRandom
    var nodes: [ReplicaID: Raft] = [:]
    var down: Set<ReplicaID> = []
    var queue = Heap<Event>()
    var seq = 0
    var now: Int64 = 0
    /// When the leader last sent heartbeats (empty appends to every follower).
    var lastHeartbeat: Int64 = -1
    var crashAt: Int64 = 0
    /// When tracing: what happened and when (µs), from the end of the warm-up.
    var log: [(at: Int64, line: String)]?
    var recording = false

    init(_ o: ElectionTrialOptions, trial: Int) {
        self.o = o
        self.trial = trial
        rng = SimRandom(seed: o.seed &* 1_000_003 &+ UInt64(trial))
        let ids = Array(1...o.servers)
        for id in ids {
            var c = Raft.Config(id: id, voters: ids)
            c.electionTicks = o.electionMinMs
            c.maxElectionTicks = o.electionMaxMs
            c.heartbeatTicks = o.heartbeatMs
            c.preVote = o.preVote
            c.checkQuorum = o.checkQuorum
            c.seed = rng.next()
            nodes[id] = Raft(config: c)
            schedule(at: Int64(rng.below(1000)), .tick(id))  // each replica's clock has its own phase
        }
    }

    mutating func schedule(at: Int64, _ kind: Kind) {
        seq += 1
        queue.insert(Event(at: at, seq: seq, kind: kind))
    }

    var leader: ReplicaID? { nodes.keys.sorted().first { !down.contains($0) && nodes[$0]!.role == .leader } }

    mutating func run() -> ElectionTrial {
        // A leader, and a couple of seconds of steady heartbeats.
        nodes[1]!.campaign()
        process(1)
        runUntil { $0.now >= 2_000_000 && $0.leader != nil }
        guard let old = leader else { return ElectionTrial(trial: trial, crashOffsetMs: 0, electionMs: nil, newLeader: nil, terms: 0) }
        recording = log != nil
        let oldTerm = nodes[old]!.term
        // Crash it at a uniform point of its heartbeat interval.
        let heartbeatSeen = lastHeartbeat
        runUntil { $0.lastHeartbeat != heartbeatSeen }
        let offset = Int64(rng.below(o.heartbeatMs * 1000))
        let at = lastHeartbeat + offset
        crashAt = at
        runUntil { $0.queue.min!.at > at }
        now = at
        let stillLeads = nodes[old]!.role == .leader
        record("crash of \(old)" + (stillLeads ? ", the leader at term \(nodes[old]!.term)" : ", which no longer leads: it is \(nodes[old]!.role.rawValue) at term \(nodes[old]!.term)"))
        down.insert(old)
        let limit = at + Int64(o.limitMs) * 1000
        runUntil { $0.leader != nil || $0.now > limit }
        let winner = leader
        return ElectionTrial(trial: trial, crashOffsetMs: Double(offset) / 1000,
                             electionMs: winner == nil ? nil : Double(now - at) / 1000, newLeader: winner,
                             terms: winner.map { nodes[$0]!.term.value - oldTerm.value } ?? 0, crashedTheLeader: stillLeads)
    }

    mutating func record(_ line: String) { if recording { log!.append((now, line)) } }

    mutating func runUntil(_ done: (Self) -> Bool) {
        while !done(self), let e = queue.popMin() {
            now = e.at
            switch e.kind {
            case .tick(let id):
                guard !down.contains(id) else { continue }
                nodes[id]!.tick()
                schedule(at: now + 1000, .tick(id))
                process(id)
            case .deliver(let m):
                guard !down.contains(m.to) else { continue }
                if recording {
                    switch m.kind {
                    case .preVote, .preVoteResponse, .vote, .voteResponse, .timeoutNow: record("delivered " + m.description)
                    default: break
                    }
                }
                nodes[m.to]!.step(m)
                process(m.to)
            }
        }
    }

    /// Carries out a Ready at once (the disk is taken as instant) and puts its messages on the wire.
    mutating func process(_ id: ReplicaID) {
        while nodes[id]!.hasReady {
            let r = nodes[id]!.ready()
            var heartbeats = 0
            for m in r.messages {
                if case .append(_, _, let entries, _, _) = m.kind, entries.isEmpty { heartbeats += 1 }
                let jitter = o.jitterMs > 0 ? Double(rng.below(Int(o.jitterMs * 2000) + 1)) / 1000 - o.jitterMs : 0
                schedule(at: now + Int64((o.delayMs + jitter) * 1000), .deliver(m))
            }
            if heartbeats == o.servers - 1 { lastHeartbeat = now }
            nodes[id]!.advance(r)
            for line in nodes[id]!.takeTrace() { record(line) }
        }
    }
}

/// Percentiles and the rest of a distribution, for printing.
public struct Distribution: Sendable {
    public var count: Int
    public var mean: Double
    public var min: Double
    public var max: Double
    private var sorted: [Double]

    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        sorted = values.sorted()
        count = values.count
        mean = values.reduce(0, +) / Double(values.count)
        min = sorted.first!
        max = sorted.last!
    }

    /// Nearest-rank percentile.
    public func percentile(_ p: Double) -> Double {
        let rank = Int((p / 100 * Double(count)).rounded(.up))
        return sorted[Swift.max(0, Swift.min(count - 1, rank - 1))]
    }
}
