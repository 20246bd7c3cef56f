import BinaryCodec

/// The store's snapshot as a sequence of chunks, each decodable on its own, so that a snapshot of
/// any size is written, sent, received and read back one chunk at a time: memory while doing so is
/// one chunk (about `chunkBytes`) beside the state itself.
///
///     chunk 0:   version 3, applied index, key count, session count, expired-through index
///     then:      tag 1 + pairs (key, value) ... until every key is out
///     then:      tag 2 + sessions (client, seq, last index, result, digest) ... until every session is out
///
/// Version 2 (no digest) is still read: its sessions take any command under their seq as a retry.
///
/// Keys and clients in sorted order, so equal states give equal chunks on every replica.
public struct SnapshotChunks: Sequence, IteratorProtocol, Sendable {
    /// A chunk closes once it holds this many bytes (one pair of at most 1 MiB + 1 KiB can pass it).
    public static let defaultChunkBytes = 1 << 20

    private let state: KVStateMachine
    private let keys: [String]
    private let clients: [String]
    private let chunkBytes: Int
    private var nextKey = 0
    private var nextClient = 0
    private var headerDone = false

    /// `state` is a copy (its storage shared until the store changes), so a snapshot can be
    /// written from another thread while the store goes on.
    public init(_ state: KVStateMachine, chunkBytes: Int = defaultChunkBytes) {
        self.state = state
        keys = state.data.keys.sorted()
        clients = state.sessions.keys.sorted()
        self.chunkBytes = Swift.max(1, chunkBytes)
    }

    public mutating func next() -> [UInt8]? {
        var w = ByteWriter()
        if !headerDone {
            headerDone = true
            w.byte(3)
            w.uint(state.applied)
            w.uint(UInt64(keys.count))
            w.uint(UInt64(clients.count))
            w.uint(state.expiredThrough)
            return w.bytes
        }
        if nextKey < keys.count {
            var body = ByteWriter()
            var n = 0
            while nextKey < keys.count, body.bytes.count < chunkBytes {
                let k = keys[nextKey]
                body.string(k)
                body.string(state.data[k]!)
                nextKey += 1
                n += 1
            }
            w.byte(1)
            w.uint(UInt64(n))
            return w.bytes + body.bytes
        }
        if nextClient < clients.count {
            var body = ByteWriter()
            var n = 0
            while nextClient < clients.count, body.bytes.count < chunkBytes {
                let c = clients[nextClient]
                let s = state.sessions[c]!
                body.string(c)
                body.uint(s.seq)
                body.uint(s.lastIndex)
                KVStateMachine.encode(s.result, &body)
                body.uint(s.digest)
                nextClient += 1
                n += 1
            }
            w.byte(2)
            w.uint(UInt64(n))
            return w.bytes + body.bytes
        }
        return nil
    }
}

/// Rebuilds a store from its snapshot's chunks, taken in order. Strict: a chunk out of place, a
/// count that does not add up, a chunk after the last, or a missing one is an error, never a
/// partial store.
public struct SnapshotAssembler: Sendable {
    private var state: KVStateMachine
    private var keysLeft: UInt64?
    private var sessionsLeft: UInt64 = 0
    private var version: UInt8 = 0
    public private(set) var chunks = 0

    public init(sessionLimit: Int = KVStateMachine.defaultSessionLimit) { state = KVStateMachine(sessionLimit: sessionLimit) }

    /// Every key and session arrived.
    public var isComplete: Bool { keysLeft == 0 && sessionsLeft == 0 }

    public mutating func add(_ chunk: [UInt8]) throws {
        var r = ByteReader(chunk)
        defer { chunks += 1 }
        guard let keys = keysLeft else {
            version = try r.byte()
            guard version == 2 || version == 3 else { throw DecodeError("unknown snapshot format \(version)") }
            state.restoreApplied(try r.uint())
            keysLeft = try r.uint()
            sessionsLeft = try r.uint()
            state.restoreExpiredThrough(try r.uint())
            try r.expectEnd()
            return
        }
        guard !isComplete else { throw DecodeError("a chunk after the snapshot's last (chunk \(chunks))") }
        let tag = try r.byte()
        let n = UInt64(try r.count(max: chunk.count))
        switch tag {
        case 1:
            guard n >= 1, n <= keys else { throw DecodeError("chunk \(chunks) holds \(n) keys, \(keys) were left") }
            for _ in 0..<n { state.restoreKey(try r.string(), try r.string()) }
            keysLeft = keys - n
        case 2:
            guard keys == 0 else { throw DecodeError("sessions in chunk \(chunks) before the last \(keys) keys") }
            guard n >= 1, n <= sessionsLeft else { throw DecodeError("chunk \(chunks) holds \(n) sessions, \(sessionsLeft) were left") }
            for _ in 0..<n {
                let client = try r.string()
                let seq = try r.uint()
                let last = try r.uint()
                let result = try KVStateMachine.decodeResult(&r)
                let digest = version >= 3 ? try r.uint() : 0
                state.restoreSession(client, KVStateMachine.Session(seq: seq, result: result, lastIndex: last, digest: digest))
            }
            sessionsLeft -= n
        default:
            throw DecodeError("unknown chunk tag \(tag) in chunk \(chunks)")
        }
        try r.expectEnd()
    }

    /// The store, once complete.
    public func finish() throws -> KVStateMachine {
        guard keysLeft != nil else { throw DecodeError("an empty snapshot (no header chunk)") }
        guard isComplete else { throw DecodeError("the snapshot ends early: \(keysLeft!) keys and \(sessionsLeft) sessions missing") }
        var s = state
        s.rebuildUseOrder()
        return s
    }
}
