import Testing
import Raft
@testable import RaftStorage
#if canImport(Glibc)
import Glibc
#endif

/// A temp directory removed when the test ends.
private final class TempDir {
    let path: String
    init() {
        var template = Array("/tmp/kv-storage-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
    deinit { Self.remove(path) }

    private static func remove(_ path: String) {
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
        let (s, r) = try DiskStorage.open(StorageOptions(directory: dir.path, segmentBytes: 1 << 16))
        let torn = try #require(r.truncated)
        #expect(torn.path == segment && torn.offset < end && torn.reason.contains("cut short"))
        #expect(r.entries == entries(1...3, term: 1))
        #expect(r.hardState == HardState(), "the segment header's hard state; the torn one is gone")
        // Writing goes on where the whole records end, and reads back.
        try s.save(hardState: nil, entries: entries(4...4, term: 1))
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
        let (_, r) = try DiskStorage.open(options)
        #expect(r.snapshot == Snapshot(index: 300, term: 1, data: Array("state@300".utf8)))
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
}
