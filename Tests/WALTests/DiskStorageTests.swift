import Testing
import Raft
@testable import RaftStorage
#if canImport(Glibc)
import Glibc
#endif

/// A temp directory removed when the test ends.
final class TempDir {
    let path: String
    init() {
        var template = Array("/tmp/kv-storage-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
    deinit { Self.remove(path) }

    /// Removes `path` and everything under it.
    static func remove(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if st.st_mode & S_IFMT == S_IFDIR {
            for name in (try? FileIO.list(path)) ?? [] { remove(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

private func entries(_ range: ClosedRange<UInt64>, term: Term, padding: Int = 0) -> [Entry] {
    range.map { Entry(term: term, index: LogIndex($0), data: Array("v\($0)".utf8) + Array(repeating: 0x2E, count: padding)) }
}

private func fileSize(_ path: String) -> Int {
    var st = stat()
    return stat(path, &st) == 0 ? Int(st.st_size) : -1
}

@Suite struct DiskStorageTests {
    @Test func entriesAndHardStateSurviveAReopen() throws {
        let dir = TempDir()
        do {
            let (s, r) = try DiskStorage.open(StorageOptions(directory: dir.path, segmentBytes: 1 << 16))
            #expect(r.entries.isEmpty && r.hardState == HardState())
            try s.save(hardState: HardState(term: 2, vote: 3, commit: 0), entries: entries(1...5, term: 2))
            try s.save(hardState: HardState(term: 2, vote: 3, commit: 4), entries: [])
            // The second batch only moved the commit index: written, not synced (etcd's MustSync).
            #expect(s.stats.syncs == 1 && s.stats.batches == 2 && s.stats.entries == 5)
        }
        let (_, r) = try DiskStorage.open(StorageOptions(directory: dir.path, segmentBytes: 1 << 16))
        #expect(r.hardState == HardState(term: 2, vote: 3, commit: 4))
        #expect(r.entries == entries(1...5, term: 2))
        #expect(r.truncated == nil)
    }

    @Test func aLaterEntryOverwritesTheSuffixItConflictsWith() throws {
        let dir = TempDir()
        do {
            let (s, _) = try DiskStorage.open(StorageOptions(directory: dir.path, segmentBytes: 1 << 16))
            try s.save(hardState: nil, entries: entries(1...5, term: 1))
            try s.save(hardState: HardState(term: 3, vote: 1, commit: 0), entries: entries(3...4, term: 3))
        }
        let (_, r) = try DiskStorage.open(StorageOptions(directory: dir.path, segmentBytes: 1 << 16))
        #expect(r.entries == entries(1...2, term: 1) + entries(3...4, term: 3))
    }

    @Test func aTornTailIsCutOffAndReportedWithItsOffset() throws {
        let dir = TempDir()
        let segment = dir.path + "/wal/0000000000000001.wal"
        var end = 0
        do {
            let (s, _) = try DiskStorage.open(StorageOptions(directory: dir.path, segmentBytes: 1 << 16))
            try s.save(hardState: HardState(term: 1, vote: 1, commit: 2), entries: entries(1...3, term: 1))
            end = s.writeOffsetForTests
        }
        // Cut the file mid-record: the last record (the hard state) loses its final 3 bytes.
        #expect(truncate(segment, off_t(end - 3)) == 0)
        do {
            let (s, r) = try DiskStorage.open(StorageOptions(directory: dir.path, segmentBytes: 1 << 16))
            let torn = try #require(r.truncated)
            #expect(torn.path == segment && torn.offset < end && torn.reason.contains("cut short"))
            #expect(r.entries == entries(1...3, term: 1))
            #expect(r.hardState == HardState(), "the segment header's hard state; the torn one is gone")
            // Writing goes on where the whole records end, and reads back.
            try s.save(hardState: nil, entries: entries(4...4, term: 1))
        }
        let (_, again) = try DiskStorage.open(StorageOptions(directory: dir.path, segmentBytes: 1 << 16))
        #expect(again.entries == entries(1...4, term: 1) && again.truncated == nil)
    }

    @Test func corruptionBeforeTheTailRefusesToStart() throws {
        let dir = TempDir()
        do {
            let (s, _) = try DiskStorage.open(StorageOptions(directory: dir.path, segmentBytes: 1 << 16))
            try s.save(hardState: nil, entries: entries(1...3, term: 1))
        }
        let segment = dir.path + "/wal/0000000000000001.wal"
        // Flip a byte inside the first entry's payload (the header's two records come first).
        var bytes = try FileIO.readAll(segment)
        let firstEntry = bytes.indices.first { bytes[$0] == UInt8(ascii: "v") }!
        bytes[firstEntry] ^= 0xFF
        let fd = open(segment, O_WRONLY)
        _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, 0) }
        close(fd)
        #expect {
            _ = try DiskStorage.open(StorageOptions(directory: dir.path, segmentBytes: 1 << 16))
        } throws: { error in
            guard case StorageError.corrupt(let path, _, let reason) = error else { return false }
            return path == segment && reason.contains("checksum") && "\(error)".contains("Refusing to start")
        }
    }

    @Test func aSnapshotRemovesTheSegmentsBehindIt() throws {
        let dir = TempDir()
        let options = StorageOptions(directory: dir.path, segmentBytes: 4096)
        do {
            let (s, _) = try DiskStorage.open(options)
            for i in stride(from: UInt64(1), through: 400, by: 10) {
                try s.save(hardState: HardState(term: 1, vote: 1, commit: LogIndex(i)), entries: entries(i...i + 9, term: 1, padding: 100))
            }
            #expect(try FileIO.list(dir.path + "/wal").count >= 10)
            try s.saveSnapshot(Snapshot(index: 300, term: 1, data: Array("state@300".utf8)), replacesLog: false)
            #expect(try FileIO.list(dir.path + "/snap") == ["0000000000000001-000000000000012c.snap"])
        }
        let walFiles = try FileIO.list(dir.path + "/wal")
        // About 34 entries fit a 4 KiB segment: those that hold only entries <= 300 are gone.
        #expect(walFiles.count <= 5 && walFiles.first.map { $0 >= "0000000000000008.wal" } == true, "\(walFiles)")
        var chunks: [[UInt8]] = []
        let (_, r) = try DiskStorage.open(options) { chunks.append($0) }
        #expect(r.snapshot == Snapshot(index: 300, term: 1) && chunks == [Array("state@300".utf8)])
        #expect(r.entries == entries(301...400, term: 1, padding: 100))
        #expect(r.hardState.commit == 391)
    }

    @Test func aSnapshotFromTheLeaderVoidsTheLogBeforeIt() throws {
        let dir = TempDir()
        do {
            let (s, _) = try DiskStorage.open(StorageOptions(directory: dir.path, segmentBytes: 1 << 16))
            try s.save(hardState: HardState(term: 1, vote: 1, commit: 2), entries: entries(1...6, term: 1))
            try s.saveSnapshot(Snapshot(index: 4, term: 2, data: [1]), replacesLog: true)
            try s.save(hardState: HardState(term: 2, vote: nil, commit: 5), entries: entries(5...5, term: 2))
        }
        let (_, r) = try DiskStorage.open(StorageOptions(directory: dir.path, segmentBytes: 1 << 16))
        #expect(r.snapshot.index == 4 && r.entries == entries(5...5, term: 2))
    }

    @Test func aDamagedSnapshotFileRefusesToStart() throws {
        let dir = TempDir()
        do {
            let (s, _) = try DiskStorage.open(StorageOptions(directory: dir.path, segmentBytes: 1 << 16))
            try s.save(hardState: nil, entries: entries(1...2, term: 1))
            try s.saveSnapshot(Snapshot(index: 2, term: 1, data: Array(repeating: 7, count: 100)), replacesLog: false)
        }
        let snap = dir.path + "/snap/0000000000000001-0000000000000002.snap"
        #expect(truncate(snap, off_t(fileSize(snap) - 10)) == 0)
        #expect(throws: StorageError.self) { _ = try DiskStorage.open(StorageOptions(directory: dir.path, segmentBytes: 1 << 16)) }
    }

    /// Two processes on one WAL would truncate and overwrite each other's records: the second open
    /// of a live directory is refused before it reads, cuts or deletes anything.
    @Test func aSecondOpenOfALiveDirectoryIsRefusedAndTouchesNothing() throws {
        let dir = TempDir()
        let options = StorageOptions(directory: dir.path, segmentBytes: 1 << 16)
        let (s, _) = try DiskStorage.open(options)
        try s.save(hardState: HardState(term: 4, vote: 2, commit: 0), entries: entries(1...3, term: 4))
        let segment = dir.path + "/wal/0000000000000001.wal"
        // A leftover temp file that a second recovery would delete.
        let tmp = dir.path + "/snap/0000000000000004-0000000000000002.snap.tmp"
        close(open(tmp, O_CREAT | O_WRONLY, 0o600))
        let before = try FileIO.readAll(segment)
        #expect {
            _ = try DiskStorage.open(options)
        } throws: { error in
            guard case StorageError.locked(let d, let holder) = error else { return false }
            return d == dir.path && holder == "pid \(getpid())"
        }
        #expect(try FileIO.readAll(segment) == before)
        #expect(fileSize(tmp) == 0)
        try s.save(hardState: nil, entries: entries(4...4, term: 4))
        _ = consume s
        let (_, r) = try DiskStorage.open(options)  // the lock went with its holder
        #expect(r.entries == entries(1...4, term: 4) && r.hardState.vote == 2)
    }

    /// A crash at any step of segment rollover or compaction (a hook that throws where the process
    /// could die) keeps term, vote and every entry whose save returned. Every crash point the
    /// workload passes is tried, one run each.
    @Test(arguments: [1, 2])
    func aCrashAtAnyStepOfRolloverOrCompactionKeepsTermVoteAndEveryAcknowledgedEntry(groups: Int) throws {
        let survey = CrashPlan(at: nil)
        _ = try crashWorkload(survey, groups: groups)
        let points = survey.passed
        #expect(Set(points).isSuperset(of: ["rollover.old-synced", "rollover.temp-written", "rollover.renamed", "snapshot.temp-written",
                                            "snapshot.renamed", "snapshot.marked", "compaction.segment-removed", "compaction.snapshot-removed"]))
        for k in 0..<points.count {
            let model = try crashWorkload(CrashPlan(at: k), groups: groups)
            let (_, recovered) = try DiskStorage.open(StorageOptions(directory: model.dir.path, segmentBytes: 4096, groups: groups))
                { (_: Int, _: [UInt8]) in }
            for (g, r) in recovered.enumerated() {
                let at = "group \(g), crash at \(points[k]) (point \(k) of \(points.count))"
                #expect([model.acked, model.attempted].contains(HardState(term: r.hardState.term, vote: r.hardState.vote)), "\(at): \(r.hardState)")
                #expect(r.snapshot.index >= model.ackedSnapshot[g], "\(at)")
                for e in model.entries where e.index > r.snapshot.index {
                    #expect(r.entries.first { $0.index == e.index } == e, "\(at): entry \(e.index) lost")
                }
            }
        }
    }

