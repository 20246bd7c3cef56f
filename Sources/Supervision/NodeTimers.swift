import Core

/// One cancellable timer per node: arming a node's timer cancels the one it had, so a timer that
/// fires is always the latest armed for its node.
struct NodeTimers {
    private var tasks: [NodeID: Task<Void, Never>] = [:]

    mutating func arm(_ id: NodeID, afterMs: Int, _ fire: @escaping @Sendable () async -> Void) {
        tasks[id]?.cancel()
        tasks[id] = Task {
            try? await Task.sleep(for: .milliseconds(afterMs))
            guard !Task.isCancelled else { return }
            await fire()
        }
    }

    mutating func cancel(_ id: NodeID) {
        tasks.removeValue(forKey: id)?.cancel()
    }
}
