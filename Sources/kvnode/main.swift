import ArgumentParser
import Core
import NodeRuntime

/// kvnode: one node of the lab's cluster. Argument parsing only; behaviour lives in NodeRuntime.
struct KVNode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvnode",
        abstract: "One KV node: heartbeat failure detection (and later a replicated store).",
        discussion: """
            Seed two-node experiment:
              kvnode --id B --port 8002 --role monitored --log_path b.jsonl --hb_interval_ms 100 --hb_timeout_ms 200 --run_id manual
              kvnode --id A --port 8001 --role detector --peer_addr 127.0.0.1:8002 --log_path a.jsonl --hb_interval_ms 100 --hb_timeout_ms 200 --run_id manual
            Cluster member (as kvsupervisor starts it):
              kvnode --id A --port 7101 --peers B=127.0.0.1:7102,C=127.0.0.1:7103
            """)

    @Option(name: .customLong("id"), help: "Node id: 1-32 letters, digits, '-' or '_'.")
    var id: String
    @Option(name: .customLong("host"), help: "Address to listen on.")
    var host = "127.0.0.1"
    @Option(name: .customLong("port"), help: "TCP port to listen on.")
    var port: Int
    @Option(name: .customLong("role"), help: "peer (cluster member), detector or monitored (seed experiment).")
    var role: String = "peer"
    @Option(name: .customLong("peer_addr"), help: "HOST:PORT of the node a detector watches (repeatable).")
    var peerAddr: [String] = []
    @Option(name: .customLong("peers"), help: "Comma-separated ID=HOST:PORT list of cluster peers.")
    var peers: String = ""
    @Option(name: .customLong("hb_interval_ms"), help: "Heartbeat interval in ms.")
    var hbIntervalMs = 100
    @Option(name: .customLong("hb_timeout_ms"), help: "Silence after which a peer is declared dead, in ms.")
    var hbTimeoutMs = 200
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
        guard NodeRole(rawValue: role) != nil else { throw ValidationError("--role '\(role)': use peer, detector or monitored") }
        guard hbIntervalMs >= 1 else { throw ValidationError("--hb_interval_ms must be at least 1") }
        guard hbTimeoutMs > hbIntervalMs else {
            throw ValidationError("--hb_timeout_ms (\(hbTimeoutMs)) must be greater than --hb_interval_ms (\(hbIntervalMs))")
        }
        let spinRange = ClusterConfig.timerSpinUsRange
        guard spinRange.contains(timerSpinUs) else {
            throw ValidationError("--timer_spin_us \(timerSpinUs): must be \(spinRange.lowerBound)-\(spinRange.upperBound)")
        }
        if let events, events != "notify" { throw ValidationError("--events '\(events)': the only sink is 'notify'") }
        for p in peerAddr where PeerAddress.parse(p) == nil {
            throw ValidationError("--peer_addr '\(p)': expected HOST:PORT")
        }
        for p in peerList where PeerAddress.parse(p)?.id == nil {
            throw ValidationError("--peers entry '\(p)': expected ID=HOST:PORT")
        }
        if role == "detector" && peerAddr.isEmpty && peerList.isEmpty {
            throw ValidationError("--role detector needs --peer_addr HOST:PORT")
        }
    }

    var peerList: [String] { peers.split(separator: ",").map(String.init).filter { !$0.isEmpty } }

    func run() throws {
        let addresses = (peerAddr + peerList).compactMap(PeerAddress.parse)
        let options = NodeOptions(
            id: NodeID(validating: id)!, host: host, port: port, role: NodeRole(rawValue: role)!,
            peers: addresses, hbIntervalMs: hbIntervalMs, hbTimeoutMs: hbTimeoutMs, logPath: logPath,
            runID: runID, eventsViaNotify: events == "notify", timerSpinUs: timerSpinUs)
        try NodeMain.run(options)
    }
}

KVNode.main()
