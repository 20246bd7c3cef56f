import Testing
import BinaryCodec
@testable import KVStore

private func entry(_ client: String, _ seq: UInt64, _ c: KVCommand) -> [UInt8] {
    KVRequest(client: client, seq: seq, command: c).encoded()
}

@Test func everyCommandRoundTripsThroughItsEncoding() throws {
    let commands: [KVCommand] = [
        .put(key: "k", value: "v"), .get(key: "ключ"), .delete(key: ""),
        .cas(key: "k", expected: nil, value: "v"), .cas(key: "k", expected: "old", value: "new"),
        .mput([KeyValue(key: "a", value: "1"), KeyValue(key: "b", value: "")]), .mput([]),
    ]
    for (i, c) in commands.enumerated() {
        let r = KVRequest(client: "client-\(i)", seq: UInt64(i) << 40, command: c)
        #expect(try KVRequest(decoding: r.encoded()) == r)
    }
}

@Test func aDamagedEntryIsRefusedNotGuessed() {
    let good = entry("c1", 1, .put(key: "k", value: "value"))
    for cut in 0..<good.count {
        #expect(throws: DecodeError.self) { try KVRequest(decoding: Array(good[..<cut])) }
    }
    #expect(throws: DecodeError.self) { try KVRequest(decoding: good + [0]) }
    var m = KVStateMachine()
    let (request, result) = m.apply(index: 1, [9, 9, 9])
    #expect(request == nil)
    guard case .invalid(let why) = result else { Issue.record("expected invalid, got \(result)"); return }
    #expect(why.contains("unknown request format 9"))
}

@Test func putGetDeleteCasAndMput() {
    var m = KVStateMachine()
    #expect(m.apply(index: 1, []).result == .ok)  // a leader's no-op
    #expect(m.apply(index: 2, entry("c", 1, .put(key: "a", value: "1"))).result == .ok)
    #expect(m.apply(index: 3, entry("c", 2, .get(key: "a"))).result == .value("1"))
    #expect(m.apply(index: 4, entry("c", 3, .cas(key: "a", expected: "2", value: "3"))).result == .casFailed(current: "1"))
    #expect(m.apply(index: 5, entry("c", 4, .cas(key: "a", expected: "1", value: "3"))).result == .ok)
    #expect(m.apply(index: 6, entry("c", 5, .cas(key: "new", expected: nil, value: "x"))).result == .ok)
    #expect(m.apply(index: 7, entry("c", 6, .mput([KeyValue(key: "p", value: "P"), KeyValue(key: "q", value: "Q")]))).result == .ok)
    #expect(m.apply(index: 8, entry("c", 7, .delete(key: "a"))).result == .deleted(existed: true))
    #expect(m.apply(index: 9, entry("c", 8, .delete(key: "a"))).result == .deleted(existed: false))
    #expect(m.data == ["new": "x", "p": "P", "q": "Q"])
    #expect(m.applied == 9)
}

@Test func aRetriedRequestIsAppliedOnceAndAnsweredAlike() {
    var m = KVStateMachine()
    _ = m.apply(index: 1, entry("c1", 1, .put(key: "n", value: "0")))
    let cas = entry("c1", 2, .cas(key: "n", expected: "0", value: "1"))
    #expect(m.apply(index: 2, cas).result == .ok)
    _ = m.apply(index: 3, entry("c2", 1, .put(key: "n", value: "0")))  // another client resets it
    // The retry finds "0" again, but it is the same request: the first answer, no second effect.
    #expect(m.apply(index: 4, cas).result == .ok)
    #expect(m.data["n"] == "0")
    _ = m.apply(index: 5, entry("c1", 3, .put(key: "n", value: "3")))
    #expect(m.apply(index: 6, cas).result == .staleSequence(latest: 3))
    #expect(m.data["n"] == "3")
}

