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
    public init(directory: String, sync: SyncMode = .fdatasync, segmentBytes: Int = 64 << 20) {
        self.directory = directory; self.sync = sync; self.segmentBytes = segmentBytes
    }
}

/// What a start found on disk.
public struct Recovered: Sendable {
    public var hardState = HardState()
    /// The newest snapshot's index and term (its state went to the chunk consumer).
    public var snapshot = Snapshot()
    public var snapshotPath: String?
    public var entries: [Entry] = []
    /// A torn final record that was cut off: where, and why it was taken for torn.
    public var truncated: (path: String, offset: Int, reason: String)?
    public var segments = 0
    public var records = 0
}

public struct StorageStats: Sendable {
    /// fdatasync calls for entries and hard state (group commit: many entries share one).
    public var syncs = 0
    public var batches = 0
    public var entries = 0
    public var bytes = 0
}

/// The node's disk: WAL segments `wal/%016x.wal` (records framed by `WALRecord`, preallocated) and
/// snapshot files `snap/%016x-%016x.snap` (term, index), written atomically. Owned by one thread.
///
/// Every segment starts with the hard state and the snapshot it follows, so the segments behind a
/// snapshot can be deleted without losing either.
public final class DiskStorage {
    public let options: StorageOptions
    private let walDir: String
    private let snapDir: String
    private var segments: [(seq: UInt64, maxIndex: LogIndex)] = []
    private var fd: Int32 = -1
    /// The data directory's lock (`LOCK`), held for the life of this value.
    private var lockFD: Int32 = -1
    private var writeOffset = 0
    private var hardState = HardState()
    private var snapshotIndex: LogIndex = 0
    private var snapshotTerm: Term = 0
    public private(set) var stats = StorageStats()

    private init(options: StorageOptions) {
        self.options = options
        walDir = options.directory + "/wal"
        snapDir = options.directory + "/snap"
    }

    deinit {
        if fd >= 0 { close(fd) }
        if lockFD >= 0 { close(lockFD) }
    }

    /// Recovers what the directory holds. The snapshot's state is handed to `snapshotChunk` one
    /// chunk at a time as the file is read (and checked); `Recovered.snapshot` carries its index
    /// and term, not its data.
    public static func open(_ options: StorageOptions, snapshotChunk: ([UInt8]) throws -> Void = { _ in })
        throws(StorageError) -> (DiskStorage, Recovered) {
        let s = DiskStorage(options: options)
        let recovered = try s.recover(snapshotChunk: snapshotChunk)
        return (s, recovered)
    }

    // MARK: Writing

    /// Appends entries and the hard state as one write and (in `.fdatasync` mode) one sync: the
    /// group commit, since every request that arrived meanwhile is in the same Ready. The sync is
    /// skipped when nothing in the batch must be durable before it is acted on: a hard state whose
    /// term and vote are unchanged only moved the commit index, which a restart learns again from
    /// the leader (etcd's MustSync). It reaches the disk with the next sync.
    public func save(hardState hs: HardState?, entries: [Entry]) throws(StorageError) {
        let mustSync = !entries.isEmpty || hs.map { $0.term != hardState.term || $0.vote != hardState.vote } ?? false
        var buffer: [UInt8] = []
        for e in entries { buffer += StorageRecord.entry(e).walRecord.framed() }
        if let hs { buffer += StorageRecord.hardState(hs).walRecord.framed() }
        guard !buffer.isEmpty else { return }
        if writeOffset + buffer.count > options.segmentBytes && !entries.isEmpty { try startSegment() }
        try FileIO.pwriteAll(fd, buffer, at: writeOffset, path: currentPath)
        try crashPoint("save.written")
        writeOffset += buffer.count
        if let hs { hardState = hs }
        if let last = entries.last { segments[segments.count - 1].maxIndex = max(segments[segments.count - 1].maxIndex, last.index) }
        if options.sync == .fdatasync && mustSync { try FileIO.fdatasync(fd, path: currentPath); stats.syncs += 1 }
        stats.batches += 1
        stats.entries += entries.count
        stats.bytes += buffer.count
    }

    /// Where the snapshot of (index, term) lives once installed. Thread-safe (a name only).
    public func snapshotPath(index: LogIndex, term: Term) -> String {
        Self.snapshotPath(directory: options.directory, index: index, term: term)
    }

    public static func snapshotPath(directory: String, index: LogIndex, term: Term) -> String {
        directory + "/snap/" + hex16(term.value) + "-" + hex16(index.value) + ".snap"
    }

    /// Writes `snapshot.data` as a one-chunk snapshot file and installs it (tests, and states small
    /// enough to hold whole; kvnode writes its snapshots chunk by chunk with `SnapshotFile.Writer`).
    public func saveSnapshot(_ snapshot: Snapshot, replacesLog: Bool) throws(StorageError) {
        let w = try SnapshotFile.Writer(path: snapshotPath(index: snapshot.index, term: snapshot.term),
                                        index: snapshot.index, term: snapshot.term)
        try w.write(snapshot.data.isEmpty ? [] : [snapshot.data])
        try install(snapshotAt: w.tempPath, index: snapshot.index, term: snapshot.term, replacesLog: replacesLog)
    }

