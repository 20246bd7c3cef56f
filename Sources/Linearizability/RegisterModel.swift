/// A single register holding an integer, or nothing (absent): read, write, compare-and-set.
/// The model of Jepsen's etcd histories.
public struct RegisterModel: SequentialModel {
    public enum Input: Sendable, Equatable {
        case read
        case write(Int)
        case cas(from: Int, to: Int)
    }
    public enum Output: Sendable, Equatable {
        /// What a read returned (nil: absent).
        case value(Int?)
        case done
    }

    public init() {}
    public var initial: Int? { nil }

    public func step(_ state: Int?, _ input: Input, _ output: Output?, outcome: Outcome) -> Int?? {
        switch input {
        case .read:
            let seen: Int?? = if case .value(let v)? = output { .some(v) } else { nil }
            return ModelRules.read(state, seen: seen, outcome: outcome)
        case .write(let v):
            return outcome == .fail ? .some(state) : .some(v)
        case .cas(let from, let to):
            return ModelRules.compareAndSet(state, expected: from, new: to, outcome: outcome)
        }
    }

    public func describe(_ input: Input, _ output: Output?, outcome: Outcome) -> String {
        let suffix = outcome == .unknown ? " (outcome unknown)" : outcome == .fail ? " failed" : ""
        switch input {
        case .read:
            if case .value(let v)? = output { return "read -> \(v.map(String.init) ?? "absent")" }
            return "read" + suffix
        case .write(let v): return "write \(v)" + suffix
        case .cas(let from, let to): return "cas \(from)->\(to)" + suffix
        }
    }

    public func describe(state: Int?) -> String { state.map(String.init) ?? "absent" }
}
