import Core

public enum NodeState: String, Sendable, Codable {
    case starting, ready, stopped, paused, exited
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
}
