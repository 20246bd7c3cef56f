/// The replicated log as one replica holds it: entries from index 1, which of them are on disk
/// (`stable`), and the commit index. Compaction behind a snapshot comes with snapshots.
public struct RaftLog: Sendable {
    public private(set) var entries: [Entry] = []
    /// Entries up to here are persisted; the rest go out in the next Ready.
    public private(set) var stable: LogIndex = 0
    public var committed: LogIndex = 0
    public var applied: LogIndex = 0

    public init() {}

    public var lastIndex: LogIndex { entries.last?.index ?? 0 }
    public var lastTerm: Term { entries.last?.term ?? 0 }

    /// The term of the entry at `index` (0 for index 0), nil past the end.
    public func term(at index: LogIndex) -> Term? {
        if index.value == 0 { return 0 }
        guard index <= lastIndex else { return nil }
        return entries[Int(index.value) - 1].term
    }

    public func entries(from start: LogIndex, max: Int) -> [Entry] {
        guard start <= lastIndex, start.value >= 1 else { return [] }
        let from = Int(start.value) - 1
        return Array(entries[from..<min(entries.count, from + max)])
    }

    /// Raft §5.4.1: a candidate's log is at least as up to date as ours.
    public func isUpToDate(lastIndex: LogIndex, lastTerm: Term) -> Bool {
        lastTerm > self.lastTerm || (lastTerm == self.lastTerm && lastIndex >= self.lastIndex)
    }

    /// The first index of the term that `index` holds: where a follower's conflicting term starts.
    public func firstIndex(ofTermAt index: LogIndex) -> LogIndex {
        guard let t = term(at: index), t.value > 0 else { return index }
        var i = index
        while i.value > 1, term(at: i - 1) == t { i = i - 1 }
        return i
    }

    /// The last index holding `term`, if any: where a leader resumes after a conflict hint.
    public func lastIndex(of term: Term) -> LogIndex? {
        entries.last { $0.term == term }?.index
    }

    mutating func append(_ entry: Entry) {
        precondition(entry.index == lastIndex + 1, "log append out of order: \(entry.index) after \(lastIndex)")
        entries.append(entry)
    }

    /// Appends the leader's entries after `prev`, truncating our conflicting suffix first (§5.3).
    /// Entries we already hold with the same term are kept: a stale, reordered append must not
    /// cut entries off. Returns the index of the last entry the message covered.
    mutating func merge(after prev: LogIndex, _ incoming: [Entry]) -> LogIndex {
        for e in incoming {
            if let t = term(at: e.index) {
                if t == e.term { continue }
                precondition(e.index > committed, "conflict at committed index \(e.index): a safety violation")
                entries.removeSubrange((Int(e.index.value) - 1)...)
                if stable >= e.index { stable = e.index - 1 }
            }
            entries.append(e)
        }
        return prev + incoming.count
    }

    mutating func markStable(through index: LogIndex) {
        if index > stable, index <= lastIndex { stable = index }
    }

    public var unstable: [Entry] { stable < lastIndex ? Array(entries[Int(stable.value)...]) : [] }
}
