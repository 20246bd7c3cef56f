import ScenarioTesting
import Testing
@testable import Raft

/// A small cluster driven by scenario scripts (testdata/*.txt), as etcd-io/raft's interaction
/// tests are. Commands:
///   add-nodes 3 [prevote=true] [checkquorum=true] [election=10] [heartbeat=1]
///   campaign 1 | propose 1 v1 | tick 1 [n=10] | tick-all [n=1] | stabilize
///   isolate 1 | heal | crash 1 | restart 1 | drop (lose every queued message)
///   status | log 1
/// `stabilize` carries out Readies (persist, send, apply) and delivers messages until quiet,
/// printing role changes, every delivered message and every applied entry.
final class RaftEnv {
    struct Disk { var hardState = HardState(); var entries: [Entry] = [] }
    var nodes: [ReplicaID: Raft] = [:]
    var disks: [ReplicaID: Disk] = [:]
    var order: [ReplicaID] = []
    var queue: [Message] = []
    var isolated: Set<ReplicaID> = []
    var down: Set<ReplicaID> = []
    var configs: [ReplicaID: Raft.Config] = [:]

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
                configs[i] = cfg
                nodes[i] = Raft(config: cfg)
                disks[i] = Disk()
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
            case .failure(.notLeader(let leader)): return ["\(n) refused: not the leader (leader: \(leader.map(String.init) ?? "unknown"))"]
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
        case "isolate": isolated.insert(try id()); return ["ok"]
        case "heal": isolated.removeAll(); return ["ok"]
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
            nodes[n] = Raft(config: configs[n]!, hardState: disks[n]!.hardState, entries: disks[n]!.entries)
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

    func stabilize() -> [String] {
        var out: [String] = []
        for _ in 0..<10_000 {
            var busy = false
            for i in order where !down.contains(i) && nodes[i]!.hasReady {
                busy = true
                let r = nodes[i]!.ready()
                // Persist, then send, then apply: the order the Ready demands.
                if let hs = r.hardState { disks[i]!.hardState = hs }
                if let first = r.entries.first {
                    disks[i]!.entries.removeAll { $0.index >= first.index }
                    disks[i]!.entries += r.entries
                }
                queue += r.messages
                for e in r.committed { out.append("\(i) applied \(e)") }
                nodes[i]!.advance(r)
                out += nodes[i]!.takeTrace()
            }
            while !queue.isEmpty {
                busy = true
                let m = queue.removeFirst()
                if down.contains(m.to) || isolated.contains(m.to) != isolated.contains(m.from) {
                    continue
                }
                out.append(m.description)
                nodes[m.to]!.step(m)
                out += nodes[m.to]!.takeTrace()
            }
            if !busy { return out }
        }
        return out + ["did not stabilize"]
    }
}

private let testdata = String(#filePath.dropLast("RaftScenarioTests.swift".count)) + "testdata"

@Test func raftScenarios() throws {
    let failures = try ScenarioScript.runAll(in: testdata) { let env = RaftEnv(); return env.run }
    #expect(failures.isEmpty, "\(failures.count) scenario block(s) differ:\n\(failures.joined(separator: "\n\n"))")
}
