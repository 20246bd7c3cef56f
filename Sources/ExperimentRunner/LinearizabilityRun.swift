import Core
import Events
import Experiments
import Linearizability
import SplitMix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Carries out a linearizability run: a store of its own, `clients` clients over HTTP for
/// `duration_s`, the nemesis striking on its plan; then every fault healed and every node back,
/// and the history written (history.jsonl), with what the nemesis did (nemesis.jsonl), and
/// checked per key in parallel (check.json and a counterexample page per failing key).
struct LinearizabilityRun {
    let spec: LinearizabilitySpec
    let directory: RunDirectory
    let hub: EventHub
    let environment: ExperimentEnvironment
    let session: Int
    let log: @Sendable (NodeID?, String) -> Void

    typealias Op = Linearizability.Operation<KVModel.Input, KVModel.Output>

    func run() async throws -> LinearizabilityCheck {
        // A session that died left its store's data and a partial history behind: the run starts over.
        for name in directory.entries() where name.hasPrefix("data-") { removeTree(directory.path + "/" + name) }
        for name in directory.entries() where name.hasPrefix("counterexample-") { unlink(directory.path + "/" + name) }
        let cluster = try await startStore()
        let history: [Op], excluded: [Op]
        let actions: [NemesisRecord]
        do {
            (history, excluded, actions) = try await drive(cluster)
        } catch {
            await cluster.shutdown(graceMs: 1000)
            throw error
        }
        await cluster.shutdown(graceMs: 1000)
        // A cancelled run's history is cut short: no verdict is written for it, so a resume runs it again.
        try check()
        try directory.write("history.jsonl", JSONLWriter.render(history))
        try directory.write("excluded.jsonl", excluded.isEmpty ? "" : JSONLWriter.render(excluded))
        try directory.write("nemesis.jsonl", actions.map(\.jsonLine).joined(separator: "\n") + (actions.isEmpty ? "" : "\n"))
        log(nil, "experiment \(directory.runID): \(history.count) operations recorded; checking them per key")
        let check = LinearizabilityCheck.run(history)
        try directory.write("check.json", check.json)
        for report in check.reports where report.verdict == .notLinearizable {
            try directory.write(LinearizabilityCheck.pageName(report.key),
                                CounterexamplePage.render(title: "\(directory.runID): key \(report.key)", report: report))
        }
        return check
    }

    private func check() throws { if Task.isCancelled { throw SweepRun.Stop.cancelled } }

    private func startStore() async throws -> ExperimentCluster {
        let feed = EventFeed(hub.subscribe(kinds: [.nodeReady]))
        defer { feed.close() }
        let cluster = try await ExperimentCluster.startStore(spec.layout, runID: directory.runID, dataDir: directory.path + "/data-s\(session)",
                                                             hub: hub, environment: environment, log: { node, line in log(node, line) })
        do {
            try await cluster.startAndAwaitReady(feed)
            try await pollUntil("every group with a leader", seconds: 20, every: .milliseconds(5), check: check) {
                (0..<spec.layout.groups).allSatisfy { cluster.settled($0, layout: spec.layout, preferred: nil) }
            }
        } catch {
            await cluster.shutdown(graceMs: 1000)
            throw error
        }
        return cluster
    }

