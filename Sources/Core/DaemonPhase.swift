/// The supervisor daemon's phase, as GetStatus and STATUS= say it: starting -> running or
/// degraded (not every node ready in time) <-> reloading, and from any of them -> stopping, which
/// nothing leaves. `after` is the one place it moves.
public enum DaemonPhase: String, Sendable, CaseIterable {
    case starting, running, degraded, reloading, stopping

    public enum Change: Sendable, Equatable {
        /// The start is over: every node ready, or the ready timeout passed.
        case nodesUp(allReady: Bool)
        case reloadBegan
        /// Back to the phase the reload began in.
        case reloadEnded(was: DaemonPhase)
        case stopBegan
    }

    /// The phase after `change`, or nil when it does not apply in this one: stopping is final, a
    /// reload runs only once the nodes are up, and one ends only where one began.
    public func after(_ change: Change) -> DaemonPhase? {
        switch (self, change) {
        case (.stopping, _): return nil
        case (_, .stopBegan): return .stopping
        case (.starting, .nodesUp(let all)): return all ? .running : .degraded
        case (.running, .reloadBegan), (.degraded, .reloadBegan): return .reloading
        case (.reloading, .reloadEnded(let was)) where was == .running || was == .degraded: return was
        default: return nil
        }
    }
}
