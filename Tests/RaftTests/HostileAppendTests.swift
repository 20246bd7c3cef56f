import Testing
@testable import Raft

/// Appends no correct leader sends (from a buggy or forged peer) are refused and noted; the
/// replica neither traps nor changes its log.
@Suite struct HostileAppendTests {
    /// Follower 2 of leader 1, holding entries 1...3 of term 1, all committed.
    private func follower() -> Raft {
        var r = Raft(config: Raft.Config(id: 2, voters: [1, 2, 3]))
        let entries = (1...3).map { Entry(term: 1, index: LogIndex(UInt64($0)), data: Array("e\($0)".utf8)) }
        r.step(Message(from: 1, to: 2, term: 1, kind: .append(prevIndex: 0, prevTerm: 0, entries: entries, commit: 3, round: 0)))
        let rd = r.ready()
        r.advance(rd)
        _ = r.takeTrace()
        return r
    }

    @Test(arguments: [
        ("out of order", Message.Kind.append(prevIndex: 3, prevTerm: 1, entries: [Entry(term: 1, index: 4, data: [1]), Entry(term: 1, index: 6, data: [2])], commit: 3, round: 0)),
        ("not after prev", .append(prevIndex: 3, prevTerm: 1, entries: [Entry(term: 1, index: 9, data: [1])], commit: 3, round: 0)),
        ("from a later term than the leader's", .append(prevIndex: 3, prevTerm: 1, entries: [Entry(term: 5, index: 4, data: [1])], commit: 3, round: 0)),
        ("terms that fall", .append(prevIndex: 3, prevTerm: 1, entries: [Entry(term: 1, index: 4, data: [1]), Entry(term: 0, index: 5, data: [2])], commit: 3, round: 0)),
    ])
    func aHostileAppendIsRefusedAndChangesNothing(_ what: String, _ kind: Message.Kind) {
        var r = follower()
        let before = r.log.entries(from: 1, max: 100)
        r.step(Message(from: 1, to: 2, term: 1, kind: kind))
        #expect(r.log.entries(from: 1, max: 100) == before, "\(what)")
        #expect(r.log.committed == 3, "\(what)")
        #expect(r.takeTrace().contains { $0.contains("refused an append") }, "\(what)")
        #expect(r.ready().messages.isEmpty, "\(what): no answer to a message no leader sends")
    }

    /// An append behind the commit point is stale: answered with the commit point, its entries ignored.
    @Test func anAppendOverCommittedEntriesChangesNothing() {
        var r = follower()
        let before = r.log.entries(from: 1, max: 100)
        r.step(Message(from: 1, to: 2, term: 1, kind: .append(prevIndex: 1, prevTerm: 1, entries: [Entry(term: 1, index: 2, data: Array("forged".utf8))],
                                                               commit: 3, round: 0)))
        #expect(r.log.entries(from: 1, max: 100) == before)
        #expect(r.ready().messages.map(\.description) == ["2->1 AppResp term=1 match=3"])
    }

    @Test func aLaterTermsLeaderMayStillOverwriteWhatIsNotCommitted() {
        var r = follower()
        r.step(Message(from: 1, to: 2, term: 1, kind: .append(prevIndex: 3, prevTerm: 1, entries: [Entry(term: 1, index: 4, data: [4])], commit: 3, round: 0)))
        r.step(Message(from: 3, to: 2, term: 2, kind: .append(prevIndex: 3, prevTerm: 1, entries: [Entry(term: 2, index: 4, data: [9])], commit: 3, round: 0)))
        #expect(r.log.entry(at: 4) == Entry(term: 2, index: 4, data: [9]))
    }
}