    /// The workload and the nemesis, side by side, for `duration_s`; then the store made whole again.
    private func drive(_ cluster: ExperimentCluster) async throws -> ([Op], [Op], [NemesisRecord]) {
        let start = monotonicNow()
        let end = start + Int64(spec.durationS) * 1_000_000_000
        let ports = Dictionary(uniqueKeysWithValues: cluster.config.nodes.map { ($0.id, $0.port) })
        let pb = spec.layout.mode == .primaryBackup
        let order = pb ? spec.layout.allNodes : spec.layout.storageNodes
        let targets = order.map { (id: $0, port: ports[$0] ?? 0) }
        let history = Locked<(checked: [Op], excluded: [Op])>(([], []))
        let restarts = Locked<[Task<Void, Never>]>([])
        // When each fault ended: a network fault or stop when cleared, a kill when its node was started again.
        let ended = Locked<[String: MonotonicNanos]>([:])
        let cleared = EventFeed(hub.subscribe(kinds: [.faultCleared, .faultFailed]))
        defer { cleared.close() }
        // A killed node's start, due for_ms after its kill: cancelled and awaited on every way out,
        // so that nothing starts a node after the cluster is shut down.
        func settleRestarts(cancel: Bool) async {
            let pending = restarts.withLock { $0 }
            if cancel { for task in pending { task.cancel() } }
            for task in pending { await task.value }
        }
        let records: [NemesisRecord]
        do {
            records = try await withThrowingTaskGroup(of: [NemesisRecord].self) { group in
                for c in 0..<spec.clients {
                    let client = WorkloadClient(clientID: "lin-\(directory.runID)-s\(session)-c\(c)", group: environment.group,
                                                nodes: targets, readPolicy: spec.readPolicy, opTimeoutMs: spec.opTimeoutMs,
                                                routerIndex: pb ? 0 : nil)
                    group.addTask { [spec] in
                        var workload = Workload(client: c, spec: spec)
                        var seq: UInt64 = 0
                        var process = c
                        // Raft's clients are bound to a node each, as Jepsen's are (reads of a stale
                        // policy are that node's). Primary-backup's start at the coordinator and keep
                        // to the node it sent them to, as the original's clients cached its route,
                        // until that node fails them.
                        let home = pb ? 0 : c % targets.count
                        var first = home
                        // Paced: an operation every clients/rate s, or at once after one that took longer
                        // (each client waits for its answer, as Jepsen's do); the report gives the rate reached.
                        let periodNs: Int64 = spec.rate == 0 ? 0 : Int64(spec.clients) * 1_000_000_000 / Int64(spec.rate)
                        var due = start + (periodNs > 0 ? Int64(c) * periodNs / Int64(spec.clients) : 0)
                        while monotonicNow() < end && !Task.isCancelled {
                            if periodNs > 0 {
                                let wait = due - monotonicNow()
                                if wait > 0 { try? await Task.sleep(for: .nanoseconds(wait)) }
                                due = max(due + periodNs, monotonicNow() - periodNs)
                                if monotonicNow() >= end { break }
                            }
                            seq += 1
                            let op = workload.next()
                            let done = await client.perform(op, seq: seq, process: process, first: first)
                            if pb { first = done.answeredBy ?? home }
                            for (k, v) in done.seen { workload.saw(k, v) }
                            history.withLock { $0.checked += done.checked; $0.excluded += done.excluded }
                            // As Jepsen's: an operation whose outcome is unknown stays open for ever, so
                            // the client goes on as a new process (its lane on the timeline is process % clients).
                            if done.checked.contains(where: { $0.outcome == .unknown }) { process += spec.clients }
                        }
                        return []
                    }
                }
                group.addTask { try await nemesis(cluster, start: start, restarts: restarts, ended: ended) }
                var all: [NemesisRecord] = []
                for try await r in group { all += r }
                return all
            }
        } catch {
            await settleRestarts(cancel: true)
            throw error
        }
        // Every fault ends: links healed, stopped nodes continued, killed ones started again.
        await settleRestarts(cancel: Task.isCancelled)
        try check()
        _ = cluster.engine.heal(node: nil)
        for status in cluster.supervisor.snapshot where status.state == .paused {
            _ = try? await cluster.engine.inject(FaultSpec(kind: .cont, node: status.id), requested: .now(), knownNodes: Set(cluster.nodes))
        }
        for id in cluster.nodes where !(await cluster.supervisor.isRunning(id)) { try? await cluster.supervisor.start(id) }
        // Every cleared fault's moment, up to a second for the last ones' events to come through.
        var lasting = Set(records.flatMap { r in r.fault == "kill" || r.fault == "restart" ? [] : r.faults.map(\.id) })
        if !lasting.isEmpty {
            _ = await cleared.wait(until: monotonicNow() + 1_000_000_000) { e in
                // A fault that failed (its effect never seen) has no end to wait for.
                if let id = e.faultID, lasting.remove(id) != nil, e.kind == .faultCleared { ended.withLock { $0[id] = e.tMonoNs } }
                return lasting.isEmpty
            }
        }
        let endings = ended.withLock { $0 }
        let finished = records.map { r in
            var r = r
            for i in r.faults.indices { r.faults[i].endedMonoNs = endings[r.faults[i].id] }
            return r
        }
        let recorded = history.withLock { $0 }
        func sorted(_ ops: [Op]) -> [Op] { ops.sorted { ($0.invoke, $0.client, $0.key) < ($1.invoke, $1.client, $1.key) } }
        return (sorted(recorded.checked), sorted(recorded.excluded), finished)
    }

