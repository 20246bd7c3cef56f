import Core
import Foundation
import KVStore
import NIOPosix
import Raft
import RaftStorage
import Testing
@testable import RaftNode
#if canImport(Glibc)
import Glibc
#endif

/// RaftLoop on its own: a one-replica cluster on a temp directory, its real disk and event loop,
/// no network. What it owes a client: a write answered once applied, a retry given the first
/// answer, another command under a used seq refused, a linearizable read that sees the write,
/// and all of it on disk for the next start.
private final class OneReplica {
    let dir: String
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let pool = NIOThreadPool(numberOfThreads: 1)
    let streamPool = NIOThreadPool(numberOfThreads: 1)
    let loop: RaftLoop

    init(dir: String, groups: Int = 1, segmentBytes: Int = 1 << 20, segmentsBeforePurge: Int = 4, snapshotEntries: Int = 1000) throws {
        self.dir = dir
        pool.start()
        streamPool.start()
        let options = StorageOptions(directory: dir, sync: .fdatasync, segmentBytes: segmentBytes, groups: groups,
                                     segmentsBeforePurge: segmentsBeforePurge)
        let (storage, recovered) = try DiskStorage.open(options) { (_: Int, _: [UInt8]) in }
        var config = Raft.Config(id: 1, voters: [1])
        config.electionTicks = 5
        config.maxElectionTicks = 10
        config.heartbeatTicks = 1
        config.seed = 7
        loop = RaftLoop(config: config, timing: RaftTiming(tickMs: 10, snapshotEntries: snapshotEntries, requestTimeoutMs: 3000),
                        storage: storage, groups: recovered.map { .init(recovered: $0, state: KVStateMachine()) },
                        eventLoop: group.next(), pool: pool, streamPool: streamPool,
                        report: { _ in }, onFatal: { fatalError($0) })
        loop.start(transport: PeerTransport(peers: [], cluster: "test", me: 1, group: group), onRoleChange: { _ in }, onStatus: { _ in })
    }

    /// Until it leads every group (a one-replica cluster elects itself after one election timeout), by a deadline.
    func waitLeader() async throws {
        let deadline = monotonicNow() + 5_000_000_000
        while loop.statuses.contains(where: { $0.role != .leader }) {
            #expect(monotonicNow() < deadline, "no leader within 5 s")
            if monotonicNow() >= deadline { return }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    func close() async throws {
        try await group.shutdownGracefully()
        try await pool.shutdownGracefully()
        try await streamPool.shutdownGracefully()
    }
}

private func tempDir() -> String {
    var template = Array("/tmp/kv-raftloop-XXXXXX".utf8CString)
    return String(cString: mkdtemp(&template)!)
}

@Test func aOneReplicaLoopAnswersWritesRetriesConflictsAndReads() async throws {
    let dir = tempDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let put = KVRequest(client: "c", seq: 1, command: .put(key: "k", value: "v1"))
    guard let index = try await firstLife(dir, put) else { return }
    // Everything it answered is on disk: the next start (the loop and its storage released, and
    // with them the data directory's lock) finds the entries.
    let (_, recovered) = try DiskStorage.open(StorageOptions(directory: dir, sync: .fdatasync, segmentBytes: 1 << 20))
    #expect(recovered.entries.contains { $0.index == index && (try? KVRequest(decoding: $0.data)) == put })
    #expect(recovered.hardState.commit >= index + 2)
}

/// The loop's life: the put's index, once every answer was checked.
private func firstLife(_ dir: String, _ put: KVRequest) async throws -> LogIndex? {
    let node = try OneReplica(dir: dir)
    let index = try await answers(node, put)
    // On every path, failed checks too: the loop's threads end here, not at the process's exit.
    try await node.close()
    return index
}

private func answers(_ node: OneReplica, _ put: KVRequest) async throws -> LogIndex? {
    try await node.waitLeader()
    guard case .applied(.ok, let index) = await node.loop.write(group: 0, put) else { Issue.record("the put was not applied"); return nil }
    // The retry: the first answer, applied once; another command under seq 1: refused.
    guard case .applied(.ok, _) = await node.loop.write(group: 0, put) else { Issue.record("the retry was not answered ok"); return nil }
    let other = KVRequest(client: "c", seq: 1, command: .put(key: "k", value: "v2"))
    #expect(await node.loop.write(group: 0, other) == .applied(.sequenceConflict(seq: 1), index: index + 2))
    guard case .value("v1", _) = await node.loop.read(group: 0, "k", .linearizable) else { Issue.record("the read missed the write"); return nil }
    #expect(node.loop.currentStatus.applied >= index)
    return index
}

/// Two groups share the WAL. Group 1 writes once and then idles: its entry sits in the first
/// segment and, without a snapshot of group 1, would keep every segment after it while group 0
/// writes on. Past `segmentsBeforePurge` segments the idle group snapshots, and the WAL stays short.
@Test func anIdleGroupDoesNotKeepTheSharedWALForever() async throws {
    let dir = tempDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let node = try OneReplica(dir: dir, groups: 2, segmentBytes: 16 << 10, segmentsBeforePurge: 3, snapshotEntries: 200)
    // On every path, a throw too: the loop's threads end here, not at the process's exit.
    do {
        try await node.waitLeader()
        #expect(await node.loop.write(group: 1, KVRequest(client: "idle", seq: 1, command: .put(key: "k", value: "v"))).isApplied)
        let value = String(repeating: "v", count: 100)
        let loop = node.loop
        for start in stride(from: 1, through: 1600, by: 32) {
            await withTaskGroup(of: Void.self) { writes in
                for seq in start..<start + 32 {
                    writes.addTask {
                        _ = await loop.write(group: 0, .anonymous(.put(key: "k\(seq % 50)", value: value)))
                    }
                }
            }
        }
        // About 100 entries fill a 16 KiB segment: 1,600 writes made 16 of them.
        let segments = try FileManager.default.contentsOfDirectory(atPath: dir + "/wal").filter { $0.hasSuffix(".wal") }
        #expect(segments.count <= 5, "\(segments.count) segments: \(segments.sorted())")
        #expect(node.loop.statuses[1].snapshotIndex >= 1, "the idle group never snapshotted")
        #expect(await node.loop.read(group: 1, "k", .linearizable).value == "v")
    } catch {
        try await node.close()
        throw error
    }
    try await node.close()
}

private extension KVReply {
    var isApplied: Bool { if case .applied(.ok, _) = self { return true } else { return false } }
    var value: String? { if case .value(let v, _) = self { return v } else { return nil } }
}
