import BinaryCodec
/// The replicated store's state machine: a map of strings and, per client, its latest request's
/// sequence number and answer. Pure and deterministic: replicas that apply the same entries hold
/// the same state and give the same answers. The session table is part of the snapshot, so that a
/// retry after a snapshot install or a restart is still recognised.
///
/// Sessions expire by count, the same way on every replica: past `sessionLimit` clients, a new one
/// evicts the session used longest ago (by log index). A request from a client the store does not
/// know, with a seq above 1, once any session has expired, may be the retry of a write applied
/// before its session went: it is refused with `sessionExpired` (the client must start again under
/// a new client_id), never applied a second time. A seq of 1 cannot be told from a new client's
/// first request: a client whose session expired while its first request was unanswered may see
/// that request applied twice (Raft dissertation §6.3 has clients register first for this).
public struct KVStateMachine: Hashable, Sendable {
    public struct Session: Hashable, Sendable {
        public var seq: UInt64
        public var result: KVResult
        /// The index of the entry that last used it.
        public var lastIndex: UInt64 = 0
        /// FNV-1a of the entry the seq carried, so that a retry can be told from a new command
        /// reusing the seq; 0 when unknown (restored from a format-2 snapshot): any is a retry.
        public var digest: UInt64 = 0
    }

    /// FNV-1a 64 of a log entry's bytes (client, seq and command, as `KVRequest.encoded()` makes
    /// them): the same on every replica, and the same for a retry, which repeats the request.
    public static func digest(_ entry: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in entry { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h == 0 ? 1 : h
    }

    /// Sharded, so that a snapshot's copy costs the applying thread one shard at a time.
    public private(set) var data = ShardedMap()
    public private(set) var sessions: [String: Session] = [:]
    /// The index of the last entry applied (or of the snapshot restored).
    public private(set) var applied: UInt64 = 0
    /// The sessions kept (10,000 clients by default; the same on every replica).
    public let sessionLimit: Int
    /// The last-used index of the most recently expired session (0: none has expired).
    public private(set) var expiredThrough: UInt64 = 0
    /// Sessions by when they were last used: (index, client), oldest first. An entry is current if
    /// the client's session still has that index; older ones are skipped (and pruned).
    private var useOrder: [(index: UInt64, client: String)] = []
    private var useHead = 0
    /// Sessions this value has evicted (a counter for reports: not replicated, not in the snapshot).
    public private(set) var evictions = 0
    /// The bytes of every key and value held (UTF-8): what a snapshot of the data weighs.
    public private(set) var dataBytes = 0

    public static let defaultSessionLimit = 10_000

    public init(sessionLimit: Int = defaultSessionLimit) { self.sessionLimit = max(1, sessionLimit) }

    public static func == (a: KVStateMachine, b: KVStateMachine) -> Bool {
        a.applied == b.applied && a.expiredThrough == b.expiredThrough && a.data == b.data && a.sessions == b.sessions
    }

    public func hash(into h: inout Hasher) {
        h.combine(applied); h.combine(expiredThrough); h.combine(data); h.combine(sessions)
    }

    /// Applies the log entry at `index`; an empty entry is a leader's no-op.
    public mutating func apply(index: UInt64, _ bytes: [UInt8]) -> (request: KVRequest?, result: KVResult) {
        precondition(index > applied, "entry \(index) applied after \(applied)")
        applied = index
        guard !bytes.isEmpty else { return (nil, .ok) }
        let request: KVRequest
        do { request = try KVRequest(decoding: bytes) } catch { return (nil, .invalid("\(error)")) }
        return (request, apply(request, digest: Self.digest(bytes)))
    }

    mutating func apply(_ r: KVRequest, digest: UInt64) -> KVResult {
        if r.isAnonymous { return execute(r.command) }
        if let s = sessions[r.client] {
            if r.seq == s.seq {
                // Touched either way, so that the state does not depend on whether this replica
                // knows the digest (one restored from a format-2 snapshot does not).
                touch(r.client)
                // Another command under the same seq is a client's mistake, not a retry: refused.
                if s.digest != 0 && s.digest != digest { return .sequenceConflict(seq: r.seq) }
                return s.result  // a retry: the first answer, applied once
            }
            if r.seq < s.seq { return .staleSequence(latest: s.seq) }
        } else if r.seq > 1 && expiredThrough > 0 {
            return .sessionExpired(seq: r.seq)
        }
        let isNew = sessions[r.client] == nil
        let result = execute(r.command)
        sessions[r.client] = Session(seq: r.seq, result: result, lastIndex: applied, digest: digest)
        useOrder.append((applied, r.client))
        if isNew { expireBeyondLimit() }
        pruneUseOrder()
        return result
    }

    private mutating func touch(_ client: String) {
        sessions[client]!.lastIndex = applied
        useOrder.append((applied, client))
        pruneUseOrder()
    }

    /// Evicts the sessions used longest ago until `sessionLimit` remain.
    private mutating func expireBeyondLimit() {
        while sessions.count > sessionLimit, useHead < useOrder.count {
            let (index, client) = useOrder[useHead]
            useHead += 1
            guard sessions[client]?.lastIndex == index else { continue }  // used again since
            sessions[client] = nil
            expiredThrough = max(expiredThrough, index)
            evictions += 1
        }
    }

    /// Drops stale and consumed entries once they outnumber the live ones: amortized O(1) a use.
    private mutating func pruneUseOrder() {
        guard useOrder.count > 2 * sessions.count + 64 else { return }
        useOrder = useOrder[useHead...].filter { sessions[$0.client]?.lastIndex == $0.index }
        useHead = 0
    }

    /// The use order a restored table implies.
    mutating func rebuildUseOrder() {
        useOrder = sessions.map { ($0.value.lastIndex, $0.key) }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        useHead = 0
    }

    /// A read outside the log (after ReadIndex, or a stale local read).
    public func get(_ key: String) -> String? { data[key] }

    private mutating func execute(_ c: KVCommand) -> KVResult {
        switch c {
        case .put(let k, let v): set(k, v); return .ok
        case .get(let k): return .value(data[k])
        case .delete(let k):  // whether it held a value, so that a delete of an absent key can say so
            let existed = data[k] != nil
            set(k, nil)
            return .deleted(existed: existed)
        case .cas(let k, let expected, let v):
            guard data[k] == expected else { return .casFailed(current: data[k]) }
            set(k, v)
            return .ok
        case .mput(let pairs):
            for p in pairs { set(p.key, p.value) }
            return .ok
        }
    }

    private mutating func set(_ key: String, _ value: String?) {
        if let old = data.update(key, value) { dataBytes -= key.utf8.count + old.utf8.count }
        if let value { dataBytes += key.utf8.count + value.utf8.count }
    }

    // MARK: Snapshot

    /// The whole snapshot as one byte array: its chunks (`SnapshotChunks`), each length-prefixed.
    /// For small stores and the simulator; kvnode writes and sends the chunks one at a time.
    public func snapshot() -> [UInt8] {
        var w = ByteWriter()
        for chunk in SnapshotChunks(self) { w.data(chunk) }
        return w.bytes
    }

    public init(snapshot bytes: [UInt8], sessionLimit: Int = defaultSessionLimit) throws {
        // Format 1 (one blob, before chunks) starts with its version byte; format 2 with the
        // header chunk's length, which is at least 4.
        if bytes.first == 1 { try self.init(legacySnapshot: bytes, sessionLimit: sessionLimit); return }
        var r = ByteReader(bytes)
        var assembler = SnapshotAssembler(sessionLimit: sessionLimit)
        while !r.atEnd { try assembler.add(try r.data()) }
        self = try assembler.finish()
    }

    /// Format 1, as data directories written before chunked snapshots hold it.
    private init(legacySnapshot bytes: [UInt8], sessionLimit: Int) throws {
        self.init(sessionLimit: sessionLimit)
        var r = ByteReader(bytes)
        _ = try r.byte()
        applied = try r.uint()
        for _ in 0..<(try r.count(max: bytes.count)) {
            let k = try r.string()
            set(k, try r.string())
        }
        for _ in 0..<(try r.count(max: bytes.count)) {
            let c = try r.string()
            let seq = try r.uint()
            sessions[c] = Session(seq: seq, result: try Self.decodeResult(&r), lastIndex: applied)
        }
        guard r.atEnd else { throw DecodeError("\(bytes.count - r.position) trailing bytes in snapshot") }
        rebuildUseOrder()
    }

    mutating func restoreApplied(_ index: UInt64) { applied = index }
    mutating func restoreExpiredThrough(_ index: UInt64) { expiredThrough = index }
    mutating func restoreKey(_ key: String, _ value: String) { set(key, value) }
    mutating func restoreSession(_ client: String, _ session: Session) { sessions[client] = session }

    static func encode(_ result: KVResult, _ w: inout ByteWriter) {
        switch result {
        case .ok: w.byte(0)
        case .value(let v): w.byte(1); w.optionalString(v)
        case .casFailed(let c): w.byte(2); w.optionalString(c)
        case .staleSequence(let l): w.byte(3); w.uint(l)
        case .invalid(let why): w.byte(4); w.string(why)
        case .sessionExpired(let seq): w.byte(5); w.uint(seq)
        case .sequenceConflict(let seq): w.byte(6); w.uint(seq)
        case .deleted(let existed): w.byte(7); w.byte(existed ? 1 : 0)
        }
    }

    static func decodeResult(_ r: inout ByteReader) throws -> KVResult {
        switch try r.byte() {
        case 0: return .ok
        case 1: return .value(try r.optionalString())
        case 2: return .casFailed(current: try r.optionalString())
        case 3: return .staleSequence(latest: try r.uint())
        case 4: return .invalid(try r.string())
        case 5: return .sessionExpired(seq: try r.uint())
        case 6: return .sequenceConflict(seq: try r.uint())
        case 7:
            switch try r.byte() {
            case 0: return .deleted(existed: false)
            case 1: return .deleted(existed: true)
            case let b: throw DecodeError("deleted result \(b) is neither 0 nor 1")
            }
        case let t: throw DecodeError("unknown result tag \(t)")
        }
    }
}
