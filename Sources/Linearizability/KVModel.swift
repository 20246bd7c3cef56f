/// One key of a key-value store (keys are checked one at a time): get, put, append, delete and
/// compare-and-set on string values. `absent` is nil; the lab's store starts every key absent,
/// the student Raft histories start every key at "" (`initial`).
public struct KVModel: SequentialModel {
    public enum Input: Sendable, Equatable {
        case get
        case put(String)
        case append(String)
        case delete
        case cas(expected: String?, new: String)
    }
    public enum Output: Sendable, Equatable {
        /// What a get returned (nil: absent).
        case value(String?)
        case done
    }

    public let initial: String?
    public init(initial: String? = nil) { self.initial = initial }

    public func step(_ state: String?, _ input: Input, _ output: Output?, outcome: Outcome) -> String?? {
        switch input {
        case .get:
            let seen: String?? = if case .value(let v)? = output { .some(v) } else { nil }
            return ModelRules.read(state, seen: seen, outcome: outcome)
        case .put(let v): return outcome == .fail ? .some(state) : .some(v)
        case .append(let v): return outcome == .fail ? .some(state) : .some((state ?? "") + v)
        case .delete: return outcome == .fail ? .some(state) : .some(nil)
        case .cas(let expected, let new):
            return ModelRules.compareAndSet(state, expected: expected, new: new, outcome: outcome)
        }
    }

    public func describe(_ input: Input, _ output: Output?, outcome: Outcome) -> String {
        let suffix = outcome == .unknown ? " (outcome unknown)" : outcome == .fail ? " failed" : ""
        switch input {
        case .get:
            if case .value(let v)? = output { return "get -> \(v.map { "\"\($0)\"" } ?? "absent")" }
            return "get" + suffix
        case .put(let v): return "put \"\(v)\"" + suffix
        case .append(let v): return "append \"\(v)\"" + suffix
        case .delete: return "delete" + suffix
        case .cas(let e, let n): return "cas \(e.map { "\"\($0)\"" } ?? "absent")->\"\(n)\"" + suffix
        }
    }

    public func describe(state: String?) -> String { state.map { "\"\($0)\"" } ?? "absent" }
}
