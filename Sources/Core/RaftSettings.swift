/// Whether an acknowledged write has reached the disk.
public enum SyncMode: String, Sendable, CaseIterable {
    /// fdatasync before every acknowledgement (one per batch: group commit).
    case fdatasync
    /// Experiments only: acknowledged before the disk has it; a host crash can lose it.
    case none
}

/// How a GET reads, by default (`read_policy`) or per request (`?consistency=`).
public enum ReadPolicy: String, Sendable, CaseIterable {
    /// ReadIndex: confirmed by a quorum round, served once applied through the commit index.
    case linearizable
    /// This replica's store as it is, without asking anyone.
    case stale
}

/// Raft mode's settings ([cluster] keys, kvnode flags): the one place their defaults, ranges and
/// the rules between them are written. The config file, the supervisor's kvnode command line,
/// kvnode's flags and `Raft.Config` all start here.
public struct RaftSettings: Sendable, Equatable {
    public var tickMs = 10
    public var heartbeatMs = 50
    public var electionMs = 150
    public var electionMaxMs = 300
    public var snapshotEntries = 10_000
    public var sync = SyncMode.fdatasync
    public var readPolicy = ReadPolicy.linearizable
    /// Raft groups on the same nodes, each key in group `KeyGroups.group(of:groups:)`. Fixed for a
    /// data directory's life (kvnode refuses another count).
    public var groups = 1
    /// kvnode's alone (no config key): a request whose outcome is not known by then is answered
    /// 503 "outcome unknown".
    public var requestTimeoutMs = 3000
    public init() {}

    public enum Field: Sendable, CaseIterable { case tick, heartbeat, election, electionMax, snapshotEntries, sync, readPolicy, groups }

    /// The whole numbers a field may take, whatever the others are.
    public static func range(_ f: Field) -> ClosedRange<Int>? {
        switch f {
        case .tick: 1...1000
        case .heartbeat: 1...60_000
        case .election, .electionMax: 1...600_000
        case .snapshotEntries: 1...100_000_000
        case .groups: 1...KeyGroups.maxGroups
        case .sync, .readPolicy: nil
        }
    }

    public func value(_ f: Field) -> String {
        switch f {
        case .tick: String(tickMs)
        case .heartbeat: String(heartbeatMs)
        case .election: String(electionMs)
        case .electionMax: String(electionMaxMs)
        case .snapshotEntries: String(snapshotEntries)
        case .sync: sync.rawValue
        case .readPolicy: readPolicy.rawValue
        case .groups: String(groups)
        }
    }

    /// A broken rule: `field`'s value `rule`s, naming the other fields as the reader knows them.
    public struct Problem: Sendable, Equatable {
        public var field: Field
        /// e.g. "150 must be at least twice raft_heartbeat_ms (100), or followers campaign between heartbeats".
        public var message: String
        public init(field: Field, message: String) { self.field = field; self.message = message }
    }

    /// The first rule broken; `name` says each field as the reader knows it (a config key or a
    /// kvnode flag). nil when the settings make sense.
    public func problem(naming name: (Field) -> String) -> Problem? {
        for f in Field.allCases {
            if let range = Self.range(f), let n = Int(value(f)), !range.contains(n) {
                return Problem(field: f, message: "\(n) is out of range \(range.lowerBound)...\(range.upperBound)")
            }
        }
        if heartbeatMs < tickMs {
            return Problem(field: .heartbeat, message: "\(heartbeatMs) must be at least \(name(.tick)) (\(tickMs))")
        }
        if electionMs < 2 * heartbeatMs {
            return Problem(field: .election, message: "\(electionMs) must be at least twice \(name(.heartbeat)) (\(heartbeatMs)), "
                           + "or followers campaign between heartbeats")
        }
        if electionMaxMs <= electionMs {
            return Problem(field: .electionMax, message: "\(electionMaxMs) must exceed \(name(.election)) (\(electionMs))")
        }
        return nil
    }

    /// The [cluster] keys.
    public static func configKey(_ f: Field) -> String {
        switch f {
        case .tick: "tick_ms"
        case .heartbeat: "raft_heartbeat_ms"
        case .election: "election_ms"
        case .electionMax: "election_max_ms"
        case .snapshotEntries: "snapshot_entries"
        case .sync: "sync"
        case .readPolicy: "read_policy"
        case .groups: "groups"
        }
    }

    /// kvnode's flags.
    public static func flag(_ f: Field) -> String {
        switch f {
        case .tick: "--tick-ms"
        case .heartbeat: "--heartbeat-ms"
        case .election: "--election-ms"
        case .electionMax: "--election-max-ms"
        case .snapshotEntries: "--snapshot-entries"
        case .sync: "--sync"
        case .readPolicy: "--read-policy"
        case .groups: "--groups"
        }
    }

    /// kvnode's command line for these settings, as the supervisor passes them.
    public var arguments: [String] {
        Field.allCases.flatMap { [Self.flag($0), value($0)] }
    }
}
