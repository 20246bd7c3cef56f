import Core

/// One cancellable timer per node. A fired timer's input still goes through the node table,
/// which drops it if its generation or token is stale: a timer cancelled while it waited to
/// enter the actor does no harm.
struct NodeTimers {
    private var pending: [NodeID: (deadline: MonotonicNanos, task: Task<Void, Never>)] = [:]

    /// Replaces the node's timer with one firing `afterMs` from now.
    mutating func arm(_ id: NodeID, afterMs: Int, _ fire: @escaping @Sendable () async -> Void) {
        pending[id]?.task.cancel()
        let deadline = monotonicNow() + Int64(afterMs) * 1_000_000
        pending[id] = (deadline, Task {
            try? await Task.sleep(for: .milliseconds(afterMs))
            guard !Task.isCancelled else { return }
            await fire()
        })
    }

    /// As `arm`, unless the node's timer already fires sooner: a second stop must not postpone
    /// the SIGKILL the first one promised.
    mutating func armUnlessSooner(_ id: NodeID, afterMs: Int, _ fire: @escaping @Sendable () async -> Void) {
        if let current = pending[id], current.deadline <= monotonicNow() + Int64(afterMs) * 1_000_000 { return }
        arm(id, afterMs: afterMs, fire)
    }

    mutating func cancel(_ id: NodeID) {
        pending.removeValue(forKey: id)?.task.cancel()
    }
}
