import ConfigFile
import Core
import Events
import ServiceLifecycle
import Supervision
import Systemd
import Varlink
import NIOCore

/// Feeds child reports (exits, notify messages, output) to the node table until shutdown.
struct ReportPumpService: Service {
    let supervisor: NodeSupervisor
    func run() async throws {
        await withGracefulShutdownHandler {
            await supervisor.run()
        } onGracefulShutdown: {
            supervisor.shutdownReports()
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

/// WATCHDOG=1 at half of WATCHDOG_USEC (at most every 500 ms), and only while the node
/// supervisor's loop answers: each period a probe goes through its report stream, and the next
/// period pings only if the loop took it. A wedged actor or a stalled report pump thus stops the
/// pings and systemd restarts the daemon. STATUS= whenever the status line changes.
struct WatchdogService: Service {
    let context: DaemonContext
    func run() async throws {
        let pingUsec = Notifier.watchdogPingIntervalUsec()
        let period: Duration = pingUsec.map { .microseconds(Int64(min($0, 500_000))) } ?? .milliseconds(500)
        try? await cancelWhenGracefulShutdown {
            var lastStatus = ""
            var withholding = false
            while !Task.isCancelled {
                let line = context.statusLine()
                if line != lastStatus { Notifier.status(line); lastStatus = line }
                let answered = context.supervisor.probeLoop()
                if answered {
                    if pingUsec != nil { Notifier.watchdog() }
                    if withholding { context.hub.log("node supervisor answers again; WATCHDOG=1 resumed", priority: 5) }
                } else if !withholding {
                    context.hub.log("node supervisor has not answered within \(period); withholding WATCHDOG=1 "
                                    + "so that systemd restarts the daemon", priority: 2)
                }
                withholding = !answered
                try await Task.sleep(for: period)
            }
        }
    }
}

/// Starts the nodes, says READY=1, reloads on SIGHUP (requests queued by `SignalRouter`; one that
/// came while starting runs once the nodes are up), and on shutdown stops every node and flushes
/// the event log before the process exits. A stop requested while starting ends the start at once.
struct ClusterService: Service {
    let context: DaemonContext
    let reloads: AsyncStream<Void>

    func run() async throws {
        let sup = context.supervisor
        Notifier.status("starting \(context.config.nodes.count) nodes")
        let total = await sup.total
        do {
            for id in context.config.nodeIDs where !Task.isShuttingDownGracefully {
                if await sup.isRunning(id) { continue }
                try await sup.start(id)
            }
        } catch {
            context.hub.log("cannot start nodes: \(error)", priority: 3)
            await stopNodes(total: total)
            throw error
        }
        let deadline = monotonicNow() + Int64(context.config.readyTimeoutMs) * 1_000_000
        while await sup.readyCount < total, monotonicNow() < deadline, !Task.isShuttingDownGracefully {
            // A node that exits before it was ever ready (its port taken, its data directory
            // locked, a bad flag) fails the start: running on without it would look like a fault.
            if let dead = await sup.statuses().first(where: { ($0.state == .exited || $0.state == .stopped) && $0.lastExit != nil }) {
                let how = dead.lastExit.map { cause -> String in
                    switch cause {
                    case .exited(let code): return "exited with status \(code)"
                    case .signaled(let signal): return "was killed by \(SignalName.name(signal))"
                    }
                } ?? "exited"
                context.hub.log("node \(dead.id) \(how) before it was ready; its output above says why (a port in use, a "
                                + "locked data directory): stopping the other nodes and exiting 1", priority: 3)
                await stopNodes(total: total)
                throw StartFailure(description: "node \(dead.id) \(how) before it was ready")
            }
            try? await Task.sleep(for: .milliseconds(2))
        }
        if !Task.isShuttingDownGracefully {
            let ready = await sup.readyCount
            context.transition(.nodesUp(allReady: ready == total))
            Notifier.ready(status: context.statusLine())
            context.hub.log("\(ready)/\(total) nodes ready; control socket \(context.paths.socket); events \(context.paths.eventLog)")
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in reloads { await reload() }
                }
                try? await gracefulShutdown()
                group.cancelAll()
            }
        } else {
            context.hub.log("stop requested while starting: stopping the nodes started so far")
        }
        await stopNodes(total: total)
    }

    private func stopNodes(total: Int) async {
        context.transition(.stopBegan)
        Notifier.stopping(status: "stopping \(total) nodes")
        context.hub.publish(Event(kind: .supervisorStopping, runID: context.runID))
        // An experiment stops first, writing a partial report; `kvctl experiment resume` continues it.
        await context.experiments.stopForShutdown()
        _ = context.engine.heal(node: nil)
        await context.supervisor.stopAll(graceMs: context.config.stopGraceMs)
        context.hub.close()
    }

    /// SIGHUP: re-read the file, applying what can be applied without restarting nodes; a bad
    /// file is refused and the running config kept (config_rejected says why).
    private func reload() async {
        do { _ = try await context.reloader.reload(context, restartNodes: false) } catch {
            if case .invalid = error { return }  // config_rejected says why
            context.hub.log("SIGHUP: \(error)", priority: 5)
        }
    }
}

/// The cluster could not be started: a node died before it was ready.
struct StartFailure: Error, CustomStringConvertible {
    var description: String
}
