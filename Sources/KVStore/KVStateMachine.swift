import BinaryCodec
/// The replicated store's state machine: a map of strings and, per client, its latest request's
/// sequence number and answer. Pure and deterministic: replicas that apply the same entries hold
/// the same state and give the same answers. The session table is part of the snapshot, so that a
/// retry after a snapshot install or a restart is still recognised.
public struct KVStateMachine: Hashable, Sendable {
    public struct Session: Hashable, Sendable {
        public var seq: UInt64
        public var result: KVResult
        /// The index of the entry that last used it.
        public var lastIndex: UInt64 = 0
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
        sessions[r.client] = Session(seq: r.seq, result: result, lastIndex: applied)
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

    /// The whole snapshot as one byte array: its chunks (`SnapshotChunks`), each length-prefixed.
    /// For small stores and the simulator; kvnode writes and sends the chunks one at a time.
    public func snapshot() -> [UInt8] {
        var w = ByteWriter()
        for chunk in SnapshotChunks(self) { w.data(chunk) }
        return w.bytes
    }

    public init(snapshot bytes: [UInt8]) throws {
        // Format 1 (one blob, before chunks) starts with its version byte; format 2 with the
        // header chunk's length, which is at least 4.
        if bytes.first == 1 { try self.init(legacySnapshot: bytes); return }
        var r = ByteReader(bytes)
        var assembler = SnapshotAssembler()
        while !r.atEnd { try assembler.add(try r.data()) }
        self = try assembler.finish()
    }

    /// Format 1, as data directories written before chunked snapshots hold it.
    private init(legacySnapshot bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        _ = try r.byte()
        applied = try r.uint()
        for _ in 0..<(try r.count(max: bytes.count)) {
            let k = try r.string()
            data[k] = try r.string()
        }
        for _ in 0..<(try r.count(max: bytes.count)) {
            let c = try r.string()
            let seq = try r.uint()
            sessions[c] = Session(seq: seq, result: try Self.decodeResult(&r), lastIndex: applied)
        }
        guard r.atEnd else { throw DecodeError("\(bytes.count - r.position) trailing bytes in snapshot") }
    }

    mutating func restoreApplied(_ index: UInt64) { applied = index }
    mutating func restoreKey(_ key: String, _ value: String) { data[key] = value }
    mutating func restoreSession(_ client: String, _ session: Session) { sessions[client] = session }

    static func encode(_ result: KVResult, _ w: inout ByteWriter) {
        switch result {
        case .ok: w.byte(0)
        case .value(let v): w.byte(1); w.optionalString(v)
        case .casFailed(let c): w.byte(2); w.optionalString(c)
        case .staleSequence(let l): w.byte(3); w.uint(l)
        case .invalid(let why): w.byte(4); w.string(why)
        }
    }

    static func decodeResult(_ r: inout ByteReader) throws -> KVResult {
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