@Test func theSnapshotCarriesDataAndSessions() throws {
    var m = KVStateMachine()
    _ = m.apply(index: 1, entry("c1", 1, .put(key: "a", value: "1")))
    _ = m.apply(index: 2, entry("c2", 7, .cas(key: "a", expected: "x", value: "2")))
    var restored = try KVStateMachine(snapshot: m.snapshot())
    #expect(restored == m)
    // A retry that arrives after the install still gets the first answer.
    #expect(restored.apply(index: 3, entry("c2", 7, .cas(key: "a", expected: "x", value: "2"))).result == .casFailed(current: "1"))
    let bytes = m.snapshot()
    for cut in [0, 1, bytes.count / 2, bytes.count - 1] {
        #expect(throws: DecodeError.self) { try KVStateMachine(snapshot: Array(bytes[..<cut])) }
    }
}

@Test func equalStatesGiveEqualSnapshots() {
    var a = KVStateMachine(), b = KVStateMachine()
    // Anonymous: the two commands differ (in order), so sessions would record different digests.
    _ = a.apply(index: 1, KVRequest.anonymous(.mput((0..<50).map { KeyValue(key: "k\($0)", value: "\($0)") })).encoded())
    _ = b.apply(index: 1, KVRequest.anonymous(.mput((0..<50).reversed().map { KeyValue(key: "k\($0)", value: "\($0)") })).encoded())
    #expect(a.snapshot() == b.snapshot())
}

/// Bad bytes on disk or on the wire are refused with an error, never a crash: seeded mutations of
/// valid encodings (flipped bytes, cut tails, inserted bytes) only ever decode or throw.
@Test func mutatedBytesDecodeOrThrowButNeverTrap() {
    var m = KVStateMachine()
    _ = m.apply(index: 1, entry("c1", 1, .mput([KeyValue(key: "a", value: "1"), KeyValue(key: "bb", value: "22")])))
    _ = m.apply(index: 2, entry("c2", 9, .cas(key: "a", expected: "0", value: "2")))
    let samples = [m.snapshot(), entry("c3", 300, .cas(key: "k", expected: "e", value: "v")), entry("c", 1, .mput([]))]
    var state: UInt64 = 42
    func next() -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int(truncatingIfNeeded: state >> 33)
    }
    var refused = 0
    for i in 0..<20_000 {
        var bytes = samples[i % samples.count]
        switch next() % 3 {
        case 0: bytes[next() % bytes.count] = UInt8(truncatingIfNeeded: next())
        case 1: bytes.removeLast(1 + next() % bytes.count)
        default: bytes.insert(UInt8(truncatingIfNeeded: next()), at: next() % bytes.count)
        }
        if (try? KVRequest(decoding: bytes)) == nil { refused += 1 }
        if (try? KVStateMachine(snapshot: bytes)) == nil { refused += 1 }
    }
    #expect(refused > 20_000)  // most mutations are caught; none crashed
}

/// A write with no client id has no session: each copy that reaches the log is applied, and none
/// is taken for the retry of another (a per-process counter once made the first writes after a
/// restart "retries" of the writes before it, answered ok and never applied).
@Test func anAnonymousWriteIsAppliedEveryTimeAndLeavesNoSession() throws {
    var m = KVStateMachine()
    #expect(m.apply(index: 1, KVRequest.anonymous(.put(key: "k", value: "v1")).encoded()).result == .ok)
    #expect(m.apply(index: 2, KVRequest.anonymous(.put(key: "k", value: "v2")).encoded()).result == .ok)
    #expect(m.data["k"] == "v2")
    #expect(m.apply(index: 3, KVRequest.anonymous(.cas(key: "k", expected: "v2", value: "v3")).encoded()).result == .ok)
    #expect(m.apply(index: 4, KVRequest.anonymous(.cas(key: "k", expected: "v2", value: "v4")).encoded()).result
            == .casFailed(current: "v3"))
    #expect(m.sessions.isEmpty)
    var restored = try KVStateMachine(snapshot: m.snapshot())
    #expect(restored.apply(index: 5, KVRequest.anonymous(.put(key: "k", value: "v5")).encoded()).result == .ok)
    #expect(restored.data["k"] == "v5")
    #expect(try KVRequest(decoding: KVRequest.anonymous(.delete(key: "k")).encoded()).isAnonymous)
}

