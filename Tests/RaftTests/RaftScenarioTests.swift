import KVStore
import ScenarioTesting
import Testing
@testable import Raft

/// A small cluster driven by scenario scripts (testdata/*.txt), as etcd-io/raft's interaction
/// tests are. Commands:
///   add-nodes 3 [prevote=true] [checkquorum=true] [election=10] [heartbeat=1] [max-append=64]
///             [max-append-bytes=1048576] [max-uncommitted-bytes=67108864]
///   campaign 1 | propose 1 v1 | tick 1 [n=10] | tick-all [n=1] | stabilize
///   isolate 1 | partition 1,2 3,4,5 | heal | crash 1 | restart 1 | drop (lose every queued message)
///   kv 1 client=c1 seq=1 put x v | get x | delete x | cas x expected|- new | mput x=1,y=2
///   read-index 1 ctx=7 key=x | transfer 1 to=2 | compact 1 (snapshot through what 1 applied)
///   process-ready 1 2 [apply=false] (carry out their Readies) | deliver-msgs 3 (deliver what is queued for 3)
///   status | log 1 | state 1
/// `stabilize` carries out Readies (persist, send, apply) and delivers messages until quiet,
/// printing role changes, every delivered message, every applied entry and served read. Each
/// replica applies to its own KVStateMachine (entries that are not KV requests are just listed).
final class RaftEnv {
    struct Disk { var hardState = HardState(); var snapshot = Snapshot(); var entries: [Entry] = [] }
    var nodes: [ReplicaID: Raft] = [:]
    var states: [ReplicaID: KVStateMachine] = [:]
    var disks: [ReplicaID: Disk] = [:]
    var order: [ReplicaID] = []
    var queue: [Message] = []
    /// Which group each replica is in; messages cross only within a group.
    var group: [ReplicaID: Int] = [:]
    var down: Set<ReplicaID> = []
    var configs: [ReplicaID: Raft.Config] = [:]
    /// Confirmed ReadIndex reads waiting to be served, and the key each one reads.
    var reads: [ReplicaID: [ReadState]] = [:]
    var readKeys: [UInt64: String] = [:]

