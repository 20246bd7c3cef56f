/// Raft's vocabulary. Distinct types for term and index, so that one cannot be passed for the other.
public struct Term: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public var value: UInt64
    public init(_ value: UInt64) { self.value = value }
    public init(integerLiteral value: UInt64) { self.value = value }
    public static func < (a: Term, b: Term) -> Bool { a.value < b.value }
    public var next: Term { Term(value + 1) }
    public var description: String { String(value) }
}

public struct LogIndex: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public var value: UInt64
    public init(_ value: UInt64) { self.value = value }
    public init(integerLiteral value: UInt64) { self.value = value }
    public static func < (a: LogIndex, b: LogIndex) -> Bool { a.value < b.value }
    public static func + (a: LogIndex, n: Int) -> LogIndex { LogIndex(UInt64(Int(a.value) + n)) }
    public static func - (a: LogIndex, n: Int) -> LogIndex { LogIndex(UInt64(Int(a.value) - n)) }
    public var description: String { String(value) }
}

/// A replica's id within its group.
public typealias ReplicaID = Int

public struct Entry: Hashable, Sendable, CustomStringConvertible {
    public var term: Term
    public var index: LogIndex
    /// The application's command; empty for the no-op a new leader appends.
    public var data: [UInt8]
    public init(term: Term, index: LogIndex, data: [UInt8]) { self.term = term; self.index = index; self.data = data }
    public var description: String {
        "\(term)/\(index)" + (data.isEmpty ? " noop" : " " + Self.show(data))
    }

    /// Printable text as it is; anything else (an encoded command) by its size.
    static func show(_ data: [UInt8]) -> String {
        data.allSatisfy { $0 >= 0x20 && $0 < 0x7F } ? String(decoding: data, as: UTF8.self) : "<\(data.count) bytes>"
    }
}

/// What must be on disk before anything else is sent (Raft §5.1, Figure 2: currentTerm, votedFor),
/// plus the commit index, which etcd persists too so that a restart applies no less.
public struct HardState: Hashable, Sendable, CustomStringConvertible {
    public var term: Term = 0
    public var vote: ReplicaID? = nil
    public var commit: LogIndex = 0
    public init(term: Term = 0, vote: ReplicaID? = nil, commit: LogIndex = 0) { self.term = term; self.vote = vote; self.commit = commit }
    public var description: String { "term=\(term) vote=\(vote.map(String.init) ?? "-") commit=\(commit)" }
}

public enum Role: String, Sendable { case follower, preCandidate = "precandidate", candidate, leader }

/// The application's state as of `index` (whose entry had `term`), standing in for every entry up
/// to there once the log is compacted. `data` is opaque to Raft.
public struct Snapshot: Hashable, Sendable, CustomStringConvertible {
    public var index: LogIndex = 0
    public var term: Term = 0
    public var data: [UInt8] = []
    public init(index: LogIndex = 0, term: Term = 0, data: [UInt8] = []) { self.index = index; self.term = term; self.data = data }
    public var isEmpty: Bool { index.value == 0 }
    public var description: String { "snapshot \(term)/\(index) (\(data.count) bytes)" }
}

/// A ReadIndex request confirmed: once the application has applied `index`, a read that `context`
/// names sees every write acknowledged before the request (Raft §6.4).
public struct ReadState: Hashable, Sendable {
    public var context: UInt64
    public var index: LogIndex
    public init(context: UInt64, index: LogIndex) { self.context = context; self.index = index }
}
