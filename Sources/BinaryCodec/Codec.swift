/// A small binary encoding for log entries, snapshots, WAL records and peer messages: unsigned LEB128 integers and
/// length-prefixed UTF-8 strings. Deterministic (the same value gives the same bytes on every
/// replica) and strict: a truncated or malformed record is an error, never a guess.
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []
    public init() {}

    public mutating func uint(_ v: UInt64) {
        var v = v
        repeat {
            var b = UInt8(v & 0x7F)
            v >>= 7
            if v != 0 { b |= 0x80 }
            bytes.append(b)
        } while v != 0
    }

    public mutating func byte(_ b: UInt8) { bytes.append(b) }

    public mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        uint(UInt64(utf8.count))
        bytes += utf8
    }

    public mutating func optionalString(_ s: String?) {
        if let s { byte(1); string(s) } else { byte(0) }
    }

    /// Length-prefixed raw bytes.
    public mutating func data(_ d: [UInt8]) {
        uint(UInt64(d.count))
        bytes += d
    }

    public mutating func bool(_ b: Bool) { bytes.append(b ? 1 : 0) }
}

public struct DecodeError: Error, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

public struct ByteReader {
    public let bytes: [UInt8]
    public private(set) var position = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var atEnd: Bool { position == bytes.count }

    public mutating func byte() throws -> UInt8 {
        guard position < bytes.count else { throw DecodeError("truncated at byte \(position)") }
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func uint() throws -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            guard shift < 64 else { throw DecodeError("integer too long at byte \(position)") }
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
        }
    }

    public mutating func count(max: Int) throws -> Int {
        let n = try uint()
        guard n <= UInt64(max) else { throw DecodeError("length \(n) at byte \(position) exceeds \(max)") }
        return Int(n)
    }

    public mutating func string() throws -> String {
        let n = try count(max: bytes.count)
        guard n <= bytes.count - position else { throw DecodeError("a string of \(n) bytes at byte \(position) runs past the end") }
        defer { position += n }
        guard let s = String(validating: bytes[position..<position + n], as: UTF8.self) else {
            throw DecodeError("invalid UTF-8 at byte \(position)")
        }
        return s
    }

    public mutating func optionalString() throws -> String? {
        switch try byte() {
        case 0: return nil
        case 1: return try string()
        case let t: throw DecodeError("bad optional tag \(t) at byte \(position - 1)")
        }
    }

    public mutating func data() throws -> [UInt8] {
        let n = try count(max: bytes.count)
        guard n <= bytes.count - position else { throw DecodeError("\(n) bytes at byte \(position) run past the end") }
        defer { position += n }
        return Array(bytes[position..<position + n])
    }

    public mutating func bool() throws -> Bool {
        switch try byte() {
        case 0: return false
        case 1: return true
        case let b: throw DecodeError("bad boolean \(b) at byte \(position - 1)")
        }
    }

    /// The rest must have been read: trailing bytes are damage, not data.
    public func expectEnd() throws {
        guard atEnd else { throw DecodeError("\(bytes.count - position) trailing bytes") }
    }
}
