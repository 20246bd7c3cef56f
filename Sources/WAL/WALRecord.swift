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

    static func appendLE(_ v: UInt32, to out: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }

    static func readLE(_ bytes: [UInt8], at i: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[i + $1]) << UInt32(8 * $1) }
    }
}

/// What a scan of a WAL file found after its last whole record.
public enum WALEnd: Hashable, Sendable {
    /// The file ends with a whole record (or with zeros: space allocated, never written).
    case clean
    /// The last record is incomplete or fails its checksum and nothing follows it: a write that a
    /// crash cut short. Truncate at `offset`; nothing after it was ever acknowledged.
    case tornTail(offset: Int, reason: String)
    /// A damaged record with data after it: not a torn write but corruption. Refuse to start.
    case corrupt(offset: Int, reason: String)
}

public enum WALScanner {
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
                return (records, i, damaged(bytes, at: i, next: nil, "a record length of \(length) bytes"))
            }
            guard bytes.count - bodyStart >= length else {
                return (records, i, .tornTail(offset: i, reason: "a record of \(length) bytes cut short at \(bytes.count - bodyStart)"))
            }
            let body = bytes[bodyStart..<bodyStart + length]
            guard CRC32C.checksum(body) == crc else {
                return (records, i, damaged(bytes, at: i, next: bodyStart + length, "a checksum mismatch"))
            }
            records.append(WALRecord(type: body.first!, payload: Array(body.dropFirst())))
            i = bodyStart + length
        }
        return (records, i, .clean)
    }

    /// A bad record is a torn tail only if nothing but zeros follows where it ends.
    private static func damaged(_ bytes: [UInt8], at offset: Int, next: Int?, _ what: String) -> WALEnd {
        if let next, next < bytes.count, !isZero(bytes, from: next) {
            return .corrupt(offset: offset, reason: "\(what) at byte \(offset), with \(bytes.count - next) bytes of records after it")
        }
        if next == nil, bytes.count - offset > WALRecord.headerSize + WALRecord.maxBodySize {
            return .corrupt(offset: offset, reason: "\(what) at byte \(offset), far from the end of the file")
        }
        return .tornTail(offset: offset, reason: what)
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
