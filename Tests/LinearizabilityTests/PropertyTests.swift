import ScenarioTesting
import Testing
@testable import Linearizability

/// Random histories made by running the sequential model: each operation takes effect at its own
/// instant, and its bar (invoke, completion) is stretched around that instant, so the history is
/// linearizable by construction. Some operations lose their completion (unknown outcome). Then
/// one read is changed to a value no order allows (one never written): never linearizable.
struct HistoryGenerator {
    var rng: SplitMix64

    /// Effects happen in generation order, each at its own instant; a client is busy until its
    /// last operation completed; the bar (invoke, completion) is stretched around the instant.
    struct Clock {
        var clientFree: [Int64]
        var lastAt: Int64 = 10
        init(clients: Int) { clientFree = [Int64](repeating: 0, count: clients) }

        mutating func next(_ rng: inout SplitMix64) -> (client: Int, invoke: Int64, complete: Int64) {
            let client = Int(rng.next() % UInt64(clientFree.count))
            let at = max(lastAt + 1 + Int64(rng.next() % 4), clientFree[client])
            lastAt = at
            let invoke = max(clientFree[client], at - Int64(rng.next() % 8))
            let complete = at + Int64(rng.next() % 8)
            clientFree[client] = complete + 1
            return (client, invoke, complete)
        }
    }

    mutating func register(operations: Int, clients: Int) -> [Operation<RegisterModel.Input, RegisterModel.Output>] {
        var state: Int? = nil
        var ops: [Operation<RegisterModel.Input, RegisterModel.Output>] = []
        var clock = Clock(clients: clients)
        for _ in 0..<operations {
            let (client, invoke, complete) = clock.next(&rng)
            let input: RegisterModel.Input
            var output: RegisterModel.Output = .done
            var outcome = Outcome.ok
            switch rng.next() % 4 {
            case 0, 1:
                input = .read
                output = .value(state)
            case 2:
                let v = Int(rng.next() % 5)
                input = .write(v)
                state = v
            default:
                let from = Int(rng.next() % 5), to = Int(rng.next() % 5)
                input = .cas(from: from, to: to)
                if state == from { state = to } else { outcome = .fail }
            }
            let lost = rng.next() % 12 == 0 && input != .read
            ops.append(Operation(client: client, input: input, output: lost ? nil : output, outcome: lost ? .unknown : outcome,
                                 invoke: invoke, complete: lost ? nil : complete))
        }
        return ops
    }

    /// The same for a key-value store over three keys: get, put, append, delete, cas.
    mutating func kv(operations: Int, clients: Int) -> [Operation<KVModel.Input, KVModel.Output>] {
        var store: [String: String] = [:]
        var ops: [Operation<KVModel.Input, KVModel.Output>] = []
        var clock = Clock(clients: clients)
        for _ in 0..<operations {
            let (client, invoke, complete) = clock.next(&rng)
            let key = ["a", "b", "c"][Int(rng.next() % 3)]
            let input: KVModel.Input
            var output: KVModel.Output = .done
            var outcome = Outcome.ok
            let v = String(rng.next() % 4)
            switch rng.next() % 6 {
            case 0, 1:
                input = .get
                output = .value(store[key])
            case 2: input = .put(v); store[key] = v
            case 3: input = .append(v); store[key] = (store[key] ?? "") + v
            case 4: input = .delete; store[key] = nil
            default:
                let expected: String? = rng.next() % 3 == 0 ? nil : String(rng.next() % 4)
                input = .cas(expected: expected, new: v)
                if store[key] == expected { store[key] = v } else { outcome = .fail }
            }
            let lost = rng.next() % 12 == 0 && input != .get
            ops.append(Operation(client: client, key: key, input: input, output: lost ? nil : output,
                                 outcome: lost ? .unknown : outcome, invoke: invoke, complete: lost ? nil : complete))
        }
        return ops
    }
}

@Test(arguments: 0..<4)
func generatedHistoriesAreLinearizableAndABadReadNeverIs(batch: UInt64) {
    var generator = HistoryGenerator(rng: SplitMix64(seed: batch))
    var mutated = 0
    for round in 0..<500 {
        let seed = batch * 1000 + UInt64(round)
        let ops = generator.register(operations: 12 + round % 30, clients: 2 + round % 5)
        let good = Checker.check(RegisterModel(), ops)
        #expect(good.verdict == .linearizable, "batch \(batch) round \(round) (seed \(seed)): a model run was judged \(good.verdict)")
        // A read that returns 99, never written by anyone: no interleaving allows it.
        guard let r = ops.firstIndex(where: { $0.input == .read && $0.outcome == .ok }) else { continue }
        var bad = ops
        bad[r].output = .value(99)
        let verdict = Checker.check(RegisterModel(), bad).verdict
        #expect(verdict == .notLinearizable, "batch \(batch) round \(round): a read of a never-written value was judged \(verdict)")
        mutated += 1
    }
    #expect(mutated > 400)
}

@Test(arguments: 0..<2)
func generatedKVHistoriesAreLinearizableAndABadGetNeverIs(batch: UInt64) {
    var generator = HistoryGenerator(rng: SplitMix64(seed: 100 + batch))
    for round in 0..<500 {
        let ops = generator.kv(operations: 15 + round % 40, clients: 2 + round % 5)
        let good = Checker.check(KVModel(), ops)
        #expect(good.verdict == .linearizable, "batch \(batch) round \(round): a model run was judged \(good.verdict)")
        guard let g = ops.firstIndex(where: { $0.input == .get && $0.outcome == .ok }) else { continue }
        var bad = ops
        bad[g].output = .value("never written")
        #expect(Checker.check(KVModel(), bad).verdict == .notLinearizable, "batch \(batch) round \(round)")
    }
}