    /// A snapshot file of any size: written and read back one chunk at a time, each a record of its
    /// own (no record, and no read, holds the whole state). 70 chunks of 1 MiB here, past the 64 MiB
    /// that one record may hold.
    @Test func aSnapshotLargerThanARecordIsWrittenAndReadInChunks() throws {
        let dir = TempDir()
        let options = StorageOptions(directory: dir.path, segmentBytes: 1 << 16)
        let chunk = { (i: Int) in [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: 1 << 20) }
        do {
            let (s, _) = try DiskStorage.open(options)
            try s.save(hardState: HardState(term: 1, vote: 1, commit: 2), entries: entries(1...2, term: 1))
            let w = try SnapshotFile.Writer(path: s.snapshotPath(index: 2, term: 1), index: 2, term: 1)
            for i in 0..<70 { try w.append(chunk(i)) }
            try w.finish(rename: false)
            try s.install(snapshotAt: w.tempPath, index: 2, term: 1, replacesLog: false)
        }
        var seen = 0
        var largest = 0
        let (_, r) = try DiskStorage.open(options) { c in
            #expect(c == chunk(seen))
            seen += 1
            largest = max(largest, c.count)
        }
        #expect(r.snapshot == Snapshot(index: 2, term: 1) && seen == 70 && largest == 1 << 20)
    }

