import Core

public enum NodeState: String, Sendable, Codable {
    case starting, ready, stopped, paused, exited

    /// Counted in "N/M nodes ready": a node paused by a stop fault is up but serves nothing, so it
    /// is counted apart ("(1 paused)"), not as ready.
    public var countsAsReady: Bool { self == .ready }
}

/// A read-only view of one node, for status calls.
public struct NodeStatus: Sendable, Equatable {
    public var id: NodeID
    public var pid: Int32?
    public var state: NodeState
    public var port: Int
    public var restarts: Int
    public var lastExit: ExitCause?
    public var startedWallMs: WallMillis?
    /// Raft mode: the node's last report of its role, term, leader and indexes (nil once it exits).
    public var raft: RaftView?
}
