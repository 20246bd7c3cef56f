import Core

/// A fault that was applied, as the correlator and status calls need it.
public struct FaultRecord: Sendable, Equatable {
    public var id: String
    public var spec: FaultSpec
    /// Every node whose traffic or process the fault touches (partition: both sides).
    public var affected: [NodeID]
    public var requested: Stamp
    public var applied: Stamp
}

public enum FaultError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    case notRunning(NodeID, state: String)
    case noSuchNode(NodeID)
    /// Cancel: no scheduled fault by that id (unknown, or already applied).
    case noSuchFault(String, why: String)

    public var description: String {
        switch self {
        case .invalid(let why): return why
        case .noSuchNode(let id): return "no node '\(id)'"
        case .noSuchFault(let id, let why): return "cannot cancel fault \(id): \(why)"
        case .notRunning(let id, let state):
            return "node '\(id)' is not running (state: \(state)); start it first with: kvctl start \(id)"
        }
    }
}
