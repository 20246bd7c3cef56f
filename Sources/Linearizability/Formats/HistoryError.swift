/// A history file that could not be read: where, and what was wrong.
public struct HistoryError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var message: String
    public init(line: Int, message: String) { self.line = line; self.message = message }
    public var description: String { "line \(line): \(message)" }
}

/// Pairs invocations with completions per client, in file order; the line number is the time.
struct Pairing<Input: Sendable, Output: Sendable> {
    private(set) var operations: [Operation<Input, Output>] = []
    private var pending: [Int: Int] = [:]  // client -> index in operations

    mutating func invoke(client: Int, key: String, input: Input, line: Int) {
        // A client that invokes again without completing the last one: that one's outcome is unknown.
        if let open = pending[client] { operations[open].outcome = .unknown }
        pending[client] = operations.count
        operations.append(Operation(client: client, key: key, input: input, output: nil, outcome: .unknown,
                                    invoke: Int64(line), complete: nil))
    }

    /// Completes the client's pending operation; false if it has none.
    mutating func complete(client: Int, outcome: Outcome, output: Output?, line: Int) -> Bool {
        guard let i = pending.removeValue(forKey: client) else { return false }
        operations[i].outcome = outcome
        operations[i].output = outcome == .unknown ? nil : output
        operations[i].complete = outcome == .unknown ? nil : Int64(line)
        return true
    }

    func input(of client: Int) -> Input? { pending[client].map { operations[$0].input } }
}
