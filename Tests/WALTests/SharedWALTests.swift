import Testing
import Raft
@testable import RaftStorage
#if canImport(Glibc)
import Glibc
#endif

private func tempDir() -> String {
    var template = Array("/tmp/kv-sharedwal-XXXXXX".utf8CString)
    return String(cString: mkdtemp(&template)!)
}

private func removeTree(_ path: String) { TempDir.remove(path) }

/// Group g's entries carry g in their data, so that a record replayed into the wrong group shows.
private func entries(group: Int, _ range: ClosedRange<UInt64>, term: Term, padding: Int = 0) -> [Entry] {
    range.map { Entry(term: term, index: LogIndex($0), data: Array("g\(group)v\($0)".utf8) + Array(repeating: 0x2E, count: padding)) }
}

/// The node's WAL is shared by its groups: one write and one sync per commit whatever the number
/// of groups, each group's records replayed into its own log, and a segment kept until every
/// group's snapshot covers it.
@Suite struct SharedWALTests {
    @Test func threeGroupsShareOneSyncAndReplayIntoTheirOwnLogs() throws {
        let dir = tempDir()
        defer { removeTree(dir) }
        let options = StorageOptions(directory: dir, segmentBytes: 1 << 16, groups: 3)
        do {
            let (s, r) = try DiskStorage.open(options) { (_: Int, _: [UInt8]) in }
            #expect(r.count == 3 && r.allSatisfy { $0.entries.isEmpty })
            for g in 0..<3 {
                // The same indexes in every group, with their own terms and votes.
                s.stage(group: g, hardState: HardState(term: Term(UInt64(g + 1)), vote: g + 1, commit: 0),
                        entries: entries(group: g, 1...4, term: Term(UInt64(g + 1))))
            }
            try s.commit()
            #expect(s.stats.syncs == 1 && s.stats.batches == 1 && s.stats.entries == 12)
            // Group 1's leader overwrites its last two entries; the others are untouched.
            s.stage(group: 1, hardState: HardState(term: 5, vote: 3, commit: 2), entries: entries(group: 1, 3...3, term: 5))
            s.stage(group: 2, hardState: HardState(term: 3, vote: 3, commit: 4), entries: [])
            try s.commit()
            #expect(s.stats.syncs == 2)
        }
        let (_, r) = try DiskStorage.open(options) { (_: Int, _: [UInt8]) in }
        #expect(r[0].entries == entries(group: 0, 1...4, term: 1) && r[0].hardState == HardState(term: 1, vote: 1, commit: 0))
        #expect(r[1].entries == entries(group: 1, 1...2, term: 2) + entries(group: 1, 3...3, term: 5))
        #expect(r[1].hardState == HardState(term: 5, vote: 3, commit: 2))
        #expect(r[2].entries == entries(group: 2, 1...4, term: 3) && r[2].hardState.commit == 4)
        // The WAL is the node's; a group's own directory holds its snapshots.
        #expect(try FileIO.list(dir) == ["GROUPS", "LOCK", "group-1", "group-2", "snap", "wal"])
        #expect(try FileIO.list(dir + "/wal").count == 1 && FileIO.list(dir + "/group-1") == ["snap"])
    }

    @Test func aSegmentStaysUntilEveryGroupsSnapshotCoversIt() throws {
        let dir = tempDir()
        defer { removeTree(dir) }
        let options = StorageOptions(directory: dir, segmentBytes: 4096, groups: 2)
        let (s, _) = try DiskStorage.open(options) { (_: Int, _: [UInt8]) in }
        for i in stride(from: UInt64(1), through: 200, by: 10) {
            for g in 0..<2 {
                s.stage(group: g, hardState: HardState(term: 1, vote: 1, commit: LogIndex(i)), entries: entries(group: g, i...i + 9, term: 1, padding: 100))
            }
            try s.commit()
        }
        let before = try FileIO.list(dir + "/wal").count
        #expect(before >= 10)
        // Group 0 alone covers nothing: group 1's entries are in every segment.
        try s.saveSnapshot(group: 0, Snapshot(index: 150, term: 1, data: [0]), replacesLog: false)
        #expect(try FileIO.list(dir + "/wal").count == before)
        // A leader's snapshot replaces group 1's log: now group 0's snapshot decides.
        try s.saveSnapshot(group: 1, Snapshot(index: 500, term: 2, data: [1]), replacesLog: true)
        let after = try FileIO.list(dir + "/wal").count
        #expect(after < before && after >= 2, "\(before) -> \(after)")
        #expect(try FileIO.list(dir + "/group-1/snap") == ["0000000000000002-00000000000001f4.snap"])
        withExtendedLifetime(s) {}
    }

