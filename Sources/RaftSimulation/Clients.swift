import Core
import KVStore
import Linearizability
import Raft

/// The simulated clients: each has one operation outstanding at a time, sends it to the replica
/// it takes for leader, follows "not leader" hints, and retries after a timeout with the same
/// (client, seq), so that the store's deduplication is what keeps a retried write single. A quarter
/// of the writes are anonymous (no client id, no session, as a curl user sends them): one of those
/// is never retried; after a timeout its outcome stays unknown. Every operation goes into a history
/// for the linearizability checker. One group's clients, on keys of that group.
struct Clients {
    struct Outstanding {
        var history: Int
        var key: String
        /// A write, or a get through the log; nil for a ReadIndex get.
        var request: KVRequest?
        var readContext: UInt64?
    }

    struct Client {
        var name: String
        var seq: UInt64 = 0
        var op: Outstanding?
        var guess: ReplicaID
        var retryAt = 0
        /// Its request went out and no answer came before retryAt: on retry, try another replica.
        var awaiting = false
        var counter = 0
        var lastSeen: [String: String] = [:]
        /// The client's base name; `name` is it with a generation once it has taken a new one.
        var base: String = ""
        var generation = 0
        /// Just took a new name: its first request (seq 1) is a get through the log, the one request
        /// whose retry after an expiry may be applied twice (harmless for a get).
        var fresh = false

        /// Starts over under a new client id (as a restarted client process would).
        mutating func rename() {
            if base.isEmpty { base = name }
            generation += 1
            name = "\(base)g\(generation)"
            seq = 0
            fresh = true
        }
    }

    struct Ack { var client: String; var seq: UInt64; var index: LogIndex }

    static let timeoutSteps = 40

    /// Two keys of group `g` (`KeyGroups`): with one group, x and y.
    static func keys(group g: Int, of groups: Int) -> [String] {
        let candidates = ["x", "y"] + (0..<400).map { "k\($0)" }
        // Lazily: hash only until two are found, not all 402 for every schedule.
        return Array(candidates.lazy.filter { KeyGroups.group(of: $0, groups: groups) == g }.prefix(2))
    }

    let group: Int
    let keys: [String]
    var list: [Client]
    var history: [Operation<KVModel.Input, KVModel.Output>] = []
    var acknowledged: [Ack] = []
    var readIndexReads = 0
    var staleReads = 0
    var anonymousWrites = 0
    var expiredRetries = 0
    /// Every value a client asked to write, per key: a stale read may be old, never invented.
    private var written: [String: Set<String>] = [:]
    private var nextContext: UInt64 = 1
    private var events: Int64 = 0
    private var proposals: [ReplicaID: [LogIndex: Int]] = [:]
    private var reads: [ReplicaID: [UInt64: Int]] = [:]
    /// Clients whose request waits in a stopped replica's socket.
    private var blocked: [ReplicaID: [Int]] = [:]

    init(group: Int, count: Int, nodes: [ReplicaID], keys: [String]) {
        self.group = group
        self.keys = keys
        // Names unique across groups: sessions are per group, so the same name would do, but a
        // merged history and a trace read better with one name per client.
        list = (0..<count).map { Client(name: group == 0 ? "c\($0 + 1)" : "g\(group)c\($0 + 1)", guess: nodes[$0 % nodes.count], fresh: true) }
    }

    var idle: Bool { list.allSatisfy { $0.op == nil } }

    /// Real-time order of invocations and completions (the checker needs no more than the order).
    private mutating func clock() -> Int64 { events += 1; return events }

    mutating func act(_ sim: Simulation, client c: Int, newOperations: Bool) {
        if list[c].op == nil {
            guard newOperations else { return }
            begin(sim, c)
        } else if sim.now < list[c].retryAt {
            return
        } else if list[c].awaiting {
            if list[c].op!.request?.isAnonymous == true {
                // An anonymous write is not retried: a retry would be a second write. Its outcome stays unknown.
                sim.log("\(list[c].name) gives up on its anonymous write: outcome unknown")
                list[c].op = nil
                list[c].awaiting = false
                return
            }
            // Timed out: the replica may be stopped, cut off or deposed; ask another.
            let others = sim.ids.filter { $0 != list[c].guess }
            if !others.isEmpty { list[c].guess = sim.rng.pick(others) }
        }
        list[c].awaiting = false
        submit(sim, c)
    }

