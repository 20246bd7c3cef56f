import Core
import KVStore
import NIOCore
import NIOPosix
import NodeRuntime
import Raft
import RaftStorage
import Systemd

/// Raft mode's runtime: storage recovered, the loop, heartbeat detection on the peer port with
/// Raft's protocol as its guest, the peer transport, the HTTP API.
public enum RaftNodeMain {
    /// Runs the node until it is signalled. `detection` is the heartbeat part's options (the peer
    /// port, every peer's peer address).
    public static func run(_ o: RaftNodeOptions, detection: NodeOptions) -> Never {
        // Storage first, as before the runtimes were split: a node that cannot open its data
        // directory fails before it logs a start, and SIGTERM waits until recovery is done.
        let store: PreparedStore
        do { store = try prepare(o) } catch { NodeProcess.fail(detection, "\(error)") }
        let output = NodeProcess.begin(detection)
        do {
            let detectionStatus = try HeartbeatDetection.start(detection, output: output, guest: store.guest,
                                                               onVerdict: store.verdict)
            let status = try store.start(output)
            NodeProcess.serve(status: status + "; peer port " + detectionStatus)
        } catch {
            NodeProcess.fail(detection, "\(error)")
        }
    }

    /// The node's storage opened (its group count checked against the data directory's) and every
    /// group recovered, each group's store rebuilt from its snapshot.
    private static func recover(directory: String, sync: SyncMode, groups: Int) throws -> (DiskStorage, [RaftLoop.Recovery]) {
        let loaders = (0..<groups).map { _ in SnapshotLoader() }
        let (storage, recovered) = try DiskStorage.open(StorageOptions(directory: directory, sync: sync, groups: groups)) { g, chunk in
            try loaders[g].add(chunk)
        }
        var out: [RaftLoop.Recovery] = []
        for (g, r) in recovered.enumerated() {
            let state = r.snapshot.isEmpty ? KVStateMachine() : try loaders[g].finish(index: r.snapshot.index)
            if loaders[g].wasLegacy {
                // Written before chunked snapshots: rewrite it in chunks, so that it can be sent.
                try SnapshotLoader.rewrite(state, storage: storage, group: g, index: r.snapshot.index, term: r.snapshot.term)
            }
            out.append(RaftLoop.Recovery(recovered: r, state: state))
        }
        return (storage, out)
    }

    /// The store, recovered and wired, not yet talking: `start` connects it to its peers and opens
    /// the HTTP API once heartbeat detection (which carries `guest`) is up.
    private struct PreparedStore {
        var guest: PeerPortGuest
        /// The heartbeat detector's verdicts, for Raft: a silent leader is suspected before the
        /// election timeout would notice.
        var verdict: @Sendable (NodeID, _ alive: Bool) -> Void
        var start: (EventOutput) throws -> String
    }

