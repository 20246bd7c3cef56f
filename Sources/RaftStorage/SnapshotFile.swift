import BinaryCodec
import Raft
import WAL
#if canImport(Glibc)
import Glibc
#endif

/// A snapshot file, `snap/TERM-INDEX.snap`: WAL records, so each carries its length and checksum,
///
///     header (index, term) · chunk · chunk · ... · end (chunk count)
///
/// written and read one chunk at a time, so that its size is bounded by the disk, not by memory
/// or by a record's size. Files of format 1 (one record holding the whole state) are still read.
public enum SnapshotFile {
    enum Tag: UInt8 { case legacyWhole = 4, header = 5, chunk = 6, end = 7 }

    /// What the file is of.
    public struct Meta: Hashable, Sendable {
        public var index: LogIndex
        public var term: Term
        /// Format 1: its one "chunk" is the whole state in the store's format 1.
        public var legacy = false
        public var chunks = 0
        public var bytes = 0
    }

    /// Builds a snapshot file at a temp path beside `path`; `finish` makes it whole and durable
    /// (end record, fsync, rename, directory fsync). Not tied to any thread: the node writes its own
    /// snapshots on a worker and receives a leader's on the connection that brings it; used by one
    /// thread at a time.
    public final class Writer: @unchecked Sendable {
        public let path: String
        public let tempPath: String
        public let index: LogIndex
        public let term: Term
        private var fd: Int32
        private var offset = 0
        private var chunks = 0

        /// `tempSuffix` tells apart files being built by different writers of the same snapshot.
        public init(path: String, index: LogIndex, term: Term, tempSuffix: String = ".tmp") throws(StorageError) {
            self.path = path
            self.index = index
            self.term = term
            tempPath = path + tempSuffix
            fd = try FileIO.open(tempPath, flags: O_WRONLY | O_CREAT | O_TRUNC)
            var w = ByteWriter()
            w.uint(index.value)
            w.uint(term.value)
            try write(WALRecord(type: Tag.header.rawValue, payload: w.bytes))
        }

        deinit { if fd >= 0 { close(fd) } }

        public func append(_ chunk: [UInt8]) throws(StorageError) {
            try write(WALRecord(type: Tag.chunk.rawValue, payload: chunk))
            chunks += 1
        }

        /// The bytes written so far.
        public var size: Int { offset }

        /// Ends the file, syncs it, and renames it to `path` (or leaves it at `tempPath`, synced,
        /// when `rename` is false: a received snapshot waits there until Raft takes it).
        public func finish(rename: Bool = true) throws(StorageError) {
            var w = ByteWriter()
            w.uint(UInt64(chunks))
            try write(WALRecord(type: Tag.end.rawValue, payload: w.bytes))
            try FileIO.fsync(fd, path: tempPath)
            close(fd)
            fd = -1
            if rename {
                try FileIO.rename(tempPath, path)
                try FileIO.syncDirectory(FileIO.parentDirectory(path))
            }
        }

        /// Appends every chunk and finishes without the rename (the caller installs the file), or
        /// removes the temp file and rethrows: one way to write a whole snapshot, wherever it comes from.
        public func write(_ chunks: some Sequence<[UInt8]>) throws(StorageError) {
            do {
                for chunk in chunks { try append(chunk) }
                try finish(rename: false)
            } catch {
                discard()
                throw error
            }
        }

        /// Gives up: the temp file goes.
        public func discard() {
            if fd >= 0 { close(fd); fd = -1 }
            try? FileIO.remove(tempPath)
        }

        private func write(_ record: WALRecord) throws(StorageError) {
            let bytes = record.framed()
            try FileIO.pwriteAll(fd, bytes, at: offset, path: tempPath)
            offset += bytes.count
        }
    }

    /// Removes a snapshot file that will not be used (a received one Raft did not take).
    public static func discard(_ path: String) { try? FileIO.remove(path) }

    /// Reads the file record by record, handing each chunk to `chunk` (one in memory at a time).
    /// Anything but a whole file (header, chunks, end with their count) is an error naming the
    /// offset: snapshot files are renamed into place whole, so this is damage.
    @discardableResult
    public static func read(_ path: String, chunk: ([UInt8]) throws -> Void) throws -> Meta {
        let fd = try FileIO.open(path, flags: O_RDONLY)
        defer { close(fd) }
        var offset = 0
        func next() throws -> WALRecord? {
            let header = try FileIO.pread(fd, count: 8, at: offset, path: path)
            if header.isEmpty { return nil }
            guard header.count == 8 else { throw StorageError.corrupt(path: path, offset: offset, reason: "a record header cut short") }
            let length = Int(WALRecord.readLE(header, at: 0))
            guard length >= 1, length <= WALRecord.maxBodySize else {
                throw StorageError.corrupt(path: path, offset: offset, reason: "a record length of \(length) bytes")
            }
            let body = try FileIO.pread(fd, count: length, at: offset + 8, path: path)
            guard body.count == length else { throw StorageError.corrupt(path: path, offset: offset, reason: "a record cut short") }
            guard CRC32C.checksum(body) == WALRecord.readLE(header, at: 4) else {
                throw StorageError.corrupt(path: path, offset: offset, reason: "a checksum mismatch")
            }
            defer { offset += 8 + length }
            return WALRecord(type: body[0], payload: Array(body.dropFirst()))
        }
        func corrupt(_ why: String) -> StorageError { .corrupt(path: path, offset: offset, reason: why) }

        guard let first = try next() else { throw corrupt("an empty snapshot file") }
        var r = ByteReader(first.payload)
        var meta = Meta(index: LogIndex(try r.uint()), term: Term(try r.uint()))
        switch Tag(rawValue: first.type) {
        case .legacyWhole:
            let data = try r.data()
            try r.expectEnd()
            meta.legacy = true
            meta.chunks = 1
            meta.bytes = data.count
            guard try next() == nil else { throw corrupt("records after a format-1 snapshot") }
            try chunk(data)
            return meta
        case .header:
            try r.expectEnd()
        default:
            throw corrupt("record type \(first.type) where a snapshot header belongs")
        }
        while let record = try next() {
            switch Tag(rawValue: record.type) {
            case .chunk:
                meta.chunks += 1
                meta.bytes += record.payload.count
                try chunk(record.payload)
            case .end:
                var e = ByteReader(record.payload)
                let count = try e.uint()
                try e.expectEnd()
                guard count == UInt64(meta.chunks) else { throw corrupt("the end record counts \(count) chunks, the file holds \(meta.chunks)") }
                guard try next() == nil else { throw corrupt("records after the end record") }
                return meta
            default:
                throw corrupt("record type \(record.type) inside a snapshot")
            }
        }
        throw corrupt("no end record after \(meta.chunks) chunks: the file is incomplete")
    }
}
