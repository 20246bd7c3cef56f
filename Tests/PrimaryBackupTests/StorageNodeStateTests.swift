import Core
import KVStore
import Testing
@testable import PrimaryBackup

/// Two storage nodes of one pair as pure values, driven the way the runtime drives them: the
/// coordinator's assignments, client writes, the stream delivered by hand.
private struct Pair {
    var a = StorageNodeState(id: "A")
    var b = StorageNodeState(id: "B")
    var version: UInt64 = 0
    var clientSeq: UInt64 = 0

    mutating func assign(active: String?, epoch: UInt64, fenced: Bool = false, syncFor: String? = nil, syncID: UInt64 = 0) {
        version += 1
        for name in ["A", "B"] {
            let partner = name == "A" ? "B" : "A"
            let a = PBWire.Assignment(boot: "c1", version: version, pair: 0, active: active, epoch: epoch, fenced: fenced && active == name,
                                      standby: active == name ? partner : nil, sync_from: syncFor == name ? partner : nil, sync_id: syncID,
                                      replication_path: "direct", routes: [active])
            if name == "A" { a_assign(a) } else { b.assign(a) }
        }
    }
    private mutating func a_assign(_ x: PBWire.Assignment) { a.assign(x) }

    mutating func put(on node: WritableKeyPath<Pair, StorageNodeState>, _ key: String, _ value: String, at t: Int64 = 0) -> StorageNodeState.WriteOutcome {
        clientSeq += 1
        return self[keyPath: node].write(KVRequest(client: "c", seq: clientSeq, command: .put(key: key, value: value)), at: t)
    }

    /// Everything queued on `from` delivered to `to` and confirmed.
    mutating func replicate(from: WritableKeyPath<Pair, StorageNodeState>, to: WritableKeyPath<Pair, StorageNodeState>) {
        while let batch = self[keyPath: from].nextBatch(max: 3) {
            let reply = try! self[keyPath: to].receive(batch.ops).get()
            _ = self[keyPath: from].replicated(reply, at: 1)
        }
    }
}

