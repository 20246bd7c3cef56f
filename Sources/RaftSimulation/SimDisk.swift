import Raft

/// One replica's disk as a write-ahead log of records, every group's (kvnode's WAL is shared by
/// its groups). A write is durable only once synced; a crash keeps a random prefix of the unsynced
/// records (the page cache may have flushed some), and the last record kept may be torn: recovery
/// detects it (as a checksum would) and truncates there, never applying it.
struct SimDisk: Sendable {
    enum Record: Sendable {
        case hardState(Int, HardState)
        case entries(Int, [Entry])
        /// `replacesLog`: a leader's snapshot, which voids the group's whole log before it (as
        /// kvnode's marker does); the replica's own covers only the entries through its index.
        case snapshot(Int, Snapshot, replacesLog: Bool)
    }

    private(set) var synced: [Record] = []
    private var unsynced: [Record] = []
    /// The last synced record was torn by a crash (only ever the last).
    private var tornTail = false
    /// Each group's newest hard state written, synced or not.
    private var written: [Int: HardState] = [:]
    /// Something unsynced must be synced before it is acted on: entries, a snapshot, or a hard
    /// state with a new term or vote. A hard state that only moved the commit index waits for the
    /// next sync, as kvnode's (etcd's MustSync).
    private(set) var mustSync = false

    mutating func write(_ r: Record) {
        switch r {
        case .hardState(let g, let hs):
            if let old = written[g], old.term == hs.term && old.vote == hs.vote {} else { mustSync = true }
            written[g] = hs
        case .entries, .snapshot: mustSync = true
        }
        unsynced.append(r)
    }

    mutating func sync() {
        synced += unsynced
        unsynced = []
        mustSync = false
    }

    /// Power lost: what had not been synced may or may not have reached the platter.
    /// Returns what happened, for the trace.
    mutating func crash(_ rng: inout SimRandom) -> String {
        written = [:]
        mustSync = false
        guard !unsynced.isEmpty else { return "nothing unsynced" }
        let kept = rng.below(unsynced.count + 1)
        let torn = kept > 0 && rng.chance(50)
        let lost = unsynced.count - kept
        synced += unsynced.prefix(kept)
        tornTail = torn
        unsynced = []
        return "\(lost) unsynced record(s) lost, \(kept) kept" + (torn ? ", the last of them torn" : "")
    }

    /// What a restart reads back, by group. Rewrites the log compactly, as a WAL repair would.
    mutating func recover(groups: Int) -> [(hardState: HardState, snapshot: Snapshot, entries: [Entry])] {
        if tornTail { synced.removeLast(); tornTail = false }
        var out = [(hardState: HardState, snapshot: Snapshot, entries: [Entry])](repeating: (HardState(), Snapshot(), []), count: groups)
        for r in synced {
            switch r {
            case .hardState(let g, let h): out[g].hardState = h
            case .snapshot(let g, let s, let replaces):
                out[g].snapshot = s
                if replaces { out[g].entries.removeAll() } else { out[g].entries.removeAll { $0.index <= s.index } }
            case .entries(let g, let es):
                guard let first = es.first else { continue }
                out[g].entries.removeAll { $0.index >= first.index }
                out[g].entries += es
            }
        }
        synced = []
        for (g, (hs, snap, entries)) in out.enumerated() {
            precondition(entries.first.map { $0.index == snap.index + 1 } ?? true, "a gap between the snapshot and the log on disk")
            synced += [.snapshot(g, snap, replacesLog: false), .hardState(g, hs), .entries(g, entries)]
            written[g] = hs
        }
        return out
    }

    /// After a snapshot is synced, the records it covers can go (keeps replays short).
    mutating func compact(groups: Int) {
        var copy = self
        _ = copy.recover(groups: groups)
        synced = copy.synced
    }
}