    /// A snapshot file without its end record (or with a chunk missing) is damage, not a snapshot.
    @Test func anIncompleteSnapshotFileRefusesToStart() throws {
        let dir = TempDir()
        let options = StorageOptions(directory: dir.path, segmentBytes: 1 << 16)
        let path: String
        do {
            let (s, _) = try DiskStorage.open(options)
            try s.save(hardState: nil, entries: entries(1...2, term: 1))
            let w = try SnapshotFile.Writer(path: s.snapshotPath(index: 2, term: 1), index: 2, term: 1)
            for i in 0..<3 { try w.append([UInt8](repeating: UInt8(i), count: 1000)) }
            try w.finish(rename: false)
            try s.install(snapshotAt: w.tempPath, index: 2, term: 1, replacesLog: false)
            path = s.snapshotPath(index: 2, term: 1)
        }
        // Cut off the end record (8 bytes of header + type + a one-byte count).
        #expect(truncate(path, off_t(fileSize(path) - 10)) == 0)
        #expect {
            _ = try DiskStorage.open(options)
        } throws: { error in
            guard case StorageError.corrupt(let p, _, let reason) = error else { return false }
            return p == path && reason.contains("no end record")
        }
    }
}


/// Where the workload crashes: at the k-th crash point it passes (nil: nowhere).
private final class CrashPlan {
    let at: Int?
    var passed: [String] = []
    init(at: Int?) { self.at = at }
    func shouldCrash(_ point: String) -> Bool {
        passed.append(point)
        return passed.count - 1 == at
    }
}

