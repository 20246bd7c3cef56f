import BinaryCodec
import Core
import Raft
import Testing
@testable import RaftNode

private let every: [Message] = [
    Message(from: 1, to: 2, term: 3, kind: .preVote(lastIndex: 10, lastTerm: 2)),
    Message(from: 2, to: 1, term: 4, kind: .preVoteResponse(granted: true)),
    Message(from: 1, to: 3, term: 4, kind: .vote(lastIndex: 10, lastTerm: 2, transfer: true)),
    Message(from: 3, to: 1, term: 4, kind: .voteResponse(granted: false)),
    Message(from: 1, to: 2, term: 4, kind: .append(prevIndex: 9, prevTerm: 2, entries: [
        Entry(term: 4, index: 10, data: []), Entry(term: 4, index: 11, data: Array("put x".utf8)),
    ], commit: 9, round: 7)),
    Message(from: 2, to: 1, term: 4, kind: .appendResponse(success: false, matchIndex: 0, conflictIndex: 5, conflictTerm: 1, round: 7)),
    Message(from: 2, to: 1, term: 4, kind: .appendResponse(success: true, matchIndex: 11, conflictIndex: 0, conflictTerm: nil, round: 0)),
    Message(from: 1, to: 3, term: 4, kind: .snapshot(Snapshot(index: 100, term: 3, data: [1, 2, 3]))),
    Message(from: 1, to: 2, term: 4, kind: .timeoutNow),
]

@Test func everyMessageKindSurvivesTheWire() throws {
    for m in every {
        #expect(try MessageCodec.decode(MessageCodec.encode(m)) == m, "\(m)")
    }
}

/// Seeded mutations of valid frames: each decodes to something or throws; none traps.
@Test func damagedFramesThrowAndNeverTrap() {
    var rng: UInt64 = 0x5EED
    func next() -> UInt64 {
        rng = rng &* 6364136223846793005 &+ 1442695040888963407
        return rng >> 33
    }
    var threw = 0
    for i in 0..<20_000 {
        var bytes = MessageCodec.encode(every[i % every.count])
        switch next() % 3 {
        case 0: bytes[Int(next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: next())
        case 1: bytes.removeLast(Int(next() % UInt64(bytes.count)) + 1)
        default: bytes += (0..<Int(next() % 4 + 1)).map { _ in UInt8(truncatingIfNeeded: next()) }
        }
        if (try? MessageCodec.decode(bytes)) == nil { threw += 1 }
    }
    // Truncation and trailing bytes always fail; some byte flips still decode (to another message).
    #expect(threw > 12_000, "seed 0x5EED: \(threw) of 20000 damaged frames refused")
}

@Test func percentDecodingRefusesBadEscapesAndNonUTF8() {
    #expect(KVAPI.percentDecoded("a%2Fb%20c") == "a/b c")
    #expect(KVAPI.percentDecoded("%zz") == nil)
    #expect(KVAPI.percentDecoded("%") == nil)
    #expect(KVAPI.percentDecoded("%ff%fe") == nil)
    #expect(KVAPI.queryParameters("consistency=stale&seq=3&flag") == ["consistency": "stale", "seq": "3", "flag": ""])
}

@Test func bodyErrorsNameTheField() {
    guard case .failure(let missing) = JSON.decode(PutBody.self, Array(#"{"client_id":"c","seq":1}"#.utf8)) else {
        Issue.record("accepted a body without value"); return
    }
    #expect(missing == "missing field 'value'")
    guard case .failure(let wrong) = JSON.decode(PutBody.self, Array(#"{"seq":"one","value":"v"}"#.utf8)) else {
        Issue.record("accepted a string seq"); return
    }
    #expect(wrong == "field 'seq': expected a whole number, 1 or more")
    guard case .failure(let notJSON) = JSON.decode(PutBody.self, Array("{oops".utf8)) else {
        Issue.record("accepted bad JSON"); return
    }
    #expect(notJSON == "the body is not valid JSON")
}

/// The rules between Raft's settings are written once (RaftSettings): the config file and kvnode's
/// flags refuse the same values, each in its own names.
@Test func kvnodesFlagsAndTheConfigFileShareOneRule() {
    var r = RaftSettings()
    r.heartbeatMs = 100
    r.electionMs = 150
    let o = RaftNodeOptions(id: NodeID(validating: "A")!, host: "127.0.0.1", httpPort: 1, peerPort: 2, peers: [], dataDir: "/tmp/x",
                            settings: r)
    #expect(o.problem() == "--election-ms 150 must be at least twice --heartbeat-ms (100), or followers campaign between heartbeats")
    // The config file's error names the key before this (key 'cluster.election_ms': ...), so the message does not.
    #expect(r.problem(naming: RaftSettings.configKey)
            == .init(field: .election, message: "150 must be at least twice raft_heartbeat_ms (100), or followers campaign between heartbeats"))
    r.electionMs = 300
    r.tickMs = 0
    #expect(o.problem() != nil && RaftNodeOptions(id: o.id, host: "h", httpPort: 1, peerPort: 2, peers: [], dataDir: "d", settings: r).problem()
            == "--tick-ms 0 is out of range 1...1000")
    #expect(RaftNodeOptions(id: NodeID(validating: "A")!, host: "h", httpPort: 1, peerPort: 2, peers: [], dataDir: "d").problem() == nil)
}

/// A peer frame carries its message's or chunk's Raft group; a group past any node's is refused.
@Test func peerFramesCarryTheirGroup() throws {
    for (group, m) in zip([0, 1, 2, 63], every) {
        let body = Array(PeerFrame.message(group: group, m).encoded().dropFirst(8))
        #expect(try PeerFrame.decode(body: body) == .message(group: group, m))
    }
    let chunk = PeerFrame.snapshotChunk(.init(from: 2, group: 5, index: 100, term: 3, seq: 0, bytes: [1, 2, 3]))
    #expect(try PeerFrame.decode(body: Array(chunk.encoded().dropFirst(8))) == chunk)
    let forged = Array(PeerFrame.message(group: PeerFrame.maxGroup, every[0]).encoded().dropFirst(8))
    #expect(throws: DecodeError.self) { try PeerFrame.decode(body: forged) }
}
