import Core
import Detection

/// How a node takes part in heartbeating.
public enum NodeRole: String, Sendable, CaseIterable {
    /// Cluster member: sends heartbeats to every peer and watches every peer.
    case peer
    /// Seed CLI: connects to `--peer_addr` and watches what comes back; sends nothing.
    case detector
    /// Seed CLI: answers every inbound connection with heartbeats; watches nobody.
    case monitored
}

public struct PeerAddress: Sendable, Equatable {
    public var id: NodeID?
    public var host: String
    public var port: Int

    public init(id: NodeID?, host: String, port: Int) { self.id = id; self.host = host; self.port = port }

    /// Parses "HOST:PORT" or "ID=HOST:PORT".
    public static func parse(_ text: String) -> PeerAddress? {
        var rest = Substring(text)
        var id: NodeID? = nil
        if let eq = rest.firstIndex(of: "=") {
            guard let parsed = NodeID(validating: String(rest[..<eq])) else { return nil }
            id = parsed
            rest = rest[rest.index(after: eq)...]
        }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
              (1...65535).contains(port) else { return nil }
        let host = String(rest[..<colon])
        guard !host.isEmpty else { return nil }
        return PeerAddress(id: id, host: host, port: port)
    }
}

public struct NodeOptions: Sendable {
    public var id: NodeID
    public var host: String
    public var port: Int
    public var role: NodeRole
    public var peers: [PeerAddress]
    public var hbIntervalMs: Int
    public var hbTimeoutMs: Int
    public var logPath: String?
    public var runID: String
    /// Send events as `KV_EVENT=<json>` datagrams on NOTIFY_SOCKET (set when run by kvsupervisor).
    public var eventsViaNotify: Bool
    /// The timing thread sleeps until this long before a beat or deadline and spins the rest.
    public var timerSpinUs: Int
    /// fixed (declared dead after hbTimeoutMs of silence) or phi (accrual, see `FailureDetector`).
    public var detector: FailureDetector.Kind = .fixed
    public var phiThreshold: Double = 8
    /// The start event's reason, for a runtime other than heartbeat detection (default: role, peers, timing).
    public var startDescription: String?

    public init(id: NodeID, host: String = "127.0.0.1", port: Int, role: NodeRole, peers: [PeerAddress],
                hbIntervalMs: Int, hbTimeoutMs: Int, logPath: String?, runID: String, eventsViaNotify: Bool,
                timerSpinUs: Int = ClusterConfig.defaultTimerSpinUs) {
        self.id = id; self.host = host; self.port = port; self.role = role; self.peers = peers
        self.hbIntervalMs = hbIntervalMs; self.hbTimeoutMs = hbTimeoutMs; self.logPath = logPath
        self.runID = runID; self.eventsViaNotify = eventsViaNotify; self.timerSpinUs = timerSpinUs
    }
}