/// A snapshot goes out and comes back one chunk at a time: any chunk size gives the same store,
/// and a missing, repeated or misplaced chunk is an error, never a partial store.
@Test func chunksOfAnySizeRebuildTheStoreAndAMissingChunkIsRefused() throws {
    var m = KVStateMachine()
    _ = m.apply(index: 1, entry("c", 1, .mput((0..<200).map { KeyValue(key: "k\($0)", value: String(repeating: "v", count: $0)) })))
    for c in 0..<30 { _ = m.apply(index: UInt64(2 + c), entry("client\(c)", 1, .put(key: "x", value: "\(c)"))) }
    for size in [1, 100, 5000, 1 << 20] {
        let chunks = Array(SnapshotChunks(m, chunkBytes: size))
        var a = SnapshotAssembler()
        for c in chunks { try a.add(c) }
        #expect(try a.finish() == m, "chunk size \(size)")
        // A chunk closes once past the size: by at most one pair (here up to 206 bytes) and its header.
        #expect(chunks.allSatisfy { $0.count <= size + 256 }, "chunk size \(size)")
        if chunks.count > 2 {
            for skip in [1, chunks.count - 1] {
                var b = SnapshotAssembler()
                for (i, c) in chunks.enumerated() where i != skip { try? b.add(c) }
                #expect(throws: DecodeError.self, "chunk size \(size), chunk \(skip) missing") { _ = try b.finish() }
            }
            var dup = SnapshotAssembler()
            #expect(throws: DecodeError.self) { for c in chunks + [chunks.last!] { try dup.add(c) } }
        }
    }
}

/// Data directories written before chunked snapshots (format 1) still start.
@Test func aFormatOneSnapshotStillReads() throws {
    // Format 1 of {a: 1} with c1 at seq 3 answered ok, applied through 7.
    let v1: [UInt8] = [1, 7, 1, 1, 0x61, 1, 0x31, 1, 2, 0x63, 0x31, 3, 0]
    let m = try KVStateMachine(snapshot: v1)
    #expect(m.data == ["a": "1"] && m.applied == 7 && m.sessions["c1"]?.seq == 3 && m.sessions["c1"]?.result == .ok)
}

/// Sessions expire by count, least recently used first, the same on every replica: one restored
/// from a snapshot midway makes the same evictions as one that applied every entry.
@Test func sessionsExpireLeastRecentlyUsedFirstAndAlikeOnEveryReplica() throws {
    var a = KVStateMachine(sessionLimit: 3)
    var index: UInt64 = 0
    func apply(_ m: inout KVStateMachine, _ client: String, _ seq: UInt64, _ c: KVCommand) -> KVResult {
        m.apply(index: index, entry(client, seq, c)).result
    }
    var log: [(String, UInt64, KVCommand)] = []
    for c in ["c1", "c2", "c3"] { log.append((c, 1, .put(key: c, value: "1"))) }
    log.append(("c1", 2, .put(key: "c1", value: "2")))  // c1 used again: c2 is now the oldest
    log.append(("c4", 1, .put(key: "c4", value: "1")))  // past the limit: c2 goes
    var b: KVStateMachine?
    for (i, (client, seq, command)) in log.enumerated() {
        index += 1
        _ = apply(&a, client, seq, command)
        if i == 3 { b = try KVStateMachine(snapshot: a.snapshot(), sessionLimit: 3) }
        else if b != nil { _ = apply(&b!, client, seq, command) }
    }
    #expect(Set(a.sessions.keys) == ["c1", "c3", "c4"] && a.expiredThrough == 2)
    #expect(b == a)
    // c2's next write may be a retry of one applied before its session went: refused, not applied.
    index += 1
    #expect(apply(&a, "c2", 2, .put(key: "c2", value: "again")) == .sessionExpired(seq: 2))
    #expect(a.data["c2"] == "1")
    // A new client starts at seq 1 and is served; it pushes out the next oldest (c3), also in b.
    index += 1
    #expect(apply(&a, "c5", 1, .put(key: "c5", value: "1")) == .ok)
    index -= 1
    _ = apply(&b!, "c2", 2, .put(key: "c2", value: "again"))
    index += 1
    _ = apply(&b!, "c5", 1, .put(key: "c5", value: "1"))
    #expect(Set(a.sessions.keys) == ["c1", "c4", "c5"] && b == a)
    #expect(try KVStateMachine(snapshot: a.snapshot(), sessionLimit: 3) == a)
}

