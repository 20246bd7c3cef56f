import BinaryCodec
/// What a client asks of the store. A request with a (client, seq) is applied once however often it
/// is retried (Raft dissertation §6.3); an anonymous one has no session and is applied each time
/// it reaches the log.
public enum KVCommand: Hashable, Sendable {
    case put(key: String, value: String)
    case get(key: String)
    case delete(key: String)
    /// Sets `key` to `value` if it currently holds `expected` (nil: absent).
    case cas(key: String, expected: String?, value: String)
    /// Puts every pair, atomically.
    case mput([KeyValue])

    /// The keys it touches.
    public var keys: [String] {
        switch self {
        case .put(let k, _), .get(let k), .delete(let k), .cas(let k, _, _): return [k]
        case .mput(let pairs): return pairs.map(\.key)
        }
    }
}

public struct KeyValue: Hashable, Sendable {
    public var key: String
    public var value: String
    public init(key: String, value: String) { self.key = key; self.value = value }
}

public struct KVRequest: Hashable, Sendable {
    /// Empty: anonymous (see `anonymous(_:)`).
    public var client: String
    public var seq: UInt64
    public var command: KVCommand
    public init(client: String, seq: UInt64, command: KVCommand) { self.client = client; self.seq = seq; self.command = command }

    /// A request with no session: nothing on any replica remembers it, so nothing can mistake a
    /// later one for its retry (a per-process counter did, once the process restarted).
    public static func anonymous(_ command: KVCommand) -> KVRequest { KVRequest(client: "", seq: 0, command: command) }
    public var isAnonymous: Bool { client.isEmpty }

    /// The bytes of a log entry.
    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.byte(1)  // format version
        w.string(client)
        w.uint(seq)
        switch command {
        case .put(let k, let v): w.byte(1); w.string(k); w.string(v)
        case .get(let k): w.byte(2); w.string(k)
        case .delete(let k): w.byte(3); w.string(k)
        case .cas(let k, let e, let v): w.byte(4); w.string(k); w.optionalString(e); w.string(v)
        case .mput(let pairs):
            w.byte(5)
            w.uint(UInt64(pairs.count))
            for p in pairs { w.string(p.key); w.string(p.value) }
        }
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        let version = try r.byte()
        guard version == 1 else { throw DecodeError("unknown request format \(version)") }
        client = try r.string()
        seq = try r.uint()
        switch try r.byte() {
        case 1: command = .put(key: try r.string(), value: try r.string())
        case 2: command = .get(key: try r.string())
        case 3: command = .delete(key: try r.string())
        case 4: command = .cas(key: try r.string(), expected: try r.optionalString(), value: try r.string())
        case 5:
            let n = try r.count(max: bytes.count)
            var pairs: [KeyValue] = []
            for _ in 0..<n { pairs.append(KeyValue(key: try r.string(), value: try r.string())) }
            command = .mput(pairs)
        case let t: throw DecodeError("unknown command \(t)")
        }
        guard r.atEnd else { throw DecodeError("\(bytes.count - r.position) trailing bytes") }
    }
}

/// What applying a request gave. A retried request gets the first answer again.
public enum KVResult: Hashable, Sendable, CustomStringConvertible {
    case ok
    /// A get's value (nil: absent).
    case value(String?)
    /// A cas that found another value (nil: absent); nothing changed.
    case casFailed(current: String?)
    /// A request older than the client's latest: the client has moved on, and its answer is gone.
    case staleSequence(latest: UInt64)
    /// An entry that is not a request this machine knows (every replica refuses it alike).
    case invalid(String)
    /// The client has no session, and sessions have expired: `seq` (above 1) may be the retry of a
    /// write applied before its session went. Not applied; the client starts over with a new id.
    case sessionExpired(seq: UInt64)
    /// The client's latest seq came again with another command: not a retry, so not applied.
    case sequenceConflict(seq: UInt64)
    /// A delete: whether the key held a value.
    case deleted(existed: Bool)

    public var description: String {
        switch self {
        case .ok: return "ok"
        case .value(let v): return v.map { "value \"\($0)\"" } ?? "absent"
        case .casFailed(let c): return "cas failed (current: \(c.map { "\"\($0)\"" } ?? "absent"))"
        case .staleSequence(let l): return "stale sequence (latest \(l))"
        case .invalid(let why): return "invalid entry: \(why)"
        case .sessionExpired(let seq): return "session expired (seq \(seq))"
        case .sequenceConflict(let seq): return "seq \(seq) already used for another command"
        case .deleted(let existed): return existed ? "deleted" : "deleted (was absent)"
        }
    }
}