@Test func aBackupThatServedFollowsTheReturningPrimaryAgain() throws {
    var p = Pair()
    p.assign(active: "A", epoch: 1)
    #expect(p.put(on: \.a, "k", "1") == .applied(.ok, seq: 1))
    p.replicate(from: \.a, to: \.b)
    // A dies; B is promoted and takes writes of its own.
    p.assign(active: "B", epoch: 2)
    for i in 2...4 { #expect(p.put(on: \.b, "k", "\(i)") == .applied(.ok, seq: UInt64(i))) }
    // A returns empty and copies B in full.
    p.a = StorageNodeState(id: "A")
    p.assign(active: "B", epoch: 2, syncFor: "A", syncID: 1)
    let sync = p.a.takeSyncRequest()
    #expect(sync?.from == "B" && sync?.id == 1 && p.a.takeSyncRequest() == nil)
    let taken = p.b.snapshotForSync(for: "A")
    let snapshot = try #require(taken)
    #expect(try p.a.install(snapshot, id: 1).get() == 4)
    // A write during the hand-back's fence is refused; after it A serves, and B follows from 4.
    p.assign(active: "B", epoch: 2, fenced: true)
    #expect(p.put(on: \.b, "k", "x") == .fenced)
    p.assign(active: "A", epoch: 3)
    #expect(p.put(on: \.a, "k", "5") == .applied(.ok, seq: 5))
    p.replicate(from: \.a, to: \.b)
    #expect(p.b.appliedSeq == 5 && p.b.read("k", anyRole: true) == .value("5", seq: 5))
    #expect(p.a.lagOps == 0)
}

@Test func writesDuringASyncReachTheReturningNodeAfterItsCopy() throws {
    var p = Pair()
    p.assign(active: "B", epoch: 1)
    for i in 1...3 { _ = p.put(on: \.b, "k\(i)", "v") }
    p.assign(active: "B", epoch: 1, syncFor: "A", syncID: 1)
    #expect(p.a.takeSyncRequest()?.from == "B" && p.a.syncing)
    _ = p.put(on: \.b, "early", "v")
    // Nobody but the standby the coordinator named gets the copy (it moves the stream's start).
    #expect(p.b.snapshotForSync(for: "C") == nil && p.b.snapshotForSync(for: "") == nil)
    let taken = p.b.snapshotForSync(for: "A")
    let snapshot = try #require(taken)
    #expect(snapshot.seq == 4)
    // Written after the snapshot: on the stream, which A refuses until its copy is in (applied
    // first, the copy would undo them, and B would already have dropped them as confirmed).
    _ = p.put(on: \.b, "late", "v")
    let next = p.b.nextBatch(max: 10)
    let early = try #require(next)
    #expect(early.ops.map(\.seq) == [5] && p.a.receive(early.ops) == .failure(.syncing))
    p.b.replicationFailed()
    _ = try p.a.install(snapshot, id: 1).get()
    #expect(!p.a.syncing)
    p.replicate(from: \.b, to: \.a)
    for k in ["k1", "k2", "k3", "early", "late"] { #expect(p.a.read(k, anyRole: true) == .value("v", seq: 5), "\(k)") }
    #expect(p.b.lagOps == 0)
}

@Test func aBigBacklogGoesInBatchesOfBoundedBytesAndANodeWithoutStandbyQueuesNothing() {
    var p = Pair()
    p.assign(active: "A", epoch: 1)
    let big = String(repeating: "x", count: 600_000)
    for i in 1...3 { _ = p.put(on: \.a, "k\(i)", big) }
    // 1 MiB per batch: one 600-kB entry at a time (a single larger one still goes alone).
    let batch = p.a.nextBatch(max: 512)
    #expect(batch?.ops.count == 1)
    p.a.replicationFailed()
    p.replicate(from: \.a, to: \.b)
    #expect(p.b.appliedSeq == 3 && p.a.lagOps == 0)
    // The standby is gone: writes are not kept for it, and the next one needs a full copy.
    p.version += 1
    _ = p.a.assign(PBWire.Assignment(boot: "c1", version: p.version, pair: 0, active: "A", epoch: 1, fenced: false, standby: nil,
                                     sync_from: nil, sync_id: 0, replication_path: "direct", routes: ["A"]))
    _ = p.put(on: \.a, "alone", "v")
    #expect(p.a.needsFullSync && p.a.outgoing?.queue.isEmpty == true)
}

@Test func aFenceAnswerSaysWhichAssignmentItAnswers() {
    var p = Pair()
    p.assign(active: "B", epoch: 2)
    _ = p.put(on: \.b, "k", "v")
    p.assign(active: "B", epoch: 2, fenced: true)
    let reply = p.b.assignReply
    #expect(reply.fenced && reply.last_seq == 1 && reply.boot == "c1" && reply.version == p.version)
    p.assign(active: "A", epoch: 3)
    #expect(!p.b.assignReply.fenced)
}

@Test func onlyTheActiveNodeWritesAndAnOlderAssignmentIsIgnored() {
    var p = Pair()
    p.assign(active: "A", epoch: 1)
    #expect(p.put(on: \.b, "k", "v") == .notActive("A"))
    #expect(p.b.read("k") == .notActive("A"))
    let stale = PBWire.Assignment(boot: "c1", version: 0, pair: 0, active: "B", epoch: 0, fenced: false, standby: nil, sync_from: nil,
                                  sync_id: 0, replication_path: "direct", routes: ["B"])
    #expect(!p.b.assign(stale) && !p.b.isActive)
    // A new coordinator (a later boot) starts its versions over, and is heard; a late push from
    // the one it replaced is not.
    var fresh = stale
    fresh.boot = "c2"
    #expect(p.b.assign(fresh) && p.b.isActive)
    var late = stale
    late.version = 99
    late.active = "A"
    #expect(!p.b.assign(late) && p.b.isActive)
    // The active node takes no stream from another: two actives must not overwrite each other.
    #expect(p.b.receive([ReplicationOp(seq: 1, entry: [], ackedAtNs: 0)]) == .failure(.active))
}

@Test func theDriverSaysWhoServesAndNumbersEpochs() {
    let config = Coordinator.Config(pairs: [.init(primary: "A", backup: "B")], checkIntervalNs: 100, failAfterNs: 300)
    var d = PrimaryBackup.CoordinatorDriver(config: config, boot: "c1", replicationPath: "direct")
    // The first to register serves (here the primary, with no promotion to speak of).
    let first = d.step(.register("A"), at: 0)
    #expect(first.notes == [.promoted(pair: 0, "A", epoch: 1)] && first.push == ["A"])
    _ = d.step(.register("B"), at: 10)
    #expect(d.assignment(for: "A")?.standby == "B" && d.assignment(for: "B")?.sync_from == "A")
    _ = d.step(.synced(pair: 0, "B"), at: 20)
    #expect(d.assignment(for: "B")?.sync_from == nil)
    // A falls silent: dead at the first check 300 ns after its last beat; B promoted in epoch 2.
    _ = d.step(.heartbeat("B"), at: 350)
    let check = d.step(.check, at: 400)
    #expect(check.notes == [.declaredDead("A", silenceNs: 400, lastHeardNs: 0), .activeLost(pair: 0, "A", epoch: 1),
                            .promoted(pair: 0, "B", epoch: 2)])
    #expect(check.push == ["B"] && d.assignment(for: "B")?.active == "B")
    // A node the coordinator does not know as registered is told to register.
    var other = PrimaryBackup.CoordinatorDriver(config: config, boot: "c2", replicationPath: "direct")
    #expect(other.step(.heartbeat("A"), at: 0).mustRegister)
}

