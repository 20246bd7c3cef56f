import ConfigFile
import Core
import Events
import ServiceLifecycle
import Supervision
import Systemd
import UnixSignals
import Varlink
import NIOCore

/// Feeds child reports (exits, notify messages, output) to the node table until shutdown.
struct ReportPumpService: Service {
    let supervisor: NodeSupervisor
    func run() async throws {
        await withGracefulShutdownHandler {
            await supervisor.run()
        } onGracefulShutdown: {
            Task { await supervisor.shutdownReports() }
        }
    }
}

/// The Varlink control socket.
struct ControlService: Service {
    let server: VarlinkServer
    let group: any EventLoopGroup
    let handler: ControlHandler
    func run() async throws {
        let handler = self.handler
        do {
            try await cancelWhenGracefulShutdown {
                try await server.run(group: group, handler: { call, peer in await handler.handle(call, peer) },
                                     immediate: { call, peer in handler.immediate(call, peer) })
            }
        } catch is CancellationError {}
    }
}

/// WATCHDOG=1 at half of WATCHDOG_USEC, sent only after the node table answered (so a wedged
/// supervisor stops pinging), and STATUS= whenever the status line changes.
struct WatchdogService: Service {
    let context: DaemonContext
    func run() async throws {
        let pingUsec = Notifier.watchdogPingIntervalUsec()
        let period: Duration = pingUsec.map { .microseconds(Int64(min($0, 500_000))) } ?? .milliseconds(500)
        try? await cancelWhenGracefulShutdown {
            var lastStatus = ""
            while !Task.isCancelled {
                let line = context.statusLine()
                if line != lastStatus { Notifier.status(line); lastStatus = line }
                if pingUsec != nil { Notifier.watchdog() }
                try await Task.sleep(for: period)
            }
        }
    }
}

/// Starts the nodes, says READY=1, reloads on SIGHUP, and on shutdown stops every node and
/// flushes the event log before the process exits.
struct ClusterService: Service {
    let context: DaemonContext

    func run() async throws {
        let sup = context.supervisor
        context.setState("starting")
        Notifier.status("starting \(context.config.nodes.count) nodes")
        do {
            try await sup.startAll()
        } catch {
            context.hub.log("cannot start nodes: \(error)", priority: 3)
            throw error
        }
        let deadline = monotonicNow() + Int64(context.config.readyTimeoutMs) * 1_000_000
        while await sup.readyCount < sup.total, monotonicNow() < deadline {
            try await Task.sleep(for: .milliseconds(2))
        }
        let ready = await sup.readyCount, total = await sup.total
        context.setState(ready == total ? "running" : "degraded")
        Notifier.ready(status: context.statusLine())
        context.hub.log("\(ready)/\(total) nodes ready; control socket \(context.paths.socket); events \(context.paths.eventLog)")

        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sighup) {
                    await reload()
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }

        context.setState("stopping")
        Notifier.stopping(status: "stopping \(total) nodes")
        context.hub.publish(Event(kind: .supervisorStopping, runID: context.runID))
        _ = context.engine.heal(node: nil)
        await sup.stopAll(graceMs: context.config.stopGraceMs)
        context.hub.close()
    }

    /// SIGHUP: re-read the file; a bad file is refused and the running config kept.
    private func reload() async {
        Notifier.reloading()
        context.setState("reloading")
        defer {
            context.setState("running")
            Task { Notifier.ready(status: context.statusLine()) }
        }
        guard let file = context.configFile else {
            context.hub.log("SIGHUP: no config file to reload (running with the built-in default)")
            return
        }
        do {
            let new = try ConfigLoader.load(path: file)
            let old = context.config
            if new.nodes != old.nodes || new.mode != old.mode {
                throw ConfigError(file: file, key: "node", problem: "changing nodes or mode needs a restart of kvsupervisor")
            }
            context.replaceConfig(new)
            await context.supervisor.applyConfig(new)
            context.hub.publish(Event(kind: .configReloaded, runID: context.runID))
        } catch {
            var event = Event(kind: .configRejected, runID: context.runID)
            event.reason = "\(error)"
            context.hub.publish(event)
        }
    }
}
