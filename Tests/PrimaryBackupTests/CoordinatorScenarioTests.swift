import Core
import Foundation
import ScenarioTesting
import Testing
@testable import PrimaryBackup

/// Drives a `Coordinator` from the scripts in testdata/ (see ScenarioScript for the format).
///   config pairs=A:A2,B:B2 check=5000 fail=15000
///   register A t=0 | heartbeat A t=1 | check t=5000 | synced 0 A t=6 | fenced 0 seq=12 t=7
///   applied 0 A seq=12 t=8 | sync-failed 0 A t=9 | route key | state
/// Times are milliseconds on the monotonic clock.
final class CoordinatorScript {
    var coordinator = Coordinator(config: .init(pairs: [], checkIntervalNs: 0, failAfterNs: 0))

    func run(_ c: ScenarioCommand) throws -> [String] {
        let t = Int64(try c.int("t", default: 0)) * 1_000_000
        func node(_ i: Int = 0) throws -> NodeID {
            guard let id = NodeID(validating: try c.arg(i)) else { throw ScenarioError("bad node id") }
            return id
        }
        func pair() throws -> Int {
            guard let p = Int(try c.arg(0)) else { throw ScenarioError("\(c.name) needs a pair number first") }
            return p
        }
        let input: Coordinator.Input
        switch c.name {
        case "config":
            let pairs = (c.value("pairs") ?? "").split(separator: ",").map { p -> Coordinator.Pair in
                let two = p.split(separator: ":").map { NodeID(validating: String($0))! }
                return .init(primary: two[0], backup: two[1])
            }
            coordinator = Coordinator(config: .init(pairs: pairs, checkIntervalNs: Int64(try c.int("check", default: 5000)) * 1_000_000,
                                                    failAfterNs: Int64(try c.int("fail", default: 15000)) * 1_000_000))
            return ["ok"]
        case "register": input = .register(try node())
        case "heartbeat": input = .heartbeat(try node())
        case "check": input = .check
        case "synced": input = .synced(pair: try pair(), try node(1))
        case "fenced": input = .fenced(pair: try pair(), seq: UInt64(try c.int("seq")))
        case "applied": input = .applied(pair: try pair(), try node(1), seq: UInt64(try c.int("seq")))
        case "sync-failed": input = .syncFailed(pair: try pair(), try node(1))
        case "resync": input = .resync(pair: try pair())
        case "route":
            let key = try c.arg(0)
            return ["\(key) -> pair \(coordinator.pair(of: key)) -> \(coordinator.route(key)?.rawValue ?? "nobody")"]
        case "state": return Self.describe(coordinator)
        default: throw ScenarioError("unknown command \(c.name)")
        }
        return coordinator.step(input, at: t).map(Self.describe)
    }

    static func describe(_ e: Coordinator.Effect) -> String {
        switch e {
        case .declaredDead(let n, let silence): return "declared_dead \(n) silence_ms=\(silence / 1_000_000)"
        case .recovered(let n): return "recovered \(n)"
        case .route(let p, let a): return "route pair=\(p) active=\(a?.rawValue ?? "none")"
        case .promoted(let p, let n): return "promoted pair=\(p) \(n)"
        case .startSync(let p, let from, let to): return "start_sync pair=\(p) from=\(from) to=\(to)"
        case .fence(let p, let n): return "fence pair=\(p) \(n)"
        case .unfence(let p, let n): return "unfence pair=\(p) \(n)"
        case .resumed(let p, let n): return "resumed pair=\(p) \(n)"
        case .askToRegister(let n): return "ask_to_register \(n)"
        }
    }

    static func describe(_ c: Coordinator) -> [String] {
        let pairs = c.pairs.enumerated().map { i, s -> String in
            let phase: String
            switch s.phase {
            case .normal: phase = "normal"
            case .failedOver: phase = "failed_over"
            case .syncing(let t): phase = "syncing(\(t))"
            case .handingBack(let t, let seq): phase = "handing_back(\(t), fenced_at=\(seq.map(String.init) ?? "?"))"
            case .down: phase = "down"
            }
            return "pair \(i) \(s.pair.primary)->\(s.pair.backup) active=\(s.active?.rawValue ?? "none") phase=\(phase) "
                + "standby_synced=\(s.standbySynced)"
        }
        let nodes = c.nodes.sorted { $0.key < $1.key }.map { n, st in
            "node \(n) registered=\(st.registered) alive=\(st.alive) heard_ms=\(st.lastHeardNs.map { String($0 / 1_000_000) } ?? "-")"
        }
        return pairs + nodes
    }
}

@Test func coordinatorScenarios() throws {
    let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("testdata").path
    let failures = try ScenarioScript.runAll(in: dir) { let d = CoordinatorScript(); return d.run }
    #expect(failures.isEmpty, "\(failures.joined(separator: "\n\n"))")
}
