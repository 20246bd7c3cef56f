import Core
import Events
import Faults
import Supervision
import Synchronization
import Varlink

/// What the daemon's services share: the owners (supervisor, fault engine, event hub) and the config.
final class DaemonContext: Sendable {
    let supervisor: NodeSupervisor
    let engine: FaultEngine
    let hub: EventHub
    let paths: DaemonPaths
    let runID: String
    let configFile: String?
    let startedMonoNs = monotonicNow()
    private let current: Mutex<ClusterConfig>
    private let phase = Mutex("starting")

    init(config: ClusterConfig, configFile: String?, supervisor: NodeSupervisor, engine: FaultEngine, hub: EventHub,
         paths: DaemonPaths, runID: String) {
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
    var state: String { phase.withLock { $0 } }
    func setState(_ s: String) { phase.withLock { $0 = s } }

    func statusReply() async -> JSONValue {
        let ready = await supervisor.readyCount
        let total = await supervisor.total
        return [
            "state": .string(state), "version": .string(kvsupervisorVersion),
            "uptime_ms": .number(Double((monotonicNow() - startedMonoNs) / 1_000_000)),
            "nodes_ready": .number(Double(ready)), "nodes_total": .number(Double(total)),
            "active_faults": .number(Double(engine.activeFaults.count)),
            "scheduled_faults": .number(Double(engine.scheduledCount)),
            "run_id": .string(runID), "mode": .string(config.mode.rawValue), "event_log": .string(paths.eventLog),
        ]
    }

    /// The one-line STATUS= text systemd shows.
    func statusLine() async -> String {
        let ready = await supervisor.readyCount, total = await supervisor.total
        let faults = engine.activeFaults.count
        return "\(state): \(ready)/\(total) nodes ready, \(faults) fault\(faults == 1 ? "" : "s") active"
    }
}

public let kvsupervisorVersion = "0.1.0"
