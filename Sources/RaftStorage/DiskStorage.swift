import Core
import Raft
import WAL
#if canImport(Glibc)
import Glibc
#endif

public struct StorageOptions: Sendable {
    public var directory: String
    public var sync: SyncMode
    /// A segment is preallocated to this size; a batch that does not fit starts the next one.
    public var segmentBytes: Int
    /// Raft groups sharing the WAL; their count is pinned in `GROUPS` (`GroupLayout`).
    public var groups: Int
    /// With several groups, past this many segments a group whose entries keep the oldest one is
    /// asked to snapshot (`holdsOldestSegment`): an idle group must not keep the WAL forever.
    public var segmentsBeforePurge: Int
    public init(directory: String, sync: SyncMode = .fdatasync, segmentBytes: Int = 64 << 20, groups: Int = 1,
                segmentsBeforePurge: Int = 4) {
        self.directory = directory; self.sync = sync; self.segmentBytes = segmentBytes; self.groups = groups
        self.segmentsBeforePurge = segmentsBeforePurge
    }
}

/// What a start found on disk for one group.
public struct Recovered: Sendable {
    public var hardState = HardState()
    /// The newest snapshot's index and term (its state went to the chunk consumer).
    public var snapshot = Snapshot()
    public var snapshotPath: String?
    public var entries: [Entry] = []
    /// A torn final record that was cut off: where, and why it was taken for torn (the WAL's, so every group's).
    public var truncated: (path: String, offset: Int, reason: String)?
    public var segments = 0
    public var records = 0
}

public struct StorageStats: Sendable {
    /// fdatasync calls for entries and hard state (group commit: many entries, of every group, share one).
    public var syncs = 0
    /// Writes to the WAL: one per `commit` with something staged.
    public var batches = 0
    public var entries = 0
    public var bytes = 0
}

/// The node's disk: one WAL shared by its Raft groups, segments `wal/%016x.wal` (records framed by
/// `WALRecord`, tagged with their group by `GroupRecord`, preallocated), and each group's snapshot
/// files `snap/%016x-%016x.snap` (term, index) in the group's directory (`GroupLayout`), written
/// atomically. Owned by one thread.
///
/// A loop pass stages every group's entries and hard state (`stage`) and then commits them with one
/// write and one fdatasync (`commit`), the group commit across groups that TiKV's raft-engine and
/// CockroachDB's shared WAL make: N groups cost a node one sync per pass, not N.
///
/// Every segment starts with each group's hard state and the snapshot it follows, so the segments
/// behind every group's snapshot can be deleted without losing either.
public final class DiskStorage {
    public let options: StorageOptions
    private let walDir: String
    private struct GroupDisk {
        var snapDir: String
        var hardState = HardState()
        var snapshotIndex: LogIndex = 0
        var snapshotTerm: Term = 0
    }
    private var groups: [GroupDisk]
    /// Each segment's highest entry index of each group (0: none, or void since a leader's snapshot
    /// replaced that group's log): a segment can go once every group's snapshot covers it.
    private var segments: [(seq: UInt64, maxIndex: [LogIndex])] = []
    private var fd: Int32 = -1
    /// The data directory's lock (`LOCK`), held for the life of this value.
    private var lockFD: Int32 = -1
    private var writeOffset = 0
    /// Staged since the last commit: the framed records, whether any must be synced, each group's
    /// newest staged hard state and highest staged entry.
    private var staged: [UInt8] = []
    private var stagedMustSync = false
    private var stagedHardStates: [Int: HardState] = [:]
    private var stagedMaxIndex: [Int: LogIndex] = [:]
    private var stagedEntries = 0
    public private(set) var stats = StorageStats()

    private init(options: StorageOptions) {
        self.options = options
        walDir = options.directory + "/wal"
        groups = (0..<max(1, options.groups)).map { GroupDisk(snapDir: GroupLayout.directory(options.directory, group: $0) + "/snap") }
    }

    deinit {
        if fd >= 0 { close(fd) }
        if lockFD >= 0 { close(lockFD) }
    }

    public var groupCount: Int { groups.count }

    /// Recovers what the directory holds, every group's. The group count is checked against the
    /// directory's (`GroupLayout.claim`) once it is locked, before anything is made. Each group's
    /// snapshot state is handed to `snapshotChunk` one chunk at a time as the file is read (and
    /// checked); `Recovered.snapshot` carries its index and term, not its data.
    public static func open(_ options: StorageOptions, snapshotChunk: (_ group: Int, [UInt8]) throws -> Void)
        throws(StorageError) -> (DiskStorage, [Recovered]) {
        let s = DiskStorage(options: options)
        let recovered = try s.recover(snapshotChunk: snapshotChunk)
        return (s, recovered)
    }

