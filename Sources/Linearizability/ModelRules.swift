/// The rules both models share, for any value type (a register's Int?, a key's String?); nil: impossible.
enum ModelRules {
    /// A read: one that completed with a result must have seen the state; one whose result is
    /// unknown constrains nothing. Neither changes the state.
    static func read<V: Equatable>(_ state: V, seen: V?, outcome: Outcome) -> V? {
        guard outcome == .ok, let seen else { return .some(state) }
        return seen == state ? .some(state) : nil
    }

    /// Compare-and-set: a success needs the expected value, a failure its absence; an unknown
    /// outcome did whichever the state allowed.
    static func compareAndSet<V: Equatable>(_ state: V, expected: V, new: V, outcome: Outcome) -> V? {
        switch outcome {
        case .ok: return state == expected ? .some(new) : nil
        case .fail: return state != expected ? .some(state) : nil
        case .unknown: return state == expected ? .some(new) : .some(state)
        }
    }
}
