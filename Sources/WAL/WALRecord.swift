/// One record of the write-ahead log, framed as
///
///     length: UInt32 LE   (of type + payload)
///     crc:    UInt32 LE   (CRC-32C of type + payload)
///     type:   UInt8
///     payload
///
/// so that a reader can tell a whole record from a torn or damaged one before it uses a byte of it.
public struct WALRecord: Hashable, Sendable {
    public var type: UInt8
    public var payload: [UInt8]
    public init(type: UInt8, payload: [UInt8]) { self.type = type; self.payload = payload }

    static let headerSize = 8
    /// A record larger than this is taken for damage, not data (it bounds what a bad length can make us read).
    public static let maxBodySize = 64 << 20

    public func framed() -> [UInt8] {
        precondition(payload.count < Self.maxBodySize, "WAL record of \(payload.count) bytes exceeds \(Self.maxBodySize)")
        var body = [type]
        body += payload
        var out: [UInt8] = []
        out.reserveCapacity(Self.headerSize + body.count)
        Self.appendLE(UInt32(body.count), to: &out)
        Self.appendLE(CRC32C.checksum(body), to: &out)
        return out + body
    }

    public static func appendLE(_ v: UInt32, to out: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }

    public static func readLE(_ bytes: [UInt8], at i: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[i + $1]) << UInt32(8 * $1) }
    }
}

/// What a scan of a WAL file found after its last whole record.
public enum WALEnd: Hashable, Sendable {
    /// The file ends with a whole record (or with zeros: space allocated, never written).
    case clean
    /// The last record was cut short by the end of the file, or fails its checksum with a sector of
    /// it still zero, and no whole record follows it anywhere: a write that a crash cut short, never
    /// synced, never acknowledged. Truncate at `offset`.
    case tornTail(offset: Int, reason: String)
    /// Anything else: a damaged length, a checksum failure with every sector written, a bad record
    /// with a whole record after it. Records after it may be synced and acknowledged, so cutting
    /// there could lose them: refuse to start.
    case corrupt(offset: Int, reason: String)
}

public enum WALScanner {
    /// Disks write whole sectors: a write cut by a crash leaves some of a record's sectors as they
    /// were, zero in a preallocated segment (etcd's torn-write test uses the same unit).
    public static let sectorSize = 512

    /// The whole records from the start of `bytes`, and how the file ends.
    public static func scan(_ bytes: [UInt8]) -> (records: [WALRecord], validLength: Int, end: WALEnd) {
        var records: [WALRecord] = []
        var i = 0
        while i < bytes.count {
            // Zeros where a record would start: space allocated and never written (checked only
            // there, so that a scan stays linear).
            if bytes[i] == 0, isZero(bytes, from: i) { return (records, i, .clean) }
            guard bytes.count - i >= WALRecord.headerSize else {
                return (records, i, .tornTail(offset: i, reason: "a header cut short (\(bytes.count - i) of 8 bytes)"))
            }
            let length = Int(WALRecord.readLE(bytes, at: i))
            let crc = WALRecord.readLE(bytes, at: i + 4)
            let bodyStart = i + WALRecord.headerSize
            guard length >= 1, length <= WALRecord.maxBodySize else {
                // A torn write leaves a header whole or zero, never a wrong length. A zero header
                // with bytes after it: the disk wrote a later sector of the last write and not this
                // one, a torn tail if no whole record follows.
                if length == 0 && crc == 0 { return (records, i, tornIfNothingFollows(bytes, at: i, "a header never written")) }
                return (records, i, .corrupt(offset: i, reason: "a record length of \(length) bytes at byte \(i)"))
            }
            guard bytes.count - bodyStart >= length else {
                let what = "a record of \(length) bytes cut short at \(bytes.count - bodyStart)"
                return (records, i, tornIfNothingFollows(bytes, at: i, what))
            }
            let body = bytes[bodyStart..<bodyStart + length]
            guard CRC32C.checksum(body) == crc else {
                let end = bodyStart + length
                if end < bytes.count, !isZero(bytes, from: end) {
                    return (records, i, .corrupt(offset: i, reason: "a checksum mismatch at byte \(i), with \(bytes.count - end) bytes of records after it"))
                }
                guard let zero = zeroSector(bytes, from: i, to: end) else {
                    return (records, i, .corrupt(offset: i, reason: "a checksum mismatch at byte \(i) in a record whose every sector was written"))
                }
                return (records, i, tornIfNothingFollows(bytes, at: i, "a checksum mismatch, with the sector at byte \(zero) still zero"))
            }
            records.append(WALRecord(type: body.first!, payload: Array(body.dropFirst())))
            i = bodyStart + length
        }
        return (records, i, .clean)
    }

    /// A bad record at `offset` is a torn tail only if no whole record starts anywhere after it: a
    /// damaged length can claim the records behind it, and those may have been synced.
    private static func tornIfNothingFollows(_ bytes: [UInt8], at offset: Int, _ what: String) -> WALEnd {
        if let next = wholeRecord(in: bytes, after: offset) {
            return .corrupt(offset: offset, reason: "\(what) at byte \(offset), with a whole record at byte \(next) after it")
        }
        return .tornTail(offset: offset, reason: what)
    }

    /// The first offset after `offset` where a whole record (length in range, inside the file,
    /// checksum good) starts. Only on the damaged path; bounded by the last non-zero byte.
    static func wholeRecord(in bytes: [UInt8], after offset: Int) -> Int? {
        guard let lastNonZero = bytes.lastIndex(where: { $0 != 0 }) else { return nil }
        var j = offset + 1
        while j <= lastNonZero, j + WALRecord.headerSize < bytes.count {
            let length = Int(WALRecord.readLE(bytes, at: j))
            let bodyStart = j + WALRecord.headerSize
            if length >= 1, length <= WALRecord.maxBodySize, bodyStart + length <= bytes.count,
               CRC32C.checksum(bytes[bodyStart..<bodyStart + length]) == WALRecord.readLE(bytes, at: j + 4) {
                return j
            }
            j += 1
        }
        return nil
    }

    /// The start of the first part of [start, end) that is one disk sector's share of the span and
    /// all zeros, if any (etcd's isTornEntry). A share shorter than `minZeroShare` does not count:
    /// a few zero bytes at a record's edge are as likely data (a commit index of 0) as a sector the
    /// disk never wrote, and taking a damaged synced record for torn would cut it.
    static let minZeroShare = 64

    static func zeroSector(_ bytes: [UInt8], from start: Int, to end: Int) -> Int? {
        var chunk = start
        while chunk < end {
            let next = min(end, (chunk / sectorSize + 1) * sectorSize)
            if next - chunk >= minZeroShare, bytes[chunk..<next].allSatisfy({ $0 == 0 }) { return chunk }
            chunk = next
        }
        return nil
    }

    /// Whether everything from `start` on is zero: 8 bytes at a time, since a preallocated
    /// segment is mostly zeros and this runs on every start.
    static func isZero(_ bytes: [UInt8], from start: Int) -> Bool {
        bytes.withUnsafeBytes { raw in
            var i = start
            while i + 8 <= raw.count {
                if raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) != 0 { return false }
                i += 8
            }
            while i < raw.count {
                if raw[i] != 0 { return false }
                i += 1
            }
            return true
        }
    }
}