    /// One group's directory (tests, and stores made before groups).
    public static func open(_ options: StorageOptions, snapshotChunk: ([UInt8]) throws -> Void = { _ in })
        throws(StorageError) -> (DiskStorage, Recovered) {
        let (s, r) = try open(options) { (_: Int, chunk: [UInt8]) in try snapshotChunk(chunk) }
        return (s, r[0])
    }

    // MARK: Writing

    /// Stages a group's entries and hard state for the next `commit`. Nothing is written yet; the
    /// caller must not act on them (answer a vote, acknowledge an append, apply) before the commit.
    /// A sync is needed when the batch holds entries or a new term or vote: a hard state whose term
    /// and vote are unchanged only moved the commit index, which a restart learns again from the
    /// leader (etcd's MustSync); it reaches the disk with the next sync.
    public func stage(group: Int = 0, hardState hs: HardState?, entries: [Entry]) {
        let known = stagedHardStates[group] ?? groups[group].hardState
        if !entries.isEmpty || hs.map({ $0.term != known.term || $0.vote != known.vote }) ?? false { stagedMustSync = true }
        for e in entries { staged += GroupRecord(group: group, .entry(e)).walRecord.framed() }
        if let hs {
            staged += GroupRecord(group: group, .hardState(hs)).walRecord.framed()
            stagedHardStates[group] = hs
        }
        if let last = entries.last { stagedMaxIndex[group] = max(stagedMaxIndex[group] ?? 0, last.index) }
        stagedEntries += entries.count
    }

    /// Writes what was staged, every group's, as one write, and syncs it once (in `.fdatasync`
    /// mode, when any of it must be durable): the group commit.
    public func commit() throws(StorageError) {
        guard !staged.isEmpty else { return }
        if writeOffset + staged.count > options.segmentBytes && !stagedMaxIndex.isEmpty { try startSegment() }
        try FileIO.pwriteAll(fd, staged, at: writeOffset, path: currentPath)
        try crashPoint("save.written")
        writeOffset += staged.count
        for (g, hs) in stagedHardStates { groups[g].hardState = hs }
        let current = segments.count - 1
        for (g, index) in stagedMaxIndex { segments[current].maxIndex[g] = max(segments[current].maxIndex[g], index) }
        if options.sync == .fdatasync && stagedMustSync { try FileIO.fdatasync(fd, path: currentPath); stats.syncs += 1 }
        stats.batches += 1
        stats.entries += stagedEntries
        stats.bytes += staged.count
        staged.removeAll(keepingCapacity: true)
        stagedMustSync = false
        stagedHardStates.removeAll(keepingCapacity: true)
        stagedMaxIndex.removeAll(keepingCapacity: true)
        stagedEntries = 0
    }

    /// `stage` and `commit` in one: a group's batch written and synced on its own.
    public func save(group: Int = 0, hardState hs: HardState?, entries: [Entry]) throws(StorageError) {
        stage(group: group, hardState: hs, entries: entries)
        try commit()
    }

    /// Where a group's snapshot of (index, term) lives once installed. Thread-safe (a name only).
    public func snapshotPath(group: Int = 0, index: LogIndex, term: Term) -> String {
        Self.snapshotPath(directory: GroupLayout.directory(options.directory, group: group), index: index, term: term)
    }

    /// `directory`: the group's (`GroupLayout.directory`).
    public static func snapshotPath(directory: String, index: LogIndex, term: Term) -> String {
        directory + "/snap/" + hex16(term.value) + "-" + hex16(index.value) + ".snap"
    }

    /// Writes `snapshot.data` as a one-chunk snapshot file and installs it (tests, and states small
    /// enough to hold whole; kvnode writes its snapshots chunk by chunk with `SnapshotFile.Writer`).
    public func saveSnapshot(group: Int = 0, _ snapshot: Snapshot, replacesLog: Bool) throws(StorageError) {
        let w = try SnapshotFile.Writer(path: snapshotPath(group: group, index: snapshot.index, term: snapshot.term),
                                        index: snapshot.index, term: snapshot.term)
        try w.write(snapshot.data.isEmpty ? [] : [snapshot.data])
        try install(group: group, snapshotAt: w.tempPath, index: snapshot.index, term: snapshot.term, replacesLog: replacesLog)
    }