    @Test func theSegmentsLeftBehindReplayEveryGroup() throws {
        let dir = tempDir()
        defer { removeTree(dir) }
        let options = StorageOptions(directory: dir, segmentBytes: 4096, groups: 2)
        do {
            let (s, _) = try DiskStorage.open(options) { (_: Int, _: [UInt8]) in }
            for i in stride(from: UInt64(1), through: 200, by: 10) {
                s.stage(group: 0, hardState: HardState(term: 1, vote: 1, commit: LogIndex(i)), entries: entries(group: 0, i...i + 9, term: 1, padding: 100))
                s.stage(group: 1, hardState: HardState(term: 2, vote: 2, commit: LogIndex(i)), entries: entries(group: 1, i...i + 9, term: 2, padding: 100))
                try s.commit()
            }
            try s.saveSnapshot(group: 0, Snapshot(index: 120, term: 1, data: [0]), replacesLog: false)
            try s.saveSnapshot(group: 1, Snapshot(index: 150, term: 2, data: [1]), replacesLog: false)
        }
        var chunks: [Int: [[UInt8]]] = [:]
        let (_, r) = try DiskStorage.open(options) { g, c in chunks[g, default: []].append(c) }
        #expect(chunks == [0: [[0]], 1: [[1]]])
        #expect(r[0].snapshot == Snapshot(index: 120, term: 1) && r[0].entries == entries(group: 0, 121...200, term: 1, padding: 100))
        #expect(r[1].snapshot == Snapshot(index: 150, term: 2) && r[1].entries == entries(group: 1, 151...200, term: 2, padding: 100))
        #expect(r[0].hardState == HardState(term: 1, vote: 1, commit: 191) && r[1].hardState == HardState(term: 2, vote: 2, commit: 191))
    }

    @Test func aRecordOfAGroupBeyondTheCountIsDamage() throws {
        let dir = tempDir()
        defer { removeTree(dir) }
        do {
            let (s, _) = try DiskStorage.open(StorageOptions(directory: dir, segmentBytes: 1 << 16, groups: 3)) { (_: Int, _: [UInt8]) in }
            try s.save(group: 2, hardState: nil, entries: entries(group: 2, 1...1, term: 1))
        }
        // What GROUPS pins is checked first; with it rewritten, the record itself is refused.
        try SmallFile.replace(dir + "/GROUPS", with: Array("2\n".utf8))
        removeTree(dir + "/group-2")
        #expect {
            _ = try DiskStorage.open(StorageOptions(directory: dir, segmentBytes: 1 << 16, groups: 2)) { (_: Int, _: [UInt8]) in }
        } throws: { error in
            guard case StorageError.corrupt(_, _, let reason) = error else { return false }
            return reason.contains("group 2")
        }
    }

    /// Refused before anything is made: a start with the wrong count leaves no group directory.
    @Test func aWrongGroupCountIsRefusedBeforeAnyDirectoryIsMade() throws {
        let dir = tempDir()
        defer { removeTree(dir) }
        do {
            let (s, _) = try DiskStorage.open(StorageOptions(directory: dir, segmentBytes: 1 << 16))
            try s.save(hardState: nil, entries: entries(group: 0, 1...1, term: 1))
        }
        #expect {
            _ = try DiskStorage.open(StorageOptions(directory: dir, segmentBytes: 1 << 16, groups: 3)) { (_: Int, _: [UInt8]) in }
        } throws: { error in
            guard case StorageError.layout(let why) = error else { return false }
            return why.contains("holds 1 Raft group")
        }
        #expect(try !FileIO.list(dir).contains { $0.hasPrefix("group-") })
        let (_, r) = try DiskStorage.open(StorageOptions(directory: dir, segmentBytes: 1 << 16))
        #expect(r.entries.count == 1)
    }

    /// A build before the shared WAL kept group g's log in `group-g/wal`: this one would start
    /// that group without its term and vote, so it refuses, naming the directory.
    @Test func aWALPerGroupFromAnEarlierBuildIsRefused() throws {
        let dir = tempDir()
        defer { removeTree(dir) }
        do { _ = try DiskStorage.open(StorageOptions(directory: dir, groups: 2)) { (_: Int, _: [UInt8]) in } }
        try FileIO.makeDirectory(dir + "/group-1/wal")
        try SmallFile.replace(dir + "/group-1/wal/0000000000000001.wal", with: [0])
        #expect {
            _ = try DiskStorage.open(StorageOptions(directory: dir, groups: 2)) { (_: Int, _: [UInt8]) in }
        } throws: { error in
            guard case StorageError.layout(let why) = error else { return false }
            return why.contains(dir + "/group-1/wal") && why.contains("term, vote and log")
        }
    }

    /// Past `segmentsBeforePurge` segments, a group whose entries keep the oldest one is named, and
    /// its snapshot lets the segments go.
    @Test func aQuietGroupKeepingTheOldestSegmentIsNamedUntilItSnapshots() throws {
        let dir = tempDir()
        defer { removeTree(dir) }
        let (s, _) = try DiskStorage.open(StorageOptions(directory: dir, segmentBytes: 4096, groups: 2, segmentsBeforePurge: 3))
            { (_: Int, _: [UInt8]) in }
        try s.save(group: 1, hardState: HardState(term: 1, vote: 1, commit: 1), entries: entries(group: 1, 1...1, term: 1))
        for i in stride(from: UInt64(1), through: 300, by: 10) {
            try s.save(group: 0, hardState: HardState(term: 1, vote: 1, commit: LogIndex(i)), entries: entries(group: 0, i...i + 9, term: 1, padding: 100))
        }
        try s.saveSnapshot(group: 0, Snapshot(index: 300, term: 1, data: [0]), replacesLog: false)
        #expect(s.segmentCount > 3 && s.holdsOldestSegment(1) && !s.holdsOldestSegment(0))
        try s.saveSnapshot(group: 1, Snapshot(index: 1, term: 1, data: [1]), replacesLog: false)
        #expect(s.segmentCount == 1 && !s.holdsOldestSegment(1))
    }
}
