import Events
import ServiceLifecycle
import Supervision
#if canImport(Glibc)
import Glibc
#endif

/// Turns the daemon's signals into actions. SIGTERM/SIGINT: a graceful stop of the service group,
/// at any moment (while starting, the nodes started so far are stopped and the daemon exits 0).
/// SIGHUP: a reload, queued while the nodes are still starting and run once they are up.
/// SIGUSR2: wedges the node supervisor's loop, only with KVSUPERVISOR_TEST_HOOKS=1 (the watchdog test).
struct SignalRouter: Sendable {
    let context: DaemonContext
    let services: ServiceGroup
    let reloads: AsyncStream<Void>.Continuation
    let testHooks: Bool

    func run(_ signals: AsyncStream<Int32>) async {
        for await signal in signals {
            switch signal {
            case SIGTERM, SIGINT:
                context.hub.log("\(signal == SIGTERM ? "SIGTERM" : "SIGINT"): stopping (state \(context.state.rawValue))")
                await services.triggerGracefulShutdown()
            case SIGHUP:
                if context.state == .starting {
                    context.hub.log("SIGHUP while the nodes are starting: the reload is queued and runs once they are up", priority: 5)
                }
                reloads.yield()
            case SIGUSR2 where testHooks:
                context.hub.log("SIGUSR2 with KVSUPERVISOR_TEST_HOOKS=1: wedging the node supervisor's loop", priority: 4)
                let supervisor = context.supervisor
                // Not awaited, and owned by nobody on purpose: the wedge never returns, and the
                // router must go on taking signals (SIGTERM above all) while the loop is stuck.
                Task.detached { await supervisor.wedgeForTesting() }
            default:
                context.hub.log("signal \(signal) ignored", priority: 6)
            }
        }
    }
}