@Test func theDriverTakesReportsOnlyForTheNodesOwnPairAndKeepsEpochsGoingUp() {
    let config = Coordinator.Config(pairs: [.init(primary: "A", backup: "B"), .init(primary: "C", backup: "D")],
                                    checkIntervalNs: 100, failAfterNs: 300)
    var d = PrimaryBackup.CoordinatorDriver(config: config, boot: "c1", replicationPath: "direct")
    // A new coordinator hears from a node that held epoch 7: the pair goes on from there.
    d.observe(epoch: 7, of: "C")
    _ = d.step(.register("C"), at: 0)
    #expect(d.epochs[1] == 8 && d.assignment(for: "C")?.epoch == 8)
    _ = d.step(.register("D"), at: 1)
    let id = d.syncs["D"]!.id
    #expect(d.isCurrentSync(id, of: "D") && !d.isCurrentSync(id + 1, of: "D"))
    // A report naming a pair that is not the node's own (or none) changes nothing and traps nothing.
    for p in [0, 7, -1] { #expect(d.step(.synced(pair: p, "D"), at: 2) == .init()) }
    #expect(d.syncs["D"] != nil)
    #expect(d.step(.synced(pair: 1, "D"), at: 3).notes == [.synced(pair: 1, "D")])
}

@Test func onlyTheLatestSyncsCopyIsInstalledAndOnlyItsFailureOpensTheStream() throws {
    var p = Pair()
    p.assign(active: "B", epoch: 1)
    for i in 1...3 { _ = p.put(on: \.b, "k\(i)", "v") }
    p.assign(active: "B", epoch: 1, syncFor: "A", syncID: 1)
    _ = p.a.takeSyncRequest()
    let firstTaken = p.b.snapshotForSync(for: "A")
    let first = try #require(firstTaken)
    // A second sync is asked (A was lost and came back) while the first copy is on its way.
    _ = p.put(on: \.b, "k4", "v")
    p.assign(active: "B", epoch: 1, syncFor: "A", syncID: 2)
    #expect(p.a.takeSyncRequest()?.id == 2)
    let secondTaken = p.b.snapshotForSync(for: "A")
    let second = try #require(secondTaken)
    // The first one's late failure does not open the stream under the second's copy...
    p.a.syncFailed(id: 1)
    #expect(p.a.syncing)
    // ...and its late copy does not go back in time.
    #expect(p.a.install(first, id: 1) == .failure(.superseded))
    #expect(try p.a.install(second, id: 2).get() == 4 && !p.a.syncing)
}

@Test func aNodeTheCoordinatorLostStopsAcknowledging() {
    var p = Pair()
    p.assign(active: "A", epoch: 1)
    #expect(p.put(on: \.a, "k", "v") == .applied(.ok, seq: 1))
    p.a.orphaned()
    #expect(p.put(on: \.a, "k", "w") == .fenced)
}
