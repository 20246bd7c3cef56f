import Core
import Events
import ExperimentRunner
import Faults
import Supervision
import Synchronization
import Varlink
#if canImport(Glibc)
import Glibc
#endif


/// What the daemon's services share: the owners (supervisor, fault engine, event hub) and the config.
final class DaemonContext: Sendable {
    let supervisor: NodeSupervisor
    let engine: FaultEngine
    let hub: EventHub
    let experiments: ExperimentManager
    let paths: DaemonPaths
    /// The supervisor's run id, in every event it and its nodes write.
    let runID: String
    /// The file the config came from (reloads re-read it); nil for the built-in default cluster.
    let configFile: String?
    let startedMonoNs = monotonicNow()
    /// Reloads one at a time, from SIGHUP and from kvctl reload.
    let reloader = Reloader()
    private let current: Mutex<ClusterConfig>
    private let phase = Mutex(DaemonPhase.starting)

    init(config: ClusterConfig, configFile: String?, supervisor: NodeSupervisor, engine: FaultEngine, hub: EventHub,
         experiments: ExperimentManager, paths: DaemonPaths, runID: String) {
        self.experiments = experiments
        self.current = Mutex(config)
        self.configFile = configFile
        self.supervisor = supervisor
        self.engine = engine
        self.hub = hub
        self.paths = paths
        self.runID = runID
    }

    var config: ClusterConfig { current.withLock { $0 } }
    func replaceConfig(_ c: ClusterConfig) { current.withLock { $0 = c } }
    var state: DaemonPhase { phase.withLock { $0 } }
    /// Moves the phase by `DaemonPhase.after`'s rules, atomically; returns the phases before and
    /// after, or nil when the change does not apply now (a reload ending after the stop began).
    @discardableResult
    func transition(_ change: DaemonPhase.Change) -> (from: DaemonPhase, to: DaemonPhase)? {
        phase.withLock { p in
            guard let next = p.after(change) else { return nil }
            defer { p = next }
            return (p, next)
        }
    }

    /// Answers from the supervisor's published snapshot: no await, so it can run on an event loop.
    func statusReply() -> ControlProtocol.Status {
        let (ready, total, _) = nodeCounts()
        return ControlProtocol.Status(
            state: state.rawValue, version: kvsupervisorVersion, uptimeMs: (monotonicNow() - startedMonoNs) / 1_000_000,
            nodesReady: ready, nodesTotal: total, activeFaults: engine.activeFaults.count,
            scheduledFaults: engine.scheduledCount, runID: runID, mode: config.mode.rawValue, eventLog: paths.eventLog,
            pid: getpid(), configFile: configFile)
    }

    private func nodeCounts() -> (ready: Int, total: Int, paused: Int) {
        let nodes = supervisor.snapshot
        return (nodes.filter { $0.state.countsAsReady }.count, nodes.count, nodes.filter { $0.state == .paused }.count)
    }

    /// The one-line STATUS= text systemd shows.
    func statusLine() -> String {
        let (ready, total, paused) = nodeCounts()
        let faults = engine.activeFaults.count
        return "\(state.rawValue): \(ready)/\(total) nodes ready" + (paused > 0 ? " (\(paused) paused)" : "")
            + ", \(faults) fault\(faults == 1 ? "" : "s") active"
    }
}

public let kvsupervisorVersion = "0.1.0"
