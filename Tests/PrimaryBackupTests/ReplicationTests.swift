import Testing
@testable import PrimaryBackup

private func entry(_ n: Int) -> [UInt8] { Array("put k\(n)".utf8) }

@Test func writesAreAcknowledgedFirstAndTheBackupsConfirmationGivesTheLag() throws {
    var out = OutgoingReplication()
    for n in 1...3 { #expect(try out.completed(entry(n), at: Int64(n) * 1000).get() == UInt64(n)) }
    #expect(out.lagOps == 3)
    let batch = out.nextBatch(max: 2)
    #expect(batch.map(\.seq) == [1, 2] && out.nextBatch(max: 10).map(\.seq) == [3] && out.nextBatch(max: 10).isEmpty)
    var back = IncomingReplication()
    #expect(back.receive(batch) == .init(apply: batch, missingFrom: nil) && back.appliedSeq == 2)
    let lags = out.confirmed(through: 2, at: 5000)
    #expect(lags.map(\.seq) == [1, 2] && lags.map(\.lagNs) == [4000, 3000])
    #expect(out.lagOps == 1 && out.queue.map(\.seq) == [3])
    // A confirmation from the past or the future changes nothing.
    #expect(out.confirmed(through: 1, at: 6000).isEmpty && out.confirmed(through: 9, at: 6000).isEmpty)
}

@Test func theBackupAppliesInOrderOnceAndAsksForAHole() {
    var back = IncomingReplication()
    let ops = (1...5).map { ReplicationOp(seq: UInt64($0), entry: entry($0), ackedAtNs: 0) }
    // Out of order within a batch is fine; a duplicate is skipped.
    #expect(back.receive([ops[1], ops[0], ops[0]]).apply.map(\.seq) == [1, 2])
    // 3 is lost: 4 and 5 wait, and 3 is asked for.
    #expect(back.receive([ops[3], ops[4]]) == .init(apply: [], missingFrom: 3) && back.appliedSeq == 2)
    // What comes before a hole is applied; the hole is named.
    var other = IncomingReplication()
    #expect(other.receive([ops[0], ops[2]]) == .init(apply: [ops[0]], missingFrom: 2))
    // The resend fills it.
    #expect(back.receive(Array(ops[2...])).apply.map(\.seq) == [3, 4, 5] && back.appliedSeq == 5)
    back.installed(through: 40)
    #expect(back.receive([ReplicationOp(seq: 41, entry: entry(41), ackedAtNs: 0)]).apply.count == 1)
}

@Test func aBrokenStreamIsSentAgainAndAnOverflowAsksForAFullSync() throws {
    var out = OutgoingReplication(maxQueued: 3)
    for n in 1...2 { _ = out.completed(entry(n), at: 0) }
    #expect(out.nextBatch(max: 10).count == 2)
    out.resend()
    #expect(out.nextBatch(max: 10).map(\.seq) == [1, 2])
    // A backup that stops confirming: past the bound the queue goes, and a full sync is due.
    for n in 3...4 { _ = out.completed(entry(n), at: 0) }
    #expect(out.needsFullSync && out.queue.isEmpty && out.lastSeq == 4 && out.lagOps == 4)
    // Writes go on meanwhile, unqueued; a sync through 5 restarts the stream after it.
    #expect(try out.completed(entry(5), at: 0).get() == 5)
    out.syncStarted(at: 5)
    _ = out.completed(entry(6), at: 0)
    #expect(!out.needsFullSync && out.nextBatch(max: 10).map(\.seq) == [6] && out.lagOps == 1)
}

@Test func aFencedPrimaryRefusesWritesAndNamesItsLast() throws {
    var out = OutgoingReplication()
    _ = out.completed(entry(1), at: 0)
    _ = out.completed(entry(2), at: 0)
    #expect(out.fence() == 2)
    #expect(out.completed(entry(3), at: 0) == .failure(.fenced) && out.lastSeq == 2)
    out.unfence()
    #expect(try out.completed(entry(3), at: 0).get() == 3)
}
