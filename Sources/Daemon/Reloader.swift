import ConfigFile
import Core
import Events
import Supervision
import Systemd

/// A reload, one at a time (SIGHUP and `kvctl reload` alike): re-reads the file and treats each
/// changed setting by its scope. Live settings are applied at once. Settings passed to kvnode are
/// applied by restarting the running nodes one at a time (each ready before the next) when asked,
/// and otherwise refused, so that no node ever runs with settings the others do not have; settings
/// read at start are refused. The running config takes exactly the applied changes, and
/// config_reloaded lists every change with its outcome.
actor Reloader {
    struct Outcome: Sendable {
        var changes: [SettingChange]
        var restarted: [NodeID]
    }

    enum Refusal: Error, CustomStringConvertible {
        case noFile
        case invalid(String)
        case busy
        var description: String {
            switch self {
            case .busy: return "another reload is in progress; retry when it is done"
            case .noFile: return "no config file to reload: kvsupervisor runs with the built-in default (start it with --config FILE)"
            case .invalid(let why): return why
            }
        }
    }

    /// An actor method runs on between its awaits; this keeps a second reload out until the first is done.
    private var busy = false

    func reload(_ context: DaemonContext, restartNodes: Bool) async throws(Refusal) -> Outcome {
        guard !busy else { throw .busy }
        busy = true
        defer { busy = false }
        // RELOADING=1 and READY=1 only around a reload of a running daemon: not while it starts
        // (the reload still applies; READY=1 comes when the start ends) nor once it stops.
        let began = context.transition(.reloadBegan)
        if began != nil { Notifier.reloading() }
        defer {
            if let began, context.transition(.reloadEnded(was: began.from)) != nil {
                Notifier.ready(status: context.statusLine())
            }
        }
        guard let file = context.configFile else {
            context.hub.log("reload: " + Refusal.noFile.description, priority: 5)
            throw .noFile
        }
        let new: ClusterConfig
        do { new = try ConfigLoader.load(path: file) } catch {
            var event = Event(kind: .configRejected, runID: context.runID)
            event.reason = "\(error)"
            event.path = file
            context.hub.publish(event)
            throw .invalid("\(error)")
        }
        let old = context.config
        var changes: [SettingChange] = []
        var accepted: Set<String> = []
        let changed = old.changedSettings(in: new)
        let nodeChanges = changed.filter { $0.setting.scope == .nodes }
        for (setting, was, now) in changed {
            let applied: String?
            let refused: String
            switch setting.scope {
            case .live:
                applied = "applied at once"
                refused = ""
            case .nodes:
                applied = restartNodes ? "applied by restarting the running nodes one at a time" : nil
                refused = "passed to each kvnode when it starts: apply it with 'kvctl reload --restart-nodes' "
                    + "(restarts the running nodes one at a time) or by restarting kvsupervisor; the nodes keep \(was)"
            case .supervisor:
                applied = nil
                refused = "read once when kvsupervisor starts: restart kvsupervisor to apply it; \(was) stays in force"
            }
            if applied != nil { accepted.insert(setting.key) }
            changes.append(SettingChange(key: setting.key, old: was, new: now, outcome: applied == nil ? .refused : .applied,
                                         reason: applied ?? refused))
        }
        let effective = old.taking(accepted, from: new)
        context.replaceConfig(effective)
        await context.supervisor.applyConfig(effective)
        context.engine.setStopGrace(ms: effective.stopGraceMs)

        var restarted: [NodeID] = []
        var restartProblem: String?
        if restartNodes && !nodeChanges.isEmpty {
            (restarted, restartProblem) = await restartRunningNodes(context, readyTimeoutMs: effective.readyTimeoutMs)
            if let restartProblem {
                // Not in force everywhere: said as refused (exit 1), with what was and was not done.
                let done = restarted.isEmpty ? "no node was restarted" : "restarted \(restarted.map(\.rawValue).joined(separator: ", ")) with it"
                for i in changes.indices where changes[i].outcome == .applied && nodeChanges.contains(where: { $0.setting.key == changes[i].key }) {
                    changes[i].outcome = .refused
                    changes[i].reason = "\(done), but \(restartProblem); run kvctl reload --restart-nodes again"
                }
            }
        }
        var event = Event(kind: .configReloaded, runID: context.runID)
        event.path = file
        event.changes = changes
        let refusedCount = changes.filter { $0.outcome == .refused }.count
        event.reason = changes.isEmpty ? "no setting changed"
            : "\(changes.count - refusedCount) applied, \(refusedCount) refused"
                + (restarted.isEmpty ? "" : "; restarted \(restarted.map(\.rawValue).joined(separator: ", "))")
                + (restartProblem.map { "; \($0)" } ?? "")
        context.hub.publish(event)
        return Outcome(changes: changes, restarted: restarted)
    }

    /// Restarts each running node in config order, waiting until it is ready before the next, so a
    /// raft cluster keeps its quorum. Stops at the first node that is not ready in time.
    private func restartRunningNodes(_ context: DaemonContext, readyTimeoutMs: Int) async -> ([NodeID], String?) {
        let supervisor = context.supervisor
        var done: [NodeID] = []
        for id in context.config.nodeIDs where await supervisor.isRunning(id) {
            do { try await supervisor.restart(id, graceMs: context.config.stopGraceMs) } catch {
                return (done, "restarting \(id) failed: \(error); the nodes after it keep their old settings")
            }
            done.append(id)
            let deadline = monotonicNow() + Int64(readyTimeoutMs) * 1_000_000
            while await supervisor.statuses().first(where: { $0.id == id })?.state != .ready {
                if monotonicNow() >= deadline {
                    return (done, "\(id) was not ready within \(readyTimeoutMs) ms; the nodes after it keep their old settings")
                }
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        return (done, nil)
    }
}
