import Core
import ScenarioTesting
import Testing
@testable import PrimaryBackup

/// Seeded random schedules of registrations, beats, silences, checks and sync reports; after
/// every step the coordinator's promises must hold. A failure prints its seed.
@Test(arguments: 1...300)
func randomSchedulesKeepTheCoordinatorsPromises(seed: UInt64) {
    _ = runSchedule(seed: seed)
}

/// The schedules reach every part of the machine: promotions, fences, hand-backs completed.
@Test func randomSchedulesReachEveryEffect() {
    var seen = Set<String>()
    for seed in UInt64(1)...300 { seen.formUnion(runSchedule(seed: seed)) }
    #expect(seen.isSuperset(of: ["declaredDead", "recovered", "route", "promoted", "startSync", "fence", "unfence", "resumed",
                                 "askToRegister"]), "\(seen.sorted())")
}

/// One seeded schedule, checked after every step; the kinds of effect it produced.
private func runSchedule(seed: UInt64) -> Set<String> {
    var kinds = Set<String>()
    var rng = SplitMix64(seed: seed)
    func pick<T>(_ xs: [T]) -> T { xs[Int(rng.next() % UInt64(xs.count))] }
    let pairs: [Coordinator.Pair] = [.init(primary: "A", backup: "A2"), .init(primary: "B", backup: "B2")]
    var c = Coordinator(config: .init(pairs: pairs, checkIntervalNs: 1_000, failAfterNs: 3_000))
    let nodes = pairs.flatMap { [$0.primary, $0.backup] }
    var now: Int64 = 0
    var fences = [0, 0]
    var seq: [Int: UInt64] = [:]
    for step in 0..<400 {
        now += Int64(rng.next() % 700)
        let n = pick(nodes)
        let p = pairs.firstIndex { $0.primary == n || $0.backup == n }!
        let input: Coordinator.Input
        switch rng.next() % 9 {
        case 0: input = .register(n)
        case 1, 2: input = .heartbeat(n)
        case 3: input = .check
        case 4: input = .synced(pair: p, n)
        case 5:
            let s = UInt64(rng.next() % 50)
            seq[p] = s
            input = .fenced(pair: p, seq: s)
        case 6: input = .applied(pair: p, n, seq: UInt64(rng.next() % 50))
        case 7: input = .resync(pair: p)
        default: input = .syncFailed(pair: p, n)
        }
        let effects = c.step(input, at: now)
        for e in effects { kinds.insert(String(String(describing: e).prefix { $0 != "(" })) }
        let where_ = "seed \(seed), step \(step), \(input) at \(now): \(effects)"
        var routed: [Int: NodeID?] = [:]
        for e in effects {
            switch e {
            case .fence(let p, let a):
                fences[p] += 1
                #expect(c.pairs[p].active == a, "fenced a node that does not serve: \(where_)")
            case .unfence(let p, _): fences[p] -= 1
            case .route(let p, let a): routed[p] = a
            case .startSync(_, let from, let to):
                #expect(from != to, "a node asked to copy itself: \(where_)")
            case .declaredDead(let d, _):
                #expect(!c.nodes[d]!.alive, "\(where_)")
            default: break
            }
        }
        for (p, a) in routed {
            // A step's last route for a pair is where its keys go now.
            #expect(c.pairs[p].active == a, "routed elsewhere than the active node: \(where_)")
        }
        for (i, s) in c.pairs.enumerated() {
            // Only a live, registered node of the pair serves it; nobody only when neither is alive.
            if let a = s.active {
                #expect(c.nodes[a]!.alive && (a == s.pair.primary || a == s.pair.backup), "\(where_)")
            } else {
                #expect(s.phase == .down, "\(where_)")
            }
            // An active node is fenced exactly while its pair hands back.
            let handing: Bool = { if case .handingBack = s.phase { return true } else { return false } }()
            #expect(fences[i] == (handing ? 1 : 0), "fences \(fences[i]) in \(s.phase): \(where_)")
            // A hand-back or sync targets the other node, alive.
            switch s.phase {
            case .syncing(let t), .handingBack(let t, _):
                #expect(t != s.active && c.nodes[t]!.alive && t == s.pair.primary, "\(where_)")
            case .normal: #expect(s.active == s.pair.primary, "\(where_)")
            case .failedOver: #expect(s.active == s.pair.backup, "\(where_)")
            case .down: #expect(s.active == nil, "\(where_)")
            }
        }
    }
    return kinds
}