    /// Strikes on the plan, each target chosen from the store as it is at that moment.
    private func nemesis(_ cluster: ExperimentCluster, start: MonotonicNanos, restarts: Locked<[Task<Void, Never>]>,
                         ended: Locked<[String: MonotonicNanos]>) async throws -> [NemesisRecord] {
        var rng = SplitMix64(seed: SplitMix64.mix(spec.seed ^ 0x4E45_4D45_5349_5321))
        let keyGroups = Workload.keys(spec.keys).map { KeyGroups.group(of: $0, groups: spec.layout.groups) }
        var records: [NemesisRecord] = []
        for strike in NemesisPlan.strikes(spec) {
            let due = start + Int64(strike.atMs) * 1_000_000
            let wait = due - monotonicNow()
            if wait > 0 { try? await Task.sleep(for: .nanoseconds(wait)) }
            try check()
            let entry = spec.nemesis[strike.entry]
            let leaders = cluster.leaders(groups: spec.layout.groups).byGroup.compactMapValues { NodeID(validating: $0.node) }
            var running = Set<NodeID>()
            for s in cluster.supervisor.snapshot where s.state == .ready || s.state == .starting { running.insert(s.id) }
            let view = NemesisPlan.View(layout: spec.layout, leaders: leaders, running: running, keyGroups: keyGroups)
            var record = NemesisRecord(atMs: strike.atMs, entry: strike.entry, fault: entry.fault.rawValue, target: entry.target.description)
            switch NemesisPlan.resolve(entry, view: view, rng: &rng) {
            case .skip(let why):
                record.skipped = why
            case .inject(let faults, let restartAfter):
                for f in faults {
                    let requested = Stamp.now()
                    let id: String
                    do {
                        let r = try await cluster.engine.inject(f, requested: requested, knownNodes: Set(cluster.nodes))
                        id = r.faultID
                        record.faults.append(.init(id: id, node: f.node.rawValue, peers: f.peers?.map(\.rawValue),
                                                   requestedMonoNs: requested.monoNs, appliedMonoNs: r.applied?.monoNs))
                    } catch {
                        record.refused.append("\(f.kind.rawValue) \(f.node): \(error)")
                        continue  // nothing was killed: nothing to start again
                    }
                    if let ms = restartAfter {
                        let node = f.node
                        restarts.withLock { $0.append(Task {
                            guard (try? await Task.sleep(for: .milliseconds(ms))) != nil, !Task.isCancelled else { return }
                            if (try? await cluster.supervisor.start(node)) != nil { ended.withLock { $0[id] = monotonicNow() } }
                        }) }
                    }
                }
            }
            log(nil, "experiment \(directory.runID): nemesis at \(strike.atMs) ms: \(record.summary)")
            records.append(record)
        }
        return records
    }
}

/// One strike of the nemesis as nemesis.jsonl keeps it. Each fault's requested, applied and
/// cleared moments are in events.jsonl under its fault_id.
struct NemesisRecord: Sendable {
    /// One fault and its three moments: requested, applied, and ended (cleared; a kill: its node started again).
    struct Applied: Sendable {
        var id: String; var node: String; var peers: [String]?
        var requestedMonoNs: Int64; var appliedMonoNs: Int64?; var endedMonoNs: Int64? = nil
    }
    var atMs: Int
    var entry: Int
    var fault: String
    var target: String
    var faults: [Applied] = []
    var refused: [String] = []
    var skipped: String?

    var summary: String {
        if let skipped { return "\(fault) \(target) skipped: \(skipped)" }
        let nodes = faults.map { $0.node + ($0.peers.map { " from " + $0.joined(separator: ",") } ?? "") }
        return "\(fault) \(target) -> \(nodes.joined(separator: "; "))" + (refused.isEmpty ? "" : "; refused: " + refused.joined(separator: "; "))
    }

    var jsonLine: String {
        func q(_ s: String) -> String { JSONLWriter.quoted(s) }
        let faultsJSON = faults.map { f in
            "{\"fault_id\":\(q(f.id)),\"node\":\(q(f.node))" + (f.peers.map { ",\"peers\":[" + $0.map(q).joined(separator: ",") + "]" } ?? "")
                + ",\"requested_mono_ns\":\(f.requestedMonoNs)" + (f.appliedMonoNs.map { ",\"applied_mono_ns\":\($0)" } ?? "")
                + (f.endedMonoNs.map { ",\"ended_mono_ns\":\($0)" } ?? "") + "}"
        }
        return "{\"at_ms\":\(atMs),\"entry\":\(entry),\"fault\":\(q(fault)),\"target\":\(q(target)),\"faults\":[\(faultsJSON.joined(separator: ","))]"
            + (refused.isEmpty ? "" : ",\"refused\":[" + refused.map(q).joined(separator: ",") + "]")
            + (skipped.map { ",\"skipped\":\(q($0))" } ?? "") + "}"
    }
}

/// A value several tasks add to, behind a lock (a Mutex cannot be captured by a task's closure).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout sending Value) -> sending R) -> R { mutex.withLock(body) }
}