    func run(_ c: ScenarioCommand) throws -> [String] {
        func id(_ i: Int = 0) throws -> ReplicaID {
            guard let n = Int(try c.arg(i)), nodes[n] != nil || configs[n] != nil else { throw ScenarioError("no node \(try c.arg(i))") }
            return n
        }
        switch c.name {
        case "add-nodes":
            let n = Int(try c.arg(0))!
            order = Array(1...n)
            for i in order {
                var cfg = Raft.Config(id: i, voters: order)
                cfg.preVote = c.value("prevote").map { $0 == "true" } ?? true
                cfg.checkQuorum = c.value("checkquorum").map { $0 == "true" } ?? true
                cfg.electionTicks = try c.int("election", default: 10)
                cfg.heartbeatTicks = try c.int("heartbeat", default: 1)
                cfg.maxEntriesPerAppend = try c.int("max-append", default: 64)
                cfg.maxBytesPerAppend = try c.int("max-append-bytes", default: cfg.maxBytesPerAppend)
                cfg.maxUncommittedBytes = try c.int("max-uncommitted-bytes", default: cfg.maxUncommittedBytes)
                configs[i] = cfg
                nodes[i] = Raft(config: cfg)
                states[i] = KVStateMachine()
                disks[i] = Disk()
                group[i] = 0
            }
            return ["ok"]
        case "campaign":
            let n = try id()
            nodes[n]!.campaign()
            return nodes[n]!.takeTrace()
        case "propose":
            let n = try id()
            switch nodes[n]!.propose(Array(try c.arg(1).utf8)) {
            case .success(let index): return ["\(n) proposed at index \(index)"]
            case .failure(let e): return ["\(n) refused: \(e)"]
            }
        case "tick":
            let n = try id()
            var out: [String] = []
            for _ in 0..<(try c.int("n", default: 1)) {
                nodes[n]!.tick()
                out += nodes[n]!.takeTrace()
            }
            return out
        case "tick-all":
            var out: [String] = []
            for _ in 0..<(try c.int("n", default: 1)) {
                for i in order where !down.contains(i) {
                    nodes[i]!.tick()
                    out += nodes[i]!.takeTrace()
                }
            }
            return out
        case "stabilize": return stabilize()
        case "process-ready":
            // apply=false: persist and send, and leave the committed entries for later, as a node
            // whose apply runs behind (etcd applies on its own goroutine).
            let apply = c.value("apply") != "false"
            return try c.args.indices.flatMap { processReady(try id($0), apply: apply) }
        case "deliver-msgs":
            var out: [String] = []
            for i in c.args.indices {
                let n = try id(i)
                let mine = queue.filter { $0.to == n }
                queue.removeAll { $0.to == n }
                for m in mine { out += deliver(m) }
            }
            return out
        case "isolate":
            group[try id()] = order.count + 1
            return ["ok"]
        case "partition":
            for (g, members) in c.args.enumerated() {
                for m in members.split(separator: ",") {
                    guard let n = Int(m), group[n] != nil else { throw ScenarioError("no node \(m)") }
                    group[n] = g
                }
            }
            return ["ok"]
        case "heal":
            for i in order { group[i] = 0 }
            return ["ok"]
        case "kv":
            let n = try id()
            let request = KVRequest(client: c.value("client") ?? "c1", seq: UInt64(try c.int("seq")), command: try kvCommand(c))
            switch nodes[n]!.propose(request.encoded()) {
            case .success(let index): return ["\(n) proposed \(describe(request)) at index \(index)"]
            case .failure(let e): return ["\(n) refused: \(e)"]
            }
        case "read-index":
            let n = try id()
            let context = UInt64(try c.int("ctx"))
            readKeys[context] = c.value("key") ?? "x"
            switch nodes[n]!.readIndex(context) {
            case .success: return ["\(n) read \(context) pending"]
            case .failure(let e): return ["\(n) read \(context) refused: \(e)"]
            }
        case "caught-up":
            // The leader's view of a peer, as kvnode's leader balancer asks it.
            let (n, peer) = (try id(0), try id(1))
            return ["\(n) sees \(peer) caught up: \(nodes[n]!.isCaughtUp(peer))"]
        case "peer-disconnected":
            let (n, peer) = (try id(0), try id(1))
            nodes[n]!.peerDisconnected(peer)
            return nodes[n]!.takeTrace() + ["ok"]
        case "peer-suspected":
            // The node's heartbeat detector declared the peer dead.
            let (n, peer) = (try id(0), try id(1))
            nodes[n]!.peerSuspected(peer)
            return nodes[n]!.takeTrace() + ["ok"]
        case "peer-trusted":
            // ... and alive again.
            let (n, peer) = (try id(0), try id(1))
            nodes[n]!.peerTrusted(peer)
            return nodes[n]!.takeTrace() + ["ok"]
        case "transfer":
            let n = try id()
            let result = nodes[n]!.transferLeadership(to: try c.int("to"))
            let trace = nodes[n]!.takeTrace()
            if case .failure(let e) = result { return trace + ["\(n) refused: \(e)"] }
            return trace
        case "compact":
            let n = try id()
            let state = states[n]!
            nodes[n]!.compact(through: LogIndex(state.applied), data: state.snapshot())
            let snapshot = nodes[n]!.snapshot
            disks[n]!.snapshot = snapshot
            disks[n]!.entries.removeAll { $0.index <= snapshot.index }
            return ["\(n) compacted through \(nodes[n]!.snapshot.index): log holds \(nodes[n]!.log.firstIndex)...\(nodes[n]!.log.lastIndex)"]
        case "state":
            let s = states[try id()]!
            return ["applied \(s.applied): " + s.data.keys.sorted().map { "\($0)=\(s.data[$0]!)" }.joined(separator: " "),
                    "sessions: " + s.sessions.keys.sorted().map { "\($0)#\(s.sessions[$0]!.seq)" }.joined(separator: " ")]
        case "drop":
            let n = queue.count
            queue.removeAll()
            return ["dropped \(n) messages"]
        case "crash":
            let n = try id()
            down.insert(n)
            queue.removeAll { $0.to == n || $0.from == n }
            return ["\(n) crashed (kept on disk: \(disks[n]!.hardState), \(disks[n]!.entries.count) entries)"]
        case "restart":
            let n = try id()
            down.remove(n)
            nodes[n] = Raft(config: configs[n]!, hardState: disks[n]!.hardState, snapshot: disks[n]!.snapshot, entries: disks[n]!.entries)
            states[n] = disks[n]!.snapshot.isEmpty ? KVStateMachine() : try KVStateMachine(snapshot: disks[n]!.snapshot.data)
            reads[n] = []
            return ["\(n) restarted at term \(nodes[n]!.term) with \(nodes[n]!.log.lastIndex) entries"]
        case "status":
            return order.map { i in
                if down.contains(i) { return "\(i) down" }
                let r = nodes[i]!
                return "\(i) \(r.role.rawValue) term=\(r.term) leader=\(r.leader.map(String.init) ?? "-") "
                    + "commit=\(r.log.committed) applied=\(r.log.applied) last=\(r.log.lastIndex)"
            }
        case "log":
            let n = try id()
            return nodes[n]!.log.entries.map(\.description)
        default:
            throw ScenarioError("unknown command \(c.name)")
        }
    }

    func apply(_ i: ReplicaID, _ e: Entry) -> String {
        guard !e.data.isEmpty, let request = try? KVRequest(decoding: e.data) else {
            _ = states[i]!.apply(index: e.index.value, [])  // keeps the store's index in step
            return "\(i) applied \(e)"
        }
        let (_, result) = states[i]!.apply(index: e.index.value, e.data)
        return "\(i) applied \(e.term)/\(e.index) \(describe(request)) -> \(result)"
    }