    /// A snapshot file, whole and synced at `tempPath` (by `SnapshotFile.Writer.finish(rename:
    /// false)`), becomes the group's snapshot: renamed into place, marked in the WAL, and the
    /// segments and older snapshot files it makes unnecessary are deleted. `replacesLog`: it came
    /// from the leader, and the group's log before it is void. What other groups staged is
    /// committed first, so that the WAL keeps each group's records in their order.
    public func install(group: Int = 0, snapshotAt tempPath: String, index: LogIndex, term: Term, replacesLog: Bool) throws(StorageError) {
        try commit()
        let path = snapshotPath(group: group, index: index, term: term)
        let snapDir = groups[group].snapDir
        try crashPoint("snapshot.temp-written")
        if tempPath != path { try FileIO.rename(tempPath, path) }
        try crashPoint("snapshot.renamed")
        try FileIO.syncDirectory(snapDir)

        groups[group].snapshotIndex = index
        groups[group].snapshotTerm = term
        let marker = GroupRecord(group: group, .snapshotMarker(index: index, term: term, replacesLog: replacesLog))
        let bytes = marker.walRecord.framed()
        try FileIO.pwriteAll(fd, bytes, at: writeOffset, path: currentPath)
        writeOffset += bytes.count
        if options.sync == .fdatasync { try FileIO.fdatasync(fd, path: currentPath); stats.syncs += 1 }
        try crashPoint("snapshot.marked")
        // The group's entries in every segment so far are void (replaced) or covered up to index.
        if replacesLog { for i in segments.indices { segments[i].maxIndex[group] = 0 } }
        try removeObsoleteSegments()
        try removeOldSnapshots(snapDir, keeping: String(path.dropFirst(snapDir.count + 1)))
    }

    /// A prefix of old segments whose entries every group's snapshot covers.
    private func removeObsoleteSegments() throws(StorageError) {
        var removed = false
        while segments.count > 1, segments[0].maxIndex.indices.allSatisfy({ segments[0].maxIndex[$0] <= groups[$0].snapshotIndex }) {
            try FileIO.remove(segmentPath(segments[0].seq))
            segments.removeFirst()
            removed = true
            try crashPoint("compaction.segment-removed")
        }
        if removed { try FileIO.syncDirectory(walDir) }
    }

    /// Snapshot files: the newest and the one before it.
    private func removeOldSnapshots(_ snapDir: String, keeping newest: String) throws(StorageError) {
        let snaps = try FileIO.list(snapDir).filter { $0.hasSuffix(".snap") && $0 != newest }
        for old in snaps.dropLast(1) {
            try FileIO.remove(snapDir + "/" + old)
            try crashPoint("compaction.snapshot-removed")
        }
        try FileIO.syncDirectory(snapDir)
    }

    /// True when the WAL holds more than `segmentsBeforePurge` segments and this group's entries
    /// are what keeps the oldest: a snapshot of the group through its applied index lets it go
    /// (raft-engine's purge). With one group the snapshot rules alone decide, as before groups.
    public func holdsOldestSegment(_ group: Int) -> Bool {
        groups.count > 1 && segments.count > options.segmentsBeforePurge && segments[0].maxIndex[group] > groups[group].snapshotIndex
    }

    public var segmentCount: Int { segments.count }
    var writeOffsetForTests: Int { writeOffset }

    private var currentPath: String { segmentPath(segments.last!.seq) }
    private func segmentPath(_ seq: UInt64) -> String { walDir + "/" + hex16(seq) + ".wal" }

    /// A new preallocated segment that begins with each group's hard state and the snapshot it
    /// follows. The old segment is synced first (the records in it that only moved a commit index
    /// were not); the new one is built as a temp file and renamed into place, so that a crash
    /// leaves either no new segment or a whole one, never one without the header that holds term
    /// and vote.
    private func startSegment() throws(StorageError) {
        if fd >= 0, options.sync == .fdatasync {
            try FileIO.fdatasync(fd, path: currentPath)
            stats.syncs += 1
        }
        try crashPoint("rollover.old-synced")
        let seq = (segments.last?.seq ?? 0) + 1
        let path = segmentPath(seq)
        let tmp = path + ".tmp"
        let newFD = try FileIO.open(tmp, flags: O_RDWR | O_CREAT | O_TRUNC)
        var header: [UInt8] = []
        for (g, disk) in groups.enumerated() {
            header += GroupRecord(group: g, .hardState(disk.hardState)).walRecord.framed()
            header += GroupRecord(group: g, .snapshotMarker(index: disk.snapshotIndex, term: disk.snapshotTerm, replacesLog: false))
                .walRecord.framed()
        }
        do {
            try FileIO.preallocate(newFD, bytes: options.segmentBytes, path: tmp)
            try FileIO.pwriteAll(newFD, header, at: 0, path: tmp)
            try FileIO.fsync(newFD, path: tmp)
            try crashPoint("rollover.temp-written")
            try FileIO.rename(tmp, path)
            try crashPoint("rollover.renamed")
            try FileIO.syncDirectory(walDir)
        } catch { close(newFD); throw error }
        if fd >= 0 { close(fd) }
        fd = newFD
        writeOffset = header.count
        segments.append((seq, [LogIndex](repeating: 0, count: groups.count)))
    }