    private static func prepare(_ o: RaftNodeOptions) throws -> PreparedStore {
        let ids = o.replicaIDs
        let me = ids[o.id]!
        var config = Raft.Config(id: me, voters: ids.values.sorted())
        let r = o.settings
        config.electionTicks = max(1, r.electionMs / r.tickMs)
        config.maxElectionTicks = max(config.electionTicks + 1, r.electionMaxMs / r.tickMs)
        config.heartbeatTicks = max(1, r.heartbeatMs / r.tickMs)
        config.seed = UInt64(truncatingIfNeeded: monotonicNow()) ^ UInt64(me)
        // Snapshots stream at disk and network speed (a GiB takes seconds): wait 30 s for an answer;
        // a stream that breaks off is reported and sent again at once.
        config.snapshotWaitTicks = max(config.electionTicks, 30_000 / r.tickMs)
        #if RAFT_PLANTED_BUGS
        // Test builds only: the failover experiment's planted loss (see Raft.PlantedBug).
        if let name = getenv("KV_PLANTED_BUG").map({ String(cString: $0) }) {
            guard let bug = Raft.PlantedBug(rawValue: name) else { throw PlantedBugError(name: name) }
            config.plantedBug = bug
        }
        #endif

        let nodeLabel = "kvnode \(o.id)"
        let (storage, recoveries) = try recover(directory: o.dataDir, sync: r.sync, groups: o.groups)
        // One thread for the Raft loop and its outbound peer connections; workers for snapshot files.
        let raftGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // Two workers write and read snapshot files; streams to peers (which wait on the network)
        // get workers of their own, so that a stuck peer cannot hold up this node's snapshots.
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        let streamPool = NIOThreadPool(numberOfThreads: 2)
        streamPool.start()
        let report: @Sendable (String) -> Void = { writeStderr("\(nodeLabel): \($0)") }
        let loop = RaftLoop(
            config: config,
            timing: RaftTiming(tickMs: r.tickMs, snapshotEntries: r.snapshotEntries, requestTimeoutMs: r.requestTimeoutMs),
            storage: storage, groups: recoveries, eventLoop: raftGroup.next(), pool: pool, streamPool: streamPool,
            report: report,
            onFatal: { message in
                writeStderr("\(nodeLabel): \(message)")
                exit(1)
            })
        let cluster = o.clusterID
        let dataDir = o.dataDir
        let inbound = PeerInbound(
            cluster: cluster, me: me, voters: Set(ids.values), groups: o.groups,
            deliver: { group, m in loop.submit(.message(group: group, m)) },
            disconnected: { peer in loop.submit(.peerDisconnected(peer)) },
            reject: report,
            snapshotPath: { group, index, term in
                DiskStorage.snapshotPath(directory: GroupLayout.directory(dataDir, group: group), index: index, term: term)
            },
            snapshotReceived: { group, m, writer in
                pool.submit { _ in
                    do {
                        try writer.finish(rename: false)
                        let state = try SnapshotLoader.load(writer.tempPath)
                        loop.submit(.snapshotReceived(group: group, m, state, tempPath: writer.tempPath))
                    } catch {
                        writer.discard()
                        report("snapshot \(writer.term)/\(writer.index) of group \(group) from replica \(m.from) refused: \(error)")
                    }
                }
            })
        let guest = PeerPortGuest(magic: MessageCodec.magic) { channel in
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RaftFrameDecoder()))
            try channel.pipeline.syncOperations.addHandler(RaftInboundHandler(inbound))
        }
        let ownURL = o.advertiseURL ?? "http://\(o.host == "0.0.0.0" || o.host == "::" ? "127.0.0.1" : o.host):\(o.httpPort)"
        var members: [ReplicaID: KVAPI.Member] = [me: .init(id: o.id.rawValue, httpURL: ownURL)]
        for p in o.peers { members[ids[p.id]!] = .init(id: p.id.rawValue, httpURL: p.httpURL) }
        let memberNames = members
        let api = KVAPI(selfID: o.id.rawValue, members: members, replica: loop,
                        defaultConsistency: r.readPolicy, syncMode: r.sync.rawValue)

        let verdict: @Sendable (NodeID, Bool) -> Void = { peer, alive in
            if let replica = ids[peer] { loop.submit(alive ? .peerTrusted(replica) : .peerSuspected(replica)) }
        }
        return PreparedStore(guest: guest, verdict: verdict) { output in
            if r.sync == .none {
                writeStderr("\(nodeLabel): --sync none: writes are acknowledged before they reach the disk; a crash of "
                            + "the host (not of this process) can lose acknowledged writes. For experiments only")
            }
            // The WAL is the node's, shared by its groups: one cut, told once, without a group.
            if let t = recoveries.first?.recovered.truncated {
                var e = Event(kind: .walTruncated, runID: o.runID, node: o.id)
                e.path = t.path
                e.offset = t.offset
                e.reason = t.reason
                output.emit(e)
            }
            let transport = PeerTransport(
                peers: o.peers.map { .init(replica: ids[$0.id]!, host: $0.peerHost, port: $0.peerPort) }, cluster: cluster, me: me,
                group: raftGroup, report: report)
            loop.start(transport: transport) { change in
                var e = Event(kind: change.kind == .elected ? .leaderElected : .leaderLost, runID: o.runID, node: o.id)
                e.leader = memberNames[change.leader].flatMap { NodeID(validating: $0.id) }
                e.term = change.term.value
                if o.groups > 1 { e.group = change.group }  // a one-group store's events read as before
                output.emit(e)
            } onStatus: { statuses in
                // One view of every group per report: the supervisor keeps one view per node.
                guard o.reportViaNotify else { return }
                let all = statuses.map { s in
                    RaftView.Group(id: s.group, role: s.role.rawValue, term: s.term.value, leader: s.leader.flatMap { memberNames[$0]?.id },
                                   commitIndex: s.commit.value, appliedIndex: s.applied.value)
                }
                let zero = all[0]
                let view = RaftView(role: zero.role, term: zero.term, leader: zero.leader, commitIndex: zero.commitIndex,
                                    appliedIndex: zero.appliedIndex, groups: all.count > 1 ? all : nil)
                Notifier.send([RaftView.notifyPrefix + view.jsonLine()])
            }
            transport.start()
            try HTTPServer.start(api: api, host: o.host, port: o.httpPort, group: MultiThreadedEventLoopGroup(numberOfThreads: 1),
                                 report: report)
            let zero = recoveries[0].recovered
            return "raft replica \(me) of \(ids.count), HTTP on \(o.host):\(o.httpPort), data in \(o.dataDir) "
                + (o.groups > 1 ? "(\(o.groups) groups; group 0: " : "(")
                + "term \(zero.hardState.term), \(zero.entries.count) entries after snapshot \(zero.snapshot.index))"
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

#if RAFT_PLANTED_BUGS
struct PlantedBugError: Error, CustomStringConvertible {
    var name: String
    var description: String {
        "KV_PLANTED_BUG=\(name): not a planted bug; one of " + Raft.PlantedBug.allCases.map(\.rawValue).joined(separator: ", ")
    }
}
#endif