    /// ReadIndex reads whose index the store has reached.
    func serveReads(_ i: ReplicaID) -> [String] {
        var out: [String] = []
        while let rs = reads[i]?.first, rs.index.value <= states[i]!.applied {
            reads[i]!.removeFirst()
            let key = readKeys[rs.context] ?? "x"
            let v = states[i]!.get(key)
            out.append("\(i) read \(rs.context) confirmed at index \(rs.index), served at applied \(states[i]!.applied): \(key)=\(v ?? "(absent)")")
        }
        return out
    }

    func describe(_ r: KVRequest) -> String {
        let what = switch r.command {
        case .put(let k, let v): "put \(k)=\(v)"
        case .get(let k): "get \(k)"
        case .delete(let k): "delete \(k)"
        case .cas(let k, let e, let v): "cas \(k) \(e ?? "(absent)")->\(v)"
        case .mput(let pairs): "mput " + pairs.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        }
        return "\(r.client)#\(r.seq) \(what)"
    }

    func kvCommand(_ c: ScenarioCommand) throws -> KVCommand {
        switch try c.arg(1) {
        case "put": return .put(key: try c.arg(2), value: try c.arg(3))
        case "get": return .get(key: try c.arg(2))
        case "delete": return .delete(key: try c.arg(2))
        case "cas":
            let e = try c.arg(3)
            return .cas(key: try c.arg(2), expected: e == "-" ? nil : e, value: try c.arg(4))
        case "mput":
            return .mput(try c.arg(2).split(separator: ",").map { pair in
                let kv = pair.split(separator: "=", maxSplits: 1)
                guard kv.count == 2 else { throw ScenarioError("mput wants k=v,k=v; got \(pair)") }
                return KeyValue(key: String(kv[0]), value: String(kv[1]))
            })
        case let other: throw ScenarioError("kv: unknown command \(other) (put, get, delete, cas, mput)")
        }
    }

    func stabilize() -> [String] {
        var out: [String] = []
        for _ in 0..<10_000 {
            var busy = false
            for i in order where !down.contains(i) && nodes[i]!.hasReady {
                busy = true
                out += processReady(i)
            }
            while !queue.isEmpty {
                busy = true
                out += deliver(queue.removeFirst())
            }
            if !busy { return out }
        }
        return out + ["did not stabilize"]
    }

    /// Carries out one Ready with the routine kvnode and the simulator run (ReadyRoutine); only
    /// the I/O is the test's: a disk of three values, a message queue, the store, the trace.
    func processReady(_ i: ReplicaID, apply: Bool = true) -> [String] {
        guard !down.contains(i), nodes[i]!.hasReady else { return [] }
        var r = nodes[i]!.ready()
        if !apply { r.committed = [] }
        var io = EnvReadyIO(env: self, id: i)
        try! ReadyRoutine.carryOut(r, with: &io)  // the test disk never fails
        nodes[i]!.advance(r)
        return io.out + nodes[i]!.takeTrace() + serveReads(i)
    }

    struct EnvReadyIO: ReadyIO {
        let env: RaftEnv
        let id: ReplicaID
        var out: [String] = []

        func send(_ messages: [Message]) { env.queue += messages }

        func persist(snapshot: Snapshot?, hardState: HardState?, entries: [Entry]) -> Bool {
            if let s = snapshot {
                env.disks[id]!.snapshot = s
                env.disks[id]!.entries = []
            }
            if let hs = hardState { env.disks[id]!.hardState = hs }
            if let first = entries.first {
                env.disks[id]!.entries.removeAll { $0.index >= first.index }
                env.disks[id]!.entries += entries
            }
            return true
        }

        mutating func restore(_ s: Snapshot) {
            guard let state = try? KVStateMachine(snapshot: s.data) else { return }
            env.states[id] = state
            out.append("\(id) restored its store from \(s)")
        }

        mutating func apply(_ e: Entry) { out.append(env.apply(id, e)) }

        mutating func reads(confirmed: [ReadState], failed: [UInt64]) {
            for rs in confirmed where rs.index.value > env.states[id]!.applied {
                out.append("\(id) read \(rs.context) confirmed at index \(rs.index); the store has applied \(env.states[id]!.applied), so it waits")
            }
            for context in failed { out.append("\(id) read \(context) failed: leadership lost") }
            env.reads[id, default: []] += confirmed
        }
    }

    /// Delivers one queued message (lost if its receiver is down or in another group).
    func deliver(_ m: Message) -> [String] {
        guard !down.contains(m.to), group[m.to] == group[m.from] else { return [] }
        nodes[m.to]!.step(m)
        return [m.description] + nodes[m.to]!.takeTrace()
    }

}

private let testdata = String(#filePath.dropLast("RaftScenarioTests.swift".count)) + "testdata"

@Test func raftScenarios() throws {
    let failures = try ScenarioScript.runAll(in: testdata) { let env = RaftEnv(); return env.run }
    #expect(failures.isEmpty, "\(failures.count) scenario block(s) differ:\n\(failures.joined(separator: "\n\n"))")
}