    /// Tests only: asked at each step of rollover and compaction where a crash could land; true
    /// stops the operation there with `crashed(at:)`, as a crash of the process would (what was
    /// written stays written; nothing after it happens).
    var crashHookForTests: ((String) -> Bool)?
    static let crashPointOperation = "crash point"
    private func crashPoint(_ name: String) throws(StorageError) {
        if crashHookForTests?(name) == true { throw .io(path: name, operation: Self.crashPointOperation, errno: 0) }
    }

    // MARK: Recovery

    /// One group's replay of the WAL: later hard states replace earlier ones, an entry replaces
    /// the suffix it conflicts with, a snapshot marker drops the entries it covers.
    private struct Replay {
        var hardState = HardState()
        var entries: [Entry] = []

        mutating func take(_ record: StorageRecord, path: String, at i: Int) throws(StorageError) {
            switch record {
            case .hardState(let hs): hardState = hs
            case .entry(let e):
                if let first = entries.first, e.index >= first.index {
                    entries.removeLast(entries.count - Int(e.index.value - first.index.value))
                }
                if let last = entries.last, e.index != last.index + 1 {
                    throw .gap(reason: "\(path) record \(i): entry \(e.index) after entry \(last.index)")
                }
                entries.append(e)
            case .snapshotMarker(let index, _, let replaces):
                if replaces { entries.removeAll() } else { entries.removeAll { $0.index <= index } }
            }
        }
    }

    private func recover(snapshotChunk: (Int, [UInt8]) throws -> Void) throws(StorageError) -> [Recovered] {
        // Before anything is read, cut or deleted: a second process on a live directory must touch nothing.
        try FileIO.makeDirectory(options.directory)
        lockFD = try FileIO.lockExclusive(options.directory + "/LOCK", directory: options.directory)
        // The count before any group's directory is made: a refused start leaves nothing behind.
        try GroupLayout.claim(options.directory, groups: groups.count, groupZeroHasData: try hasData())
        try refuseWALPerGroup()
        try FileIO.makeDirectory(walDir)
        var out = [Recovered](repeating: Recovered(), count: groups.count)
        for g in groups.indices {
            try FileIO.makeDirectory(groups[g].snapDir)
            (out[g].snapshot, out[g].snapshotPath) = try loadSnapshot(groups[g].snapDir) { try snapshotChunk(g, $0) }
            groups[g].snapshotIndex = out[g].snapshot.index
            groups[g].snapshotTerm = out[g].snapshot.term
        }

        // A segment still being built when the process died: never renamed into place, never used.
        for tmp in try FileIO.list(walDir) where tmp.hasSuffix(".wal.tmp") { try FileIO.remove(walDir + "/" + tmp) }
        let names = try FileIO.list(walDir).filter { $0.hasSuffix(".wal") }
        var replays = [Replay](repeating: Replay(), count: groups.count)
        var truncated: (path: String, offset: Int, reason: String)?
        var records = 0
        for (n, name) in names.enumerated() {
            let path = walDir + "/" + name
            guard let seq = UInt64(name.dropLast(4), radix: 16) else {
                throw .corrupt(path: path, offset: 0, reason: "a segment name that is not 16 hex digits")
            }
            let bytes = try FileIO.readAll(path)
            let scan = WALScanner.scan(bytes)
            let isLast = n == names.count - 1
            switch scan.end {
            case .clean: break
            case .corrupt(let offset, let reason): throw .corrupt(path: path, offset: offset, reason: reason)
            case .tornTail(let offset, let reason):
                guard isLast else {
                    throw .corrupt(path: path, offset: offset, reason: "\(reason), in a segment that is not the last")
                }
                let f = try FileIO.open(path, flags: O_RDWR)
                defer { close(f) }
                try FileIO.truncate(f, to: offset, path: path)
                try FileIO.preallocate(f, bytes: options.segmentBytes, path: path)
                try FileIO.fsync(f, path: path)
                truncated = (path, offset, reason)
            }
            var maxIndex = [LogIndex](repeating: 0, count: groups.count)
            for (i, record) in scan.records.enumerated() {
                let decoded: GroupRecord
                do { decoded = try GroupRecord(record) } catch {
                    throw .corrupt(path: path, offset: 0, reason: "record \(i) has a good checksum but does not decode: \(error)")
                }
                let g = decoded.group
                guard g < groups.count else {
                    throw .corrupt(path: path, offset: 0, reason: "record \(i) belongs to group \(g), and the directory holds \(groups.count)")
                }
                try replays[g].take(decoded.record, path: path, at: i)
                switch decoded.record {
                case .entry(let e): maxIndex[g] = max(maxIndex[g], e.index)
                case .snapshotMarker(_, _, true):
                    // The group's entries in the segments before this one are void.
                    for k in segments.indices { segments[k].maxIndex[g] = 0 }
                    maxIndex[g] = 0
                default: break
                }
            }
            records += scan.records.count
            segments.append((seq, maxIndex))
            // After the last whole record (a torn one, cut off above, began there too).
            if isLast { writeOffset = scan.validLength }
        }
        for g in groups.indices {
            out[g].entries = try align(replays[g].entries, to: out[g].snapshot)
            out[g].hardState = replays[g].hardState
            out[g].truncated = truncated
            out[g].segments = segments.count
            out[g].records = records
            groups[g].hardState = replays[g].hardState
        }
        if segments.isEmpty {
            try startSegment()
        } else {
            fd = try FileIO.open(currentPath, flags: O_RDWR)
        }
        return out
    }

