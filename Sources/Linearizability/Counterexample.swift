/// A key's result told in words: what a person reads in `kvctl check` and on the HTML page.
public struct KeyReport: Sendable, Codable {
    public struct Op: Sendable, Codable, Equatable {
        /// Index among the key's operations, in history order.
        public var index: Int
        public var client: Int
        public var text: String
        public var invoke: Int64
        /// nil: never completed (outcome unknown).
        public var complete: Int64?
    }

    public var key: String
    public var verdict: Verdict
    public var operations: Int
    public var limitReached: String?
    /// The longest order that linearizes, in that order.
    public var longestPrefix: [Op] = []
    /// The operation(s) that cannot follow it.
    public var unplaceable: [Op] = []
    /// The model's state after the prefix.
    public var stateAfterPrefix: String?
    /// The operations worth drawing: the end of the prefix, the culprit and everything concurrent
    /// with them (bounded), in history order.
    public var window: [Op] = []

    enum CodingKeys: String, CodingKey {
        case key, verdict, operations, limitReached = "limit_reached", longestPrefix = "longest_prefix", unplaceable
        case stateAfterPrefix = "state_after_prefix", window
    }
}

public enum Counterexample {
    /// Operations drawn around the failure, at most.
    public static let windowLimit = 60

    public static func reports<M: SequentialModel>(_ model: M, _ history: [Operation<M.Input, M.Output>],
                                                   _ result: CheckResult) -> [KeyReport] {
        var byKey: [String: [Operation<M.Input, M.Output>]] = [:]
        for op in history { byKey[op.key, default: []].append(op) }
        return result.keys.map { r in
            let ops = byKey[r.key] ?? []
            func op(_ i: Int) -> KeyReport.Op {
                let o = ops[i]
                return .init(index: i, client: o.client, text: model.describe(o.input, o.output, outcome: o.outcome),
                             invoke: o.invoke, complete: o.outcome == .unknown ? nil : o.complete)
            }
            var report = KeyReport(key: r.key, verdict: r.verdict, operations: r.operations, limitReached: r.limitReached)
            guard r.verdict == .notLinearizable else { return report }
            report.longestPrefix = r.longestPrefix.map(op)
            report.unplaceable = r.unplaceable.map(op)
            var state = model.initial
            for i in r.longestPrefix {
                state = model.step(state, ops[i].input, ops[i].output, outcome: ops[i].outcome) ?? state
            }
            report.stateAfterPrefix = model.describe(state: state)
            report.window = window(ops.count, prefix: r.longestPrefix, culprits: r.unplaceable, ops: ops).map(op)
            return report
        }
    }

    /// The tail of the prefix, the culprits, and whatever overlaps the span they cover.
    static func window<I, O>(_ count: Int, prefix: [Int], culprits: [Int], ops: [Operation<I, O>]) -> [Int] {
        let anchor = Array(prefix.suffix(12)) + culprits
        guard !anchor.isEmpty else { return [] }
        let start = anchor.map { ops[$0].invoke }.min()!
        let end = culprits.compactMap { ops[$0].complete }.max() ?? anchor.map { ops[$0].complete ?? ops[$0].invoke }.max()!
        var chosen = Set(anchor)
        for i in 0..<count where chosen.count < windowLimit {
            let o = ops[i]
            let finish = o.outcome == .unknown ? Int64.max : (o.complete ?? Int64.max)
            if o.invoke <= end && finish >= start { chosen.insert(i) }
        }
        return chosen.sorted()
    }
}
