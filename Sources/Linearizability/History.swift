/// How an operation ended, as the client saw it.
public enum Outcome: String, Sendable, Equatable, Codable {
    /// Completed with a result: it took effect between invoke and completion, with that result.
    case ok
    /// Completed and definitely did not take effect the way it asked (a cas that found another
    /// value): it is still placed in the order, with a failed result.
    case fail
    /// Timed out, crashed or never completed: it may have taken effect at any time after its
    /// invocation, or never.
    case unknown
}

/// One operation of a concurrent history: who called it, what it asked, what came back and when.
/// Times are any monotonic clock (ns, or line numbers for logs without times).
public struct Operation<Input: Sendable, Output: Sendable>: Sendable {
    public var client: Int
    /// Operations on different keys are independent (P-compositionality): each key is checked alone.
    public var key: String
    public var input: Input
    /// nil when the outcome is unknown.
    public var output: Output?
    public var outcome: Outcome
    public var invoke: Int64
    /// nil when the operation never completed (its outcome is then unknown).
    public var complete: Int64?

    public init(client: Int, key: String = "", input: Input, output: Output?, outcome: Outcome, invoke: Int64, complete: Int64?) {
        self.client = client; self.key = key; self.input = input; self.output = output; self.outcome = outcome
        self.invoke = invoke; self.complete = complete
    }
}

/// The sequential specification an operation history is checked against. `step` is the model's
/// only logic: the state after `input` given what the client saw, or nil if that result is
/// impossible from `state`. With `output == nil` (unknown outcome) the operation takes effect as
/// it would on `state`.
public protocol SequentialModel: Sendable {
    associatedtype State: Hashable & Sendable
    associatedtype Input: Sendable
    associatedtype Output: Sendable
    var initial: State { get }
    func step(_ state: State, _ input: Input, _ output: Output?, outcome: Outcome) -> State?
    /// How a person reads an operation in a counterexample ("write 4", "cas 1->4 failed").
    func describe(_ input: Input, _ output: Output?, outcome: Outcome) -> String
    func describe(state: State) -> String
}