    private mutating func begin(_ sim: Simulation, _ c: Int) {
        let key = sim.rng.pick(keys)
        list[c].counter += 1
        let value = "\(list[c].name).\(list[c].counter)"
        let input: KVModel.Input
        var command: KVCommand?
        let roll = list[c].fresh ? 50 : sim.rng.below(100)  // a fresh name starts with a get through the log
        list[c].fresh = false
        switch roll {
        case 95..<100:
            staleRead(sim, c, key)
            return
        case 0..<30: input = .put(value); command = .put(key: key, value: value)
        case 30..<47: input = .get  // ReadIndex
        case 47..<62: input = .get; command = .get(key: key)
        case 62..<90:
            let expected = sim.rng.chance(70) ? list[c].lastSeen[key] : nil
            input = .cas(expected: expected, new: value)
            command = .cas(key: key, expected: expected, value: value)
        default: input = .delete; command = .delete(key: key)
        }
        if case .put(let v) = input { written[key, default: []].insert(v) }
        if case .cas(_, let v) = input { written[key, default: []].insert(v) }
        var request: KVRequest?
        if let command {
            if sim.rng.chance(25) && list[c].seq > 0 {
                request = .anonymous(command)
                anonymousWrites += 1
            } else {
                list[c].seq += 1
                request = KVRequest(client: list[c].name, seq: list[c].seq, command: command)
            }
        }
        history.append(Operation(client: c, key: key, input: input, output: nil, outcome: .unknown, invoke: clock(), complete: nil))
        list[c].op = Outstanding(history: history.count - 1, key: key, request: request)
        sim.log("\(list[c].name) invokes \(input) on \(key)" + (request.map { " (seq \($0.seq))" } ?? " (ReadIndex)"))
    }

    /// A stale local read: any live replica answers from its own store at once, without asking the
    /// leader. It may miss recent writes, so it stays out of the linearizable history; it must
    /// still return a value some client wrote (or absent), never one the store made up.
    private mutating func staleRead(_ sim: Simulation, _ c: Int, _ key: String) {
        guard !sim.live.isEmpty else { return }
        let id = sim.rng.pick(sim.live)
        let v = sim.nodes[group][id]!.state.get(key)
        staleReads += 1
        if let v, written[key]?.contains(v) != true {
            sim.report.violations.append("stale read of \(key) at replica \(id) returned \"\(v)\", which no client wrote")
        }
        sim.log("\(list[c].name) stale read of \(key) at replica \(id): \(v ?? "(absent)")")
    }

    private mutating func submit(_ sim: Simulation, _ c: Int) {
        guard list[c].op != nil else { return }
        let target = list[c].guess
        guard !sim.down.contains(target) else {
            if !sim.live.isEmpty { list[c].guess = sim.rng.pick(sim.live) }
            list[c].retryAt = sim.now + 2
            return
        }
        if sim.paused[target] != nil {
            // The request waits in the stopped process's socket; it handles it when it runs again.
            blocked[target, default: []].append(c)
            list[c].retryAt = sim.now + Self.timeoutSteps
            list[c].awaiting = true
            return
        }
        send(sim, c, to: target)
    }

    /// A stopped replica runs again: first the client requests waiting for it (before it has read
    /// what its peers sent meanwhile: the moment a deposed leader still takes itself for leader).
    mutating func resumed(_ sim: Simulation, node id: ReplicaID) {
        for c in blocked.removeValue(forKey: id) ?? [] where list[c].op != nil && list[c].guess == id && list[c].awaiting {
            send(sim, c, to: id)
        }
    }