    /// A build before the shared WAL kept one for each group g > 0 in `group-g/wal`: reading only
    /// `wal/` would bring those groups back without their term, vote and log.
    private func refuseWALPerGroup() throws(StorageError) {
        for g in 1..<max(1, groups.count) {
            let old = GroupLayout.directory(options.directory, group: g) + "/wal"
            var st = stat()
            guard stat(old, &st) == 0, try FileIO.list(old).contains(where: { $0.hasSuffix(".wal") }) else { continue }
            throw .layout("\(old) holds a WAL of group \(g) as a build before the shared WAL wrote it; this build keeps every "
                          + "group's log in \(walDir) and would start group \(g) without its term, vote and log. Start the node "
                          + "with the build that wrote it, or give it an empty data directory (its data comes back from the other replicas)")
        }
    }

    /// Anything in the WAL or group 0's snapshots: a directory from before `GROUPS` holds one group.
    private func hasData() throws(StorageError) -> Bool {
        for dir in [walDir, groups[0].snapDir] {
            var st = stat()
            guard stat(dir, &st) == 0 else { continue }
            if try FileIO.list(dir).contains(where: { $0.hasSuffix(".wal") || $0.hasSuffix(".snap") }) { return true }
        }
        return false
    }

    /// The entries that continue the snapshot. A log that disagrees with the snapshot at its index
    /// was replaced by it (its marker may not have reached the WAL before a crash).
    private func align(_ entries: [Entry], to snapshot: Snapshot) throws(StorageError) -> [Entry] {
        if let atSnapshot = entries.first(where: { $0.index == snapshot.index }), atSnapshot.term != snapshot.term {
            return []
        }
        let kept = entries.filter { $0.index > snapshot.index }
        if let first = kept.first, first.index != snapshot.index + 1 {
            throw .gap(reason: "the log starts at entry \(first.index) but the snapshot ends at \(snapshot.index)")
        }
        return kept
    }

    private func loadSnapshot(_ snapDir: String, _ consume: ([UInt8]) throws -> Void) throws(StorageError) -> (Snapshot, String?) {
        let names = try FileIO.list(snapDir)
        // Snapshots being built or received when the process died: never renamed into place.
        for tmp in names where tmp.hasSuffix(".tmp") { try FileIO.remove(snapDir + "/" + tmp) }
        let snaps = names.filter { $0.hasSuffix(".snap") }.compactMap { name -> (LogIndex, String)? in
            let parts = name.dropLast(5).split(separator: "-")
            guard parts.count == 2, let index = UInt64(parts[1], radix: 16) else { return nil }
            return (LogIndex(index), name)
        }.sorted { $0.0 < $1.0 }
        guard let newest = snaps.last else { return (Snapshot(), nil) }
        let path = snapDir + "/" + newest.1
        do {
            let meta = try SnapshotFile.read(path, chunk: consume)
            return (Snapshot(index: meta.index, term: meta.term), path)
        } catch let e as StorageError {
            throw e
        } catch {
            throw .corrupt(path: path, offset: 0, reason: "\(error); snapshot files are renamed into place whole, so this is damage")
        }
    }
}

/// 16 lower-case hex digits, zero-padded (segment and snapshot file names sort as numbers).
func hex16(_ value: UInt64) -> String {
    let hex = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 16 - hex.count)) + hex
}
