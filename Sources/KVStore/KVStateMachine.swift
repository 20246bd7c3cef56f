import BinaryCodec
/// The replicated store's state machine: a map of strings and, per client, its latest request's
/// sequence number and answer. Pure and deterministic: replicas that apply the same entries hold
/// the same state and give the same answers. The session table is part of the snapshot, so that a
/// retry after a snapshot install or a restart is still recognised.
public struct KVStateMachine: Hashable, Sendable {
    public struct Session: Hashable, Sendable {
        public var seq: UInt64
        public var result: KVResult
    }

    public private(set) var data: [String: String] = [:]
    public private(set) var sessions: [String: Session] = [:]
    /// The index of the last entry applied (or of the snapshot restored).
    public private(set) var applied: UInt64 = 0

    public init() {}

    /// Applies the log entry at `index`; an empty entry is a leader's no-op.
    public mutating func apply(index: UInt64, _ bytes: [UInt8]) -> (request: KVRequest?, result: KVResult) {
        precondition(index > applied, "entry \(index) applied after \(applied)")
        applied = index
        guard !bytes.isEmpty else { return (nil, .ok) }
        let request: KVRequest
        do { request = try KVRequest(decoding: bytes) } catch { return (nil, .invalid("\(error)")) }
        return (request, apply(request))
    }

    mutating func apply(_ r: KVRequest) -> KVResult {
        if r.isAnonymous { return execute(r.command) }
        if let s = sessions[r.client] {
            if r.seq == s.seq { return s.result }  // a retry: the first answer, applied once
            if r.seq < s.seq { return .staleSequence(latest: s.seq) }
        }
        let result = execute(r.command)
        sessions[r.client] = Session(seq: r.seq, result: result)
        return result
    }

    /// A read outside the log (after ReadIndex, or a stale local read).
    public func get(_ key: String) -> String? { data[key] }

    private mutating func execute(_ c: KVCommand) -> KVResult {
        switch c {
        case .put(let k, let v): data[k] = v; return .ok
        case .get(let k): return .value(data[k])
        case .delete(let k): data[k] = nil; return .ok
        case .cas(let k, let expected, let v):
            guard data[k] == expected else { return .casFailed(current: data[k]) }
            data[k] = v
            return .ok
        case .mput(let pairs):
            for p in pairs { data[p.key] = p.value }
            return .ok
        }
    }

    // MARK: Snapshot

    /// The state as bytes, keys in order so that equal states give equal snapshots.
    public func snapshot() -> [UInt8] {
        var w = ByteWriter()
        w.byte(1)
        w.uint(applied)
        w.uint(UInt64(data.count))
        for k in data.keys.sorted() { w.string(k); w.string(data[k]!) }
        w.uint(UInt64(sessions.count))
        for c in sessions.keys.sorted() {
            let s = sessions[c]!
            w.string(c)
            w.uint(s.seq)
            Self.encode(s.result, &w)
        }
        return w.bytes
    }

    public init(snapshot bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        let version = try r.byte()
        guard version == 1 else { throw DecodeError("unknown snapshot format \(version)") }
        applied = try r.uint()
        for _ in 0..<(try r.count(max: bytes.count)) {
            let k = try r.string()
            data[k] = try r.string()
        }
        for _ in 0..<(try r.count(max: bytes.count)) {
            let c = try r.string()
            let seq = try r.uint()
            sessions[c] = Session(seq: seq, result: try Self.decodeResult(&r))
        }
        guard r.atEnd else { throw DecodeError("\(bytes.count - r.position) trailing bytes in snapshot") }
    }

    private static func encode(_ result: KVResult, _ w: inout ByteWriter) {
        switch result {
        case .ok: w.byte(0)
        case .value(let v): w.byte(1); w.optionalString(v)
        case .casFailed(let c): w.byte(2); w.optionalString(c)
        case .staleSequence(let l): w.byte(3); w.uint(l)
        case .invalid(let why): w.byte(4); w.string(why)
        }
    }

    private static func decodeResult(_ r: inout ByteReader) throws -> KVResult {
        switch try r.byte() {
        case 0: return .ok
        case 1: return .value(try r.optionalString())
        case 2: return .casFailed(current: try r.optionalString())
        case 3: return .staleSequence(latest: try r.uint())
        case 4: return .invalid(try r.string())
        case let t: throw DecodeError("unknown result tag \(t)")
        }
    }
}
