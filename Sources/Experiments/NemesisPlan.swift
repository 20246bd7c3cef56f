import Core
import SplitMix

/// When the nemesis strikes and whom: the times come from the spec alone; the targets are chosen
/// when each strike comes, from the store as it is then (its leaders, which nodes run), with the
/// run's seeded generator, so one seed replays the same choices for the same store.
public enum NemesisPlan {
    public struct Strike: Sendable, Equatable {
        /// Since the workload began.
        public var atMs: Int
        /// Index into the spec's nemesis list.
        public var entry: Int
    }

    /// Every entry at every_ms, 2 every_ms, ...; a fault that would outlast the run is not started.
    public static func strikes(_ spec: LinearizabilitySpec) -> [Strike] {
        var out: [Strike] = []
        let end = spec.durationS * 1000
        for (i, n) in spec.nemesis.enumerated() {
            var at = n.everyMs
            while at + (n.forMs ?? 0) <= end {
                out.append(Strike(atMs: at, entry: i))
                at += n.everyMs
            }
        }
        return out.sorted { ($0.atMs, $0.entry) < ($1.atMs, $1.entry) }
    }

    /// The store when a strike comes.
    public struct View: Sendable {
        public var layout: StoreLayout
        /// Each group's (pair's) leader or active node, as the nodes report it.
        public var leaders: [Int: NodeID]
        public var running: Set<NodeID>
        /// The workload's keys' groups (for key-leader).
        public var keyGroups: [Int]
        public init(layout: StoreLayout, leaders: [Int: NodeID], running: Set<NodeID>, keyGroups: [Int]) {
            self.layout = layout; self.leaders = leaders; self.running = running; self.keyGroups = keyGroups
        }
    }

    public enum Action: Sendable, Equatable {
        /// Inject these (a kill's node is started again `restartAfterMs` later).
        case inject([FaultSpec], restartAfterMs: Int?)
        /// Nothing to strike now, and why (no leader known, no node running).
        case skip(String)
    }

    public static func resolve(_ n: NemesisSpec, view: View, rng: inout SplitMix64) -> Action {
        let storage = view.layout.storageNodes
        var targets: [NodeID]
        switch n.target {
        case .leader:
            guard let g = view.leaders.keys.sorted().randomElement(using: &rng), let l = view.leaders[g] else { return .skip("no leader is known") }
            targets = [l]
        case .keyLeader:
            guard let g = view.keyGroups.randomElement(using: &rng) else { return .skip("no workload key") }
            guard let l = view.leaders[g] else { return .skip("group \(g) has no leader known") }
            targets = [l]
        case .random:
            guard let node = view.layout.allNodes.filter(view.running.contains).randomElement(using: &rng) else {
                return .skip("no node is running")
            }
            targets = [node]
        case .minority, .halves:
            targets = Array(storage.shuffled(using: &rng).prefix(max(1, (storage.count - 1) / 2)))
        case .majority:
            targets = Array(storage.shuffled(using: &rng).prefix(storage.count / 2 + 1))
        case .node(let id):
            targets = [id]
        }
        targets.sort()
        switch n.fault {
        case .kill, .stop, .restart:
            targets = targets.filter(view.running.contains)
            guard !targets.isEmpty else { return .skip("its target is not running") }
            let kind: FaultKind = n.fault == .kill ? .kill : n.fault == .stop ? .stop : .restart
            return .inject(targets.map { FaultSpec(kind: kind, node: $0, forMs: n.fault == .stop ? n.forMs : nil) },
                           restartAfterMs: n.fault == .kill ? n.forMs : nil)
        case .delay:
            return .inject(targets.map { FaultSpec(kind: .delay, node: $0, forMs: n.forMs, delayMs: n.delayMs, jitterMs: n.jitterMs,
                                                   direction: n.direction) },
                           restartAfterMs: nil)
        case .partition:
            // The targets on one side, every other node (primary-backup's coordinator too) on the other.
            let others = view.layout.allNodes.filter { !targets.contains($0) }
            guard !others.isEmpty else { return .skip("no node is left on the other side") }
            return .inject(targets.map { FaultSpec(kind: .partition, node: $0, forMs: n.forMs, peers: targets.count == 1 ? nil : others,
                                                   direction: n.direction) },
                           restartAfterMs: nil)
        }
    }
}
