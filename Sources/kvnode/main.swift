import ArgumentParser
import Core
import Detection
import NodeRuntime
import PrimaryBackupNode
import RaftNode
import RaftStorage

/// kvnode: one node of the lab's cluster. Argument parsing only; behaviour lives in NodeRuntime.
struct KVNode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvnode",
        abstract: "One KV node: heartbeat failure detection, and in raft mode a replicated, durable KV store.",
        discussion: """
            Seed two-node experiment:
              kvnode --id B --port 8002 --role monitored --log_path b.jsonl --hb_interval_ms 100 --hb_timeout_ms 200 --run_id manual
              kvnode --id A --port 8001 --role detector --peer_addr 127.0.0.1:8002 --log_path a.jsonl --hb_interval_ms 100 --hb_timeout_ms 200 --run_id manual
            Heartbeat cluster member:
              kvnode --id A --port 7101 --peers B=127.0.0.1:7102,C=127.0.0.1:7103
            Raft KV node, as the original store (HTTP on -port; Raft and heartbeats on port + 1000):
              kvnode -id node1 -port 8080 -peers "node2=http://localhost:8081,node3=http://localhost:8082"
            One-node KV store (no peers: data in ./data/node1), then curl localhost:8080/status:
              kvnode -id node1 -port 8080
            Primary-backup: a coordinator (the name manager) and a pair, A primary, B its backup:
              kvnode --mode coordinator --id NM --port 8100 --pairs A:B --nodes A=http://127.0.0.1:8101,B=http://127.0.0.1:8102
              kvnode --mode primary-backup --id A --port 8101 --coordinator http://127.0.0.1:8100 --pairs A:B --nodes A=http://127.0.0.1:8101,B=http://127.0.0.1:8102
              kvnode --mode primary-backup --id B --port 8102 --coordinator http://127.0.0.1:8100 --pairs A:B --nodes A=http://127.0.0.1:8101,B=http://127.0.0.1:8102
            """)

    @Option(name: [.customLong("id"), .customLong("id", withSingleDash: true)], help: "Node id: 1-32 letters, digits, '-' or '_'.")
    var id: String
    @Option(name: .customLong("mode"),
            help: "heartbeat, raft, primary-backup (a storage node), coordinator (primary-backup's name manager), or auto: raft when --peers gives http:// URLs, --data-dir is set, or there are no peers at all (a one-node store); heartbeat otherwise.")
    var mode = ModeFlag.auto
    @Option(name: .customLong("host"), help: "Address to listen on.")
    var host = "127.0.0.1"
    @Option(name: [.customLong("port"), .customLong("port", withSingleDash: true)],
            help: "TCP port: heartbeats in heartbeat mode, the HTTP API in raft mode.")
    var port: Int
    @Option(name: .customLong("role"), help: "peer (cluster member), detector or monitored (seed experiment).")
    var role = NodeRole.peer
    @Option(name: .customLong("peer_addr"), help: "HOST:PORT of the node a detector watches (repeatable).")
    var peerAddr: [String] = []
    @Option(name: [.customLong("peers"), .customLong("peers", withSingleDash: true)],
            help: "Comma-separated cluster peers: ID=HOST:PORT (heartbeat) or ID=http://HOST:PORT (raft: their HTTP API).")
    var peers: String = ""

    // Raft mode.
    @Option(name: .customLong("peer-port"), help: "Raft: port for Raft and heartbeat traffic from peers (default: --port + 1000).")
    var peerPort: Int?
    @Option(name: .customLong("raft-peers"),
            help: "Raft: ID=HOST:PORT where to send each peer its Raft traffic (default: its --peers host, HTTP port + 1000).")
    var raftPeers: String = ""
    @Option(name: [.customLong("data-dir"), .customLong("data-dir", withSingleDash: true)],
            help: "Raft: the WAL and snapshots (default: ./data/ID).")
    var dataDir: String?
    @Option(name: flag(.sync), help: "Raft: fdatasync (every acknowledged write is on disk) or none (experiments only).")
    var sync = RaftSettings().sync
    @Option(name: flag(.tick), help: "Raft: the logical clock's tick.")
    var tickMs = RaftSettings().tickMs
    @Option(name: flag(.heartbeat), help: "Raft: leader heartbeat interval.")
    var heartbeatMs = RaftSettings().heartbeatMs
    @Option(name: flag(.election), help: "Raft: election timeout, lower bound (each timeout is random in [election-ms, election-max-ms)).")
    var electionMs = RaftSettings().electionMs
    @Option(name: flag(.electionMax), help: "Raft: election timeout, upper bound.")
    var electionMaxMs = RaftSettings().electionMaxMs
    @Option(name: flag(.snapshotEntries), help: "Raft: snapshot and compact the log every this many applied entries.")
    var snapshotEntries = RaftSettings().snapshotEntries
    @Option(name: flag(.groups),
            help: "Raft: groups on the same peers, each key in group sha256(key)[0] % groups; every member runs the same number.")
    var groups = RaftSettings().groups
    @Option(name: .customLong("request-timeout-ms"), help: "Raft: answer 503 'outcome unknown' after this long.")
    var requestTimeoutMs = RaftSettings().requestTimeoutMs
    @Option(name: .customLong("advertise-url"), help: "Raft: this node's HTTP address as clients reach it (shown in /status).")
    var advertiseURL: String?
    @Option(name: .customLong("cluster-token"),
            help: "Raft: names this cluster in every peer connection's hello, with the member ids; a peer with another token or other members is refused.")
    var clusterToken = "kvnode"
    @Option(name: flag(.readPolicy), help: "Raft: default read consistency, linearizable or stale (per request: ?consistency=).")
    var readPolicy = RaftSettings().readPolicy
    // Primary-backup mode.
    @Option(name: .customLong("pairs"), help: "Primary-backup: PRIMARY:BACKUP,... (each key in pair sha256(key)[0] % pairs).")
    var pairs: String = ""
    @Option(name: .customLong("nodes"), help: "Primary-backup: every storage node's HTTP API, ID=http://HOST:PORT,...")
    var pbNodes: String = ""
    @Option(name: .customLong("links"),
            help: "Primary-backup: ID=HOST:PORT where this process sends its own requests to each node (default: its --nodes address).")
    var pbLinks: String = ""
    @Option(name: .customLong("coordinator"), help: "Primary-backup storage node: the coordinator's HTTP API, http://HOST:PORT.")
    var coordinator: String?
    @Option(name: .customLong("pb-check-interval-ms"), help: "Primary-backup: nodes beat, and the coordinator checks, this often.")
    var pbCheckIntervalMs = PrimaryBackupSettings().checkIntervalMs
    @Option(name: .customLong("pb-fail-after-ms"), help: "Primary-backup: a node silent this long is declared dead at the next check.")
    var pbFailAfterMs = PrimaryBackupSettings().failAfterMs
    @Option(name: .customLong("replication-path"),
            help: "Primary-backup: coordinator (writes reach the backup through it, as in the original) or direct.")
    var replicationPath = PrimaryBackupSettings().replicationPath

    @Option(name: .customLong("hb_interval_ms"), help: "Heartbeat interval in ms.")
    var hbIntervalMs = 100
    @Option(name: .customLong("hb_timeout_ms"), help: "Silence after which a peer is declared dead, in ms.")
    var hbTimeoutMs = 200
    @Option(name: .customLong("detector"), help: "fixed (dead after --hb_timeout_ms of silence) or phi (accrual; T - I is its acceptable pause).")
    var detector = FailureDetector.Kind.fixed
    @Option(name: .customLong("phi_threshold"), help: "phi detector: declare dead when phi reaches this (Akka's default is 8).")
    var phiThreshold = 8.0
    @Option(name: .customLong("log_path"), help: "Append JSONL events to this file.")
    var logPath: String?
    @Option(name: .customLong("run_id"), help: "Run id written into every event.")
    var runID = "manual"
    @Option(name: .customLong("events"), help: "Also send events to: notify (NOTIFY_SOCKET, as kvsupervisor asks).")
    var events: String?
    @Option(name: .customLong("timer_spin_us"),
            help: "Sleep until this long before each heartbeat or deadline and spin the rest (0: never spin).")
    var timerSpinUs = ClusterConfig.defaultTimerSpinUs

    func validate() throws {
        guard NodeID(validating: id) != nil else { throw ValidationError("--id '\(id)': use 1-32 letters, digits, '-' or '_'") }
        guard (1...65535).contains(port) else { throw ValidationError("--port \(port): must be 1-65535") }
        guard hbIntervalMs >= 1 else { throw ValidationError("--hb_interval_ms must be at least 1") }
        guard hbTimeoutMs > hbIntervalMs else {
            throw ValidationError("--hb_timeout_ms (\(hbTimeoutMs)) must be greater than --hb_interval_ms (\(hbIntervalMs))")
        }
        let spinRange = ClusterConfig.timerSpinUsRange
        guard spinRange.contains(timerSpinUs) else {
            throw ValidationError("--timer_spin_us \(timerSpinUs): must be \(spinRange.lowerBound)-\(spinRange.upperBound)")
        }
        guard phiThreshold > 0, phiThreshold <= 100 else { throw ValidationError("--phi_threshold \(phiThreshold): must be in (0, 100]") }
        if let events, events != "notify" { throw ValidationError("--events '\(events)': the only sink is 'notify'") }
        for p in peerAddr where PeerAddress.parse(p) == nil {
            throw ValidationError("--peer_addr '\(p)': expected HOST:PORT")
        }
        for p in peerList where PeerAddress.parse(Self.strippingScheme(p))?.id == nil {
            throw ValidationError("--peers entry '\(p)': expected ID=HOST:PORT or ID=http://HOST:PORT")
        }
        if isRaft {
            for p in raftPeerList where PeerAddress.parse(p)?.id == nil {
                throw ValidationError("--raft-peers entry '\(p)': expected ID=HOST:PORT")
            }
            guard (1...65535).contains(resolvedPeerPort) else {
                throw ValidationError("peer port \(resolvedPeerPort) is out of range: set --peer-port")
            }
            if let problem = try raftOptions().problem() { throw ValidationError(problem) }
        }
        if mode == .primaryBackup || mode == .coordinator {
            let o = try pbOptions()
            if let problem = o.problem(coordinator: mode == .coordinator) { throw ValidationError(problem) }
        }
        if role == .detector && peerAddr.isEmpty && peerList.isEmpty {
            throw ValidationError("--role detector needs --peer_addr HOST:PORT")
        }
    }

    var peerList: [String] { peers.split(separator: ",").map(String.init).filter { !$0.isEmpty } }
    var raftPeerList: [String] { raftPeers.split(separator: ",").map(String.init).filter { !$0.isEmpty } }
    /// With no peers and no seed role, a node is the original store's single node: a one-node KV store.
    var isRaft: Bool {
        mode == .raft || (mode == .auto && (peers.contains("://") || dataDir != nil || (peerList.isEmpty && peerAddr.isEmpty && role == .peer)))
    }
    var resolvedPeerPort: Int { peerPort ?? port + 1000 }

    /// "ID=http://HOST:PORT/" -> "ID=HOST:PORT".
    static func strippingScheme(_ entry: String) -> String {
        let (id, address): (Substring, Substring) = entry.firstIndex(of: "=").map { (entry[...$0], entry[entry.index(after: $0)...]) }
            ?? ("", entry[...])
        for scheme in ["http://", "https://"] where address.hasPrefix(scheme) {
            let rest = address.dropFirst(scheme.count).split(separator: "/", maxSplits: 1).first ?? ""
            return String(id) + rest
        }
        return entry
    }

    func raftOptions() throws -> RaftNodeOptions {
        let explicit = Dictionary(raftPeerList.compactMap(PeerAddress.parse).map { ($0.id!, $0) }, uniquingKeysWith: { a, _ in a })
        let members = peerList.compactMap { entry -> RaftNodeOptions.Member? in
            guard let http = PeerAddress.parse(Self.strippingScheme(entry)), let peerID = http.id else { return nil }
            let raft = explicit[peerID]
            return .init(id: peerID, httpURL: "http://\(http.host):\(http.port)", peerHost: raft?.host ?? http.host,
                         peerPort: raft?.port ?? http.port + 1000)
        }
        if let stray = explicit.keys.first(where: { k in !members.contains { $0.id == k } }) {
            throw ValidationError("--raft-peers names \(stray), which --peers does not")
        }
        return RaftNodeOptions(
            id: NodeID(validating: id)!, host: host, httpPort: port, peerPort: resolvedPeerPort, peers: members,
            dataDir: dataDir ?? "data/\(id)", settings: raftSettings, runID: runID)
    }

    var raftSettings: RaftSettings {
        var r = RaftSettings()
        r.tickMs = tickMs; r.heartbeatMs = heartbeatMs; r.electionMs = electionMs; r.electionMaxMs = electionMaxMs
        r.snapshotEntries = snapshotEntries; r.sync = sync; r.readPolicy = readPolicy; r.requestTimeoutMs = requestTimeoutMs
        r.groups = groups
        return r
    }

    /// A Raft setting's flag, as RaftSettings names it (the supervisor passes the same names).
    static func flag(_ f: RaftSettings.Field) -> NameSpecification {
        .customLong(String(RaftSettings.flag(f).dropFirst(2)))
    }

    /// "ID=ADDRESS,..." of a primary-backup flag, each address http://HOST:PORT or HOST:PORT.
    static func addresses(_ text: String, flag: String, expected: String) throws -> [NodeID: HTTPAddress] {
        var out: [NodeID: HTTPAddress] = [:]
        for entry in text.split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let id = NodeID(validating: parts[0]), let address = HTTPAddress.parse(parts[1]) else {
                throw ValidationError("\(flag) entry '\(entry)': expected \(expected)")
            }
            out[id] = address
        }
        return out
    }

    func pbOptions() throws -> PBOptions {
        let nodes = try Self.addresses(pbNodes, flag: "--nodes", expected: "ID=http://HOST:PORT")
        let links = try Self.addresses(pbLinks, flag: "--links", expected: "ID=HOST:PORT")
        var pairList: [(primary: NodeID, backup: NodeID)] = []
        for entry in pairs.split(separator: ",") {
            let parts = entry.split(separator: ":").map(String.init)
            guard parts.count == 2, let p = NodeID(validating: parts[0]), let b = NodeID(validating: parts[1]) else {
                throw ValidationError("--pairs entry '\(entry)': expected PRIMARY:BACKUP")
            }
            pairList.append((p, b))
        }
        let me = NodeID(validating: id)!
        let coordinatorAddress: HTTPAddress
        if mode == .coordinator {
            coordinatorAddress = HTTPAddress(host: host, port: port)
        } else {
            guard let text = coordinator else { throw ValidationError("--mode primary-backup needs --coordinator http://HOST:PORT") }
            guard let a = HTTPAddress.parse(text) else { throw ValidationError("--coordinator '\(text)': expected http://HOST:PORT") }
            coordinatorAddress = a
        }
        var o = PBOptions(id: me, host: host, port: port, runID: runID, coordinator: coordinatorAddress, nodes: nodes, pairs: pairList,
                          checkIntervalMs: pbCheckIntervalMs, failAfterMs: pbFailAfterMs, replicationPath: replicationPath.rawValue)
        o.links = links
        o.reportViaNotify = events == "notify"
        o.logPath = logPath
        return o
    }

    /// kvnode runs one of four runtimes, chosen by mode; heartbeat detection is a part of the first two.
    func run() throws {
        switch mode {
        case .primaryBackup: PrimaryBackupMain.runStorageNode(try pbOptions())
        case .coordinator: PrimaryBackupMain.runCoordinator(try pbOptions())
        default: break
        }
        if isRaft {
            var raft = try raftOptions()
            raft.reportViaNotify = events == "notify"
            raft.advertiseURL = advertiseURL
            raft.clusterToken = clusterToken
            // Raft mode's detection listens on the peer port and beats to every peer's peer address.
            let detection = detectionOptions(port: raft.peerPort,
                                             peers: raft.peers.map { PeerAddress(id: $0.id, host: $0.peerHost, port: $0.peerPort) })
            RaftNodeMain.run(raft, detection: detection)
        }
        HeartbeatNodeMain.run(detectionOptions(port: port, peers: (peerAddr + peerList).compactMap(PeerAddress.parse)))
    }

    private func detectionOptions(port: Int, peers: [PeerAddress]) -> NodeOptions {
        var options = NodeOptions(
            id: NodeID(validating: id)!, host: host, port: port, role: isRaft ? .peer : role, peers: peers,
            hbIntervalMs: hbIntervalMs, hbTimeoutMs: hbTimeoutMs, logPath: logPath, runID: runID,
            eventsViaNotify: events == "notify", timerSpinUs: timerSpinUs)
        options.detector = detector
        options.phiThreshold = phiThreshold
        return options
    }
}

NodeProcess.blockTerminationSignals()
/// kvnode's --mode: the runtime to run, or `auto` to choose from the other flags.
enum ModeFlag: String, CaseIterable, ExpressibleByArgument {
    case auto, heartbeat, raft, coordinator
    case primaryBackup = "primary-backup"
}

// Typed flags: ArgumentParser refuses another value and lists the allowed ones.
extension NodeRole: ExpressibleByArgument {}
extension FailureDetector.Kind: ExpressibleByArgument {}
extension SyncMode: ExpressibleByArgument {}
extension ReadPolicy: ExpressibleByArgument {}
extension PrimaryBackupSettings.ReplicationPath: ExpressibleByArgument {}

KVNode.main()