    private mutating func send(_ sim: Simulation, _ c: Int, to target: ReplicaID) {
        guard let op = list[c].op else { return }
        let outcome: Result<Void, Raft.ProposeError>
        if let original = op.request {
            let request = asReceived(sim, original, at: target)
            list[c].op!.request = request
            outcome = sim.nodes[group][target]!.raft.propose(request.encoded()).map { index in
                proposals[target, default: [:]][index] = c
            }
        } else {
            let context = nextContext
            nextContext += 1
            list[c].op!.readContext = context
            outcome = sim.nodes[group][target]!.raft.readIndex(context).map { reads[target, default: [:]][context] = c }
        }
        switch outcome {
        case .success:
            list[c].retryAt = sim.now + Self.timeoutSteps
            list[c].awaiting = true
        case .failure(.notLeader(let hint)):
            list[c].guess = hint ?? sim.rng.pick(sim.ids)
            list[c].retryAt = sim.now + 3
        case .failure:
            list[c].retryAt = sim.now + 5
        }
    }

    /// The request as the node's API puts it in the log: as sent, except with the planted bug.
    private func asReceived(_ sim: Simulation, _ request: KVRequest, at target: ReplicaID) -> KVRequest {
        #if RAFT_PLANTED_BUGS
        if request.isAnonymous, sim.nodes[group][target]!.raft.config.plantedBug == .anonymousCounter {
            sim.nodes[group][target]!.anonymousCounter += 1
            return KVRequest(client: "~\(target)-\(sim.nodes[group][target]!.anonymousCounter)", seq: 1, command: request.command)
        }
        #endif
        return request
    }

    /// A replica applied the entry at `index`: if it was proposed there for a client still
    /// waiting on that very request, answer it.
    mutating func applied(_ sim: Simulation, node: ReplicaID, index: LogIndex, request: KVRequest?, result: KVResult) {
        guard let c = proposals[node]?.removeValue(forKey: index), let op = list[c].op,
              let request, request == op.request else { return }
        if case .sessionExpired = result {
            // Its session expired while it waited: the outcome stays unknown; start over.
            sim.log("\(list[c].name) #\(request.seq): session expired; outcome unknown, new name")
            expiredRetries += 1
            list[c].op = nil
            list[c].awaiting = false
            list[c].rename()
            return
        }
        complete(sim, c, result: result, index: index)
    }

    mutating func serveReads(_ sim: Simulation, node id: ReplicaID) {
        let applied = sim.nodes[group][id]!.state.applied
        while let rs = sim.nodes[group][id]!.confirmedReads.first, rs.index.value <= applied {
            sim.nodes[group][id]!.confirmedReads.removeFirst()
            guard let c = reads[id]?.removeValue(forKey: rs.context), let op = list[c].op, op.readContext == rs.context else { continue }
            readIndexReads += 1
            complete(sim, c, result: .value(sim.nodes[group][id]!.state.get(op.key)), index: rs.index)
        }
    }

    mutating func readFailed(_ sim: Simulation, node: ReplicaID, context: UInt64) {
        guard let c = reads[node]?.removeValue(forKey: context), list[c].op?.readContext == context else { return }
        list[c].retryAt = sim.now
    }

    /// A crashed replica answers nothing it had been asked.
    mutating func forget(node: ReplicaID) {
        proposals[node] = nil
        reads[node] = nil
        blocked[node] = nil
    }

    private mutating func complete(_ sim: Simulation, _ c: Int, result: KVResult, index: LogIndex) {
        guard let op = list[c].op else { return }
        var h = history[op.history]
        switch (h.input, result) {
        case (.get, .value(let v)):
            h.output = .value(v); h.outcome = .ok
            if let v { list[c].lastSeen[op.key] = v }
        case (.cas, .casFailed):
            h.output = .done; h.outcome = .fail
        case (.put(let v), .ok), (.cas(_, let v), .ok):
            h.output = .done; h.outcome = .ok
            list[c].lastSeen[op.key] = v
        case (.delete, .ok), (.delete, .deleted):
            h.output = .done; h.outcome = .ok
        default:
            sim.report.violations.append("\(list[c].name) got \(result) for its outstanding \(h.input) on \(op.key)")
            return
        }
        if let r = op.request, h.input != .get, !r.isAnonymous { acknowledged.append(Ack(client: r.client, seq: r.seq, index: index)) }
        h.complete = clock()
        history[op.history] = h
        list[c].op = nil
        if sim.sessionLimit < KVStateMachine.defaultSessionLimit && sim.rng.chance(15) { list[c].rename() }
        sim.log("\(list[c].name) completes \(h.input) on \(op.key): \(result) at index \(index)")
    }
}