/// What a crashed workload had been told was done (acked) and what it was doing (attempted).
private struct CrashModel {
    var dir = TempDir()
    var acked = HardState()
    var attempted = HardState()
    var entries: [Entry] = []
    /// By group.
    var ackedSnapshot: [LogIndex] = []
}

/// Saves with changing term and vote, rollovers every two or three batches, snapshots that compact
/// and one from a leader that replaces the log, crashing where `plan` says. With several groups,
/// every group stages the same batch and the node commits them together; group g's snapshots come
/// g rounds later than group 0's, so that segments wait for the slowest group. Returns what had
/// been acknowledged.
private func crashWorkload(_ plan: CrashPlan, groups: Int = 1) throws -> CrashModel {
    var model = CrashModel()
    model.ackedSnapshot = [LogIndex](repeating: 0, count: groups)
    let (s, _) = try DiskStorage.open(StorageOptions(directory: model.dir.path, segmentBytes: 4096, groups: groups)) { (_: Int, _: [UInt8]) in }
    s.crashHookForTests = plan.shouldCrash
    var next: UInt64 = 1
    var snapshots: [(round: Int, group: Int, Snapshot, replacesLog: Bool)] = []
    do {
        for round in 0..<14 {
            let hs = HardState(term: Term(UInt64(1 + round / 3)), vote: round % 3 + 1, commit: 0)
            model.attempted = HardState(term: hs.term, vote: hs.vote)
            let batch = entries(next...next + 9, term: hs.term, padding: 150 / groups)
            for g in 0..<groups { s.stage(group: g, hardState: hs, entries: batch) }
            try s.commit()
            model.acked = model.attempted
            model.entries += batch
            next += 10
            if round % 4 == 3 {
                let index = LogIndex(next - 6)
                for g in 0..<groups { snapshots.append((round + g, g, Snapshot(index: index, term: hs.term, data: Array("state@\(index)".utf8)), false)) }
            }
            if round == 9 {
                let index = LogIndex(next + 4)  // the leader's snapshot is ahead of this log
                for g in 0..<groups {
                    try s.saveSnapshot(group: g, Snapshot(index: index, term: hs.term, data: [1]), replacesLog: true)
                    model.ackedSnapshot[g] = index
                }
                snapshots.removeAll()
                model.entries.removeAll()
                next += 5
            }
            for (i, due) in snapshots.enumerated().reversed() where due.round == round {
                try s.saveSnapshot(group: due.group, due.2, replacesLog: false)
                model.ackedSnapshot[due.group] = max(model.ackedSnapshot[due.group], due.2.index)
                snapshots.remove(at: i)
            }
        }
    } catch let e {
        guard case .io(_, let operation, _) = e, operation == DiskStorage.crashPointOperation else { throw e }
        return model  // the process "died" here: the storage is dropped without another write
    }
    return model
}
