import Core

/// A host and port to reach over HTTP.
public struct HTTPAddress: Sendable, Equatable {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) { self.host = host; self.port = port }
    public var url: String { "http://\(host):\(port)" }

    /// "http://HOST:PORT", "HOST:PORT"; nil otherwise.
    public static func parse(_ text: String) -> HTTPAddress? {
        var rest = Substring(text)
        if rest.hasPrefix("http://") { rest = rest.dropFirst(7) }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port),
              colon > rest.startIndex else { return nil }
        return HTTPAddress(host: String(rest[..<colon]), port: port)
    }
}

/// What both primary-backup processes need: who they are, where everyone's HTTP API is, timing.
public struct PBOptions: Sendable {
    public var id: NodeID
    public var host: String
    public var port: Int
    public var runID: String
    /// The coordinator's HTTP API (storage nodes) or this one's (the coordinator).
    public var coordinator: HTTPAddress
    /// Every storage node's HTTP API, by id: what clients are redirected to.
    public var nodes: [NodeID: HTTPAddress]
    /// Where this process sends its own traffic to a node, when not straight to `nodes` (under
    /// kvsupervisor: the link proxy from this node to that one, so that faults can cut or delay it).
    public var links: [NodeID: HTTPAddress] = [:]
    /// primary -> backup, in pair order.
    public var pairs: [(primary: NodeID, backup: NodeID)]
    /// Storage nodes beat this often; the coordinator checks their silence this often.
    public var checkIntervalMs: Int
    /// Silence after which the coordinator declares a storage node dead.
    public var failAfterMs: Int
    /// "direct" or "coordinator".
    public var replicationPath: String
    public var reportViaNotify = false
    public var logPath: String?

    public init(id: NodeID, host: String, port: Int, runID: String, coordinator: HTTPAddress, nodes: [NodeID: HTTPAddress],
                pairs: [(primary: NodeID, backup: NodeID)], checkIntervalMs: Int, failAfterMs: Int, replicationPath: String) {
        self.id = id; self.host = host; self.port = port; self.runID = runID; self.coordinator = coordinator; self.nodes = nodes
        self.pairs = pairs; self.checkIntervalMs = checkIntervalMs; self.failAfterMs = failAfterMs; self.replicationPath = replicationPath
    }

    /// Where this process's own requests to node `n` go.
    func traffic(to n: NodeID) -> HTTPAddress? { links[n] ?? nodes[n] }

    /// Storage nodes' replica numbers for the store's API (sorted ids from 1), as raft mode numbers them.
    var replicaIDs: [NodeID: Int] {
        Dictionary(uniqueKeysWithValues: nodes.keys.sorted().enumerated().map { ($0.element, $0.offset + 1) })
    }

    /// A problem with the options, said as what to change; nil when they make sense.
    public func problem(coordinator isCoordinator: Bool) -> String? {
        if pairs.isEmpty { return "--pairs is empty: give PRIMARY:BACKUP,..." }
        let members = pairs.flatMap { [$0.primary, $0.backup] }
        if Set(members).count != members.count { return "--pairs names a node twice" }
        if let missing = members.first(where: { nodes[$0] == nil }) { return "--nodes gives no address for \(missing)" }
        if !isCoordinator && !members.contains(id) { return "this node (\(id)) is in no pair of --pairs" }
        if isCoordinator && members.contains(id) { return "the coordinator (\(id)) cannot also be a storage node" }
        if checkIntervalMs < 1 { return "--pb-check-interval-ms must be at least 1" }
        if failAfterMs < checkIntervalMs { return "--pb-fail-after-ms (\(failAfterMs)) must be at least --pb-check-interval-ms (\(checkIntervalMs))" }
        if replicationPath != "direct" && replicationPath != "coordinator" { return "--replication-path \(replicationPath): use direct or coordinator" }
        return nil
    }
}