/// With no session ever expired, a client may start at any seq (as before expiry existed).
@Test func beforeAnyExpiryAClientMayStartAtAnySeq() {
    var m = KVStateMachine(sessionLimit: 3)
    #expect(m.apply(index: 1, entry("c", 7, .put(key: "k", value: "v"))).result == .ok)
}

/// What the data weighs (keys and values), kept as writes come and restored from a snapshot.
@Test func theStoreKnowsWhatItsDataWeighs() throws {
    var m = KVStateMachine()
    _ = m.apply(index: 1, entry("c", 1, .mput([KeyValue(key: "ab", value: "1234"), KeyValue(key: "c", value: "")])))
    #expect(m.dataBytes == 7)
    _ = m.apply(index: 2, entry("c", 2, .put(key: "ab", value: "1")))
    _ = m.apply(index: 3, entry("c", 3, .delete(key: "c")))
    _ = m.apply(index: 4, entry("c", 4, .cas(key: "new", expected: nil, value: "xyz")))
    #expect(m.dataBytes == 3 + 6)
    #expect(try KVStateMachine(snapshot: m.snapshot()).dataBytes == m.dataBytes)
}

/// The sharded map behaves as one dictionary: counts, removal, equality whatever the order of writes.
@Test func theShardedMapIsADictionary() {
    var a = ShardedMap(), b = ShardedMap()
    for i in 0..<2000 { a["k\(i)"] = "\(i)" }
    for i in (0..<2000).reversed() { b.update("k\(i)", "\(i)") }
    #expect(a == b && a.count == 2000 && a.keys.count == 2000)
    #expect(a.update("k7", nil) == "7" && a.count == 1999 && a["k7"] == nil && a != b)
    a["k7"] = "7"
    #expect(a == b && a.dictionary == b.dictionary && a.dictionary.count == 2000)
    // The shard of a key is the same in every process (not Swift's seeded hash).
    #expect(ShardedMap.shard(of: "") == Int(2_166_136_261 % 256) && ShardedMap.shard(of: "a") == Int(((2_166_136_261 ^ 97) &* 16_777_619) % 256))
}

/// The same (client, seq) with another command was once answered with the first command's
/// result, as if a retry, and the client took its new value for written.
@Test func anotherCommandUnderAUsedSeqIsAConflictNotARetry() throws {
    var m = KVStateMachine()
    #expect(m.apply(index: 1, entry("c", 1, .put(key: "k", value: "one"))).result == .ok)
    #expect(m.apply(index: 2, entry("c", 1, .put(key: "k", value: "one"))).result == .ok)  // a retry
    #expect(m.apply(index: 3, entry("c", 1, .put(key: "k", value: "two"))).result == .sequenceConflict(seq: 1))
    #expect(m.get("k") == "one")
    // The session is touched either way, so a replica that cannot tell (digest 0) keeps the same state.
    #expect(m.sessions["c"]?.lastIndex == 3)
    // The rule survives a snapshot (format 3 carries each session's digest).
    var restored = try KVStateMachine(snapshot: m.snapshot())
    #expect(restored == m)
    #expect(restored.apply(index: 4, entry("c", 1, .put(key: "k", value: "two"))).result == .sequenceConflict(seq: 1))
}

/// A format-2 snapshot has no digests: its sessions take any command under their seq as a retry,
/// as before, rather than refusing retries they cannot tell.
@Test func aFormat2SnapshotIsStillRead() throws {
    var header = ByteWriter()
    header.byte(2); header.uint(5); header.uint(1); header.uint(1); header.uint(0)
    var keys = ByteWriter()
    keys.byte(1); keys.uint(1); keys.string("k"); keys.string("one")
    var sessions = ByteWriter()
    sessions.byte(2); sessions.uint(1); sessions.string("c"); sessions.uint(1); sessions.uint(5); sessions.byte(0)
    var blob = ByteWriter()
    for chunk in [header.bytes, keys.bytes, sessions.bytes] { blob.data(chunk) }
    var m = try KVStateMachine(snapshot: blob.bytes)
    #expect(m.applied == 5 && m.get("k") == "one" && m.sessions["c"]?.digest == 0)
    #expect(m.apply(index: 6, entry("c", 1, .put(key: "k", value: "two"))).result == .ok)
    #expect(m.get("k") == "one")
}