    /// A snapshot file, whole and synced at `tempPath` (by `SnapshotFile.Writer.finish(rename:
    /// false)`), becomes this node's snapshot: renamed into place, marked in the WAL, and the
    /// segments and older snapshot files it makes unnecessary are deleted. `replacesLog`: it came
    /// from the leader, and the log before it is void.
    public func install(snapshotAt tempPath: String, index: LogIndex, term: Term, replacesLog: Bool) throws(StorageError) {
        let path = snapshotPath(index: index, term: term)
        try crashPoint("snapshot.temp-written")
        if tempPath != path { try FileIO.rename(tempPath, path) }
        try crashPoint("snapshot.renamed")
        try FileIO.syncDirectory(snapDir)

        snapshotIndex = index
        snapshotTerm = term
        let marker = StorageRecord.snapshotMarker(index: index, term: term, replacesLog: replacesLog)
        let bytes = marker.walRecord.framed()
        try FileIO.pwriteAll(fd, bytes, at: writeOffset, path: currentPath)
        writeOffset += bytes.count
        if options.sync == .fdatasync { try FileIO.fdatasync(fd, path: currentPath); stats.syncs += 1 }
        try crashPoint("snapshot.marked")
        try removeObsolete(through: index, replacesLog: replacesLog, keeping: String(path.dropFirst(snapDir.count + 1)))
    }

    private func removeObsolete(through index: LogIndex, replacesLog: Bool, keeping newest: String) throws(StorageError) {
        // A prefix of old segments whose entries the snapshot covers (all old ones if it replaced the log).
        while segments.count > 1, replacesLog || segments[0].maxIndex <= index {
            try FileIO.remove(segmentPath(segments[0].seq))
            segments.removeFirst()
            try crashPoint("compaction.segment-removed")
        }
        // Snapshot files: the newest and the one before it.
        let snaps = try FileIO.list(snapDir).filter { $0.hasSuffix(".snap") && $0 != newest }
        for old in snaps.dropLast(1) {
            try FileIO.remove(snapDir + "/" + old)
            try crashPoint("compaction.snapshot-removed")
        }
        try FileIO.syncDirectory(walDir)
    }

    var writeOffsetForTests: Int { writeOffset }

    private var currentPath: String { segmentPath(segments.last!.seq) }
    private func segmentPath(_ seq: UInt64) -> String { walDir + "/" + hex16(seq) + ".wal" }

    /// A new preallocated segment that begins with the hard state and the snapshot it follows. The
    /// old segment is synced first (the records in it that only moved the commit index were not);
    /// the new one is built as a temp file and renamed into place, so that a crash leaves either no
    /// new segment or a whole one, never one without the header that holds term and vote.
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
        var header = StorageRecord.hardState(hardState).walRecord.framed()
        header += StorageRecord.snapshotMarker(index: snapshotIndex, term: snapshotTerm, replacesLog: false).walRecord.framed()
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
        segments.append((seq, 0))
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

    private func recover(snapshotChunk: ([UInt8]) throws -> Void) throws(StorageError) -> Recovered {
        // Before anything is read, cut or deleted: a second process on a live directory must touch nothing.
        try FileIO.makeDirectory(options.directory)
        lockFD = try FileIO.lockExclusive(options.directory + "/LOCK", directory: options.directory)
        try FileIO.makeDirectory(walDir)
        try FileIO.makeDirectory(snapDir)
        var out = Recovered()
        (out.snapshot, out.snapshotPath) = try loadSnapshot(snapshotChunk)
        snapshotIndex = out.snapshot.index
        snapshotTerm = out.snapshot.term

        // A segment still being built when the process died: never renamed into place, never used.
        for tmp in try FileIO.list(walDir) where tmp.hasSuffix(".wal.tmp") { try FileIO.remove(walDir + "/" + tmp) }
        let names = try FileIO.list(walDir).filter { $0.hasSuffix(".wal") }
        var entries: [Entry] = []
        var lastMarker: LogIndex = 0
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
                out.truncated = (path, offset, reason)
            }
            var maxIndex: LogIndex = 0
            for (i, record) in scan.records.enumerated() {
                let decoded: StorageRecord
                do { decoded = try StorageRecord(record) } catch {
                    throw .corrupt(path: path, offset: 0, reason: "record \(i) has a good checksum but does not decode: \(error)")
                }
                switch decoded {
                case .hardState(let hs): out.hardState = hs
                case .entry(let e):
                    if let first = entries.first, e.index >= first.index {
                        entries.removeLast(entries.count - Int(e.index.value - first.index.value))
                    }
                    if let last = entries.last, e.index != last.index + 1 {
                        throw .gap(reason: "\(path) record \(i): entry \(e.index) after entry \(last.index)")
                    }
                    entries.append(e)
                    maxIndex = max(maxIndex, e.index)
                case .snapshotMarker(let index, _, let replaces):
                    lastMarker = max(lastMarker, index)
                    if replaces { entries.removeAll() } else { entries.removeAll { $0.index <= index } }
                }
            }
            out.records += scan.records.count
            segments.append((seq, maxIndex))
            // After the last whole record (a torn one, cut off above, began there too).
            if isLast { writeOffset = scan.validLength }
        }
        out.entries = try align(entries, to: out.snapshot)
        out.segments = segments.count
        hardState = out.hardState
        if segments.isEmpty {
            try startSegment()
        } else {
            fd = try FileIO.open(currentPath, flags: O_RDWR)
        }
        return out
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

    private func loadSnapshot(_ consume: ([UInt8]) throws -> Void) throws(StorageError) -> (Snapshot, String?) {
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
