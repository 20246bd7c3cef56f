/// The replicated log as one replica holds it: a snapshot that stands for every entry up to its
/// index (compacted away), the entries after it, which of them are on disk (`stable`), and the
/// commit and apply marks.
public struct RaftLog: Sendable {
    /// Entries snapshotIndex+1 ... lastIndex.
    public private(set) var entries: [Entry] = []
    /// The latest snapshot: the log is compacted through its index.
    public private(set) var snapshot = Snapshot()
    /// Entries up to here are persisted; the rest go out in the next Ready.
    public private(set) var stable: LogIndex = 0
    public var committed: LogIndex = 0
    public var applied: LogIndex = 0
    /// The bytes of the entries held (their data): what the log costs in memory, for compaction
    /// by size as well as by count.
    public private(set) var byteCount = 0

    public init() {}

    /// The log a replica restarts with: its snapshot and the entries it persisted after it.
    init(snapshot: Snapshot, entries: [Entry]) {
        self.snapshot = snapshot
        self.entries = entries.filter { $0.index > snapshot.index }
        precondition(self.entries.first.map { $0.index == snapshot.index + 1 } ?? true,
                     "entries after a snapshot at \(snapshot.index) start at \(self.entries.first!.index)")
        stable = lastIndex
        committed = snapshot.index
        applied = snapshot.index
        byteCount = self.entries.reduce(0) { $0 + $1.data.count }
    }

    public var snapshotIndex: LogIndex { snapshot.index }
    /// The first index the log still holds as an entry.
    public var firstIndex: LogIndex { snapshot.index + 1 }
    public var lastIndex: LogIndex { entries.last?.index ?? snapshot.index }
    public var lastTerm: Term { entries.last?.term ?? snapshot.term }

    /// The term of the entry at `index` (the snapshot's term at its index), nil past the end or
    /// when compacted away.
    public func term(at index: LogIndex) -> Term? {
        if index == snapshot.index { return snapshot.term }
        guard index > snapshot.index, index <= lastIndex else { return nil }
        return entries[offset(index)].term
    }

    public func entry(at index: LogIndex) -> Entry? {
        guard index > snapshot.index, index <= lastIndex else { return nil }
        return entries[offset(index)]
    }

    /// Up to `max` entries from `start`, and no more than `maxBytes` of data unless one entry alone
    /// is larger (it goes by itself: etcd's MaxSizePerMsg).
    public func entries(from start: LogIndex, max: Int, maxBytes: Int = .max) -> [Entry] {
        guard start <= lastIndex, start > snapshot.index else { return [] }
        let from = offset(start)
        var end = from, bytes = 0
        while end < entries.count, end - from < max {
            bytes += entries[end].data.count
            if bytes > maxBytes && end > from { break }
            end += 1
        }
        return Array(entries[from..<end])
    }

    /// The data bytes of the entries held in (after, through].
    public func bytes(after: LogIndex, through: LogIndex) -> Int {
        let lo = max(after, snapshot.index), hi = min(through, lastIndex)
        guard lo < hi else { return 0 }
        return entries[(offset(lo) + 1)...offset(hi)].reduce(0) { $0 + $1.data.count }
    }

    /// Raft §5.4.1: a candidate's log is at least as up to date as ours.
    public func isUpToDate(lastIndex: LogIndex, lastTerm: Term) -> Bool {
        lastTerm > self.lastTerm || (lastTerm == self.lastTerm && lastIndex >= self.lastIndex)
    }

    /// The first index of the term that `index` holds: where a follower's conflicting term starts.
    public func firstIndex(ofTermAt index: LogIndex) -> LogIndex {
        guard let t = term(at: index), t.value > 0 else { return index }
        var i = index
        while i > firstIndex, term(at: i - 1) == t { i = i - 1 }
        return i
    }

    /// The last index holding `term`, if any: where a leader resumes after a conflict hint.
    public func lastIndex(of term: Term) -> LogIndex? {
        entries.last { $0.term == term }?.index
    }

    private func offset(_ index: LogIndex) -> Int { Int(index.value - snapshot.index.value) - 1 }

    mutating func append(_ entry: Entry) {
        precondition(entry.index == lastIndex + 1, "log append out of order: \(entry.index) after \(lastIndex)")
        entries.append(entry)
        byteCount += entry.data.count
    }

    /// Appends the leader's entries after `prev`, truncating our conflicting suffix first (§5.3).
    /// Entries we already hold with the same term are kept: a stale, reordered append must not
    /// cut entries off. Entries at or behind our snapshot are committed and skipped. Returns the
    /// index of the last entry the message covered, or nil, changing nothing, for an append that
    /// would overwrite a committed entry (no correct leader sends one: it is refused, not obeyed).
    mutating func merge(after prev: LogIndex, _ incoming: [Entry]) -> LogIndex? {
        let overwritesCommitted = incoming.contains { e in
            e.index > snapshot.index && e.index <= committed && term(at: e.index).map { $0 != e.term } ?? false
        }
        if overwritesCommitted { return nil }
        for e in incoming where e.index > snapshot.index {
            if let t = term(at: e.index) {
                if t == e.term { continue }
                byteCount -= entries[offset(e.index)...].reduce(0) { $0 + $1.data.count }
                entries.removeSubrange(offset(e.index)...)
                if stable >= e.index { stable = e.index - 1 }
            }
            entries.append(e)
            byteCount += e.data.count
        }
        return prev + incoming.count
    }

    mutating func markStable(through index: LogIndex) {
        if index > stable, index <= lastIndex { stable = index }
    }

    public var unstable: [Entry] { stable < lastIndex ? Array(entries[max(0, offset(stable + 1))...]) : [] }

    /// The application took a snapshot of its state at `snapshot.index` (applied already): drop
    /// the entries it covers.
    mutating func compact(to snapshot: Snapshot) {
        precondition(snapshot.index <= applied, "snapshot at \(snapshot.index) is ahead of applied \(applied)")
        guard snapshot.index > self.snapshot.index else { return }
        let dropped = offset(snapshot.index) + 1
        byteCount -= entries[..<dropped].reduce(0) { $0 + $1.data.count }
        entries.removeFirst(dropped)
        self.snapshot = snapshot
    }

    /// A leader's snapshot replaces everything we hold (our log is behind it or disagrees with it).
    mutating func restore(_ snapshot: Snapshot) {
        entries = []
        byteCount = 0
        self.snapshot = snapshot
        stable = snapshot.index
        committed = snapshot.index
    }
}
