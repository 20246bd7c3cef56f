import CLinux
import Core
import NIOCore
import NIOPosix
import Systemd
#if canImport(Glibc)
import Glibc
#endif

/// Runs one kvnode until it is signalled. Sends READY=1 once it listens.
public enum NodeMain {
    public static func run(_ options: NodeOptions) throws -> Never {
        try ParentWatch.armIfSupervised()
        installTerminationHandlers()

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let startup: EventLoopFuture<Bool> = loop.flatSubmit {
            let output: EventOutput
            do {
                output = try EventOutput(logPath: options.logPath, viaNotify: options.eventsViaNotify)
            } catch {
                return loop.makeFailedFuture(error)
            }
            let node = HeartbeatNode(options: options, loop: loop, output: output)
            // The network keeps itself alive through its channels and scheduled tasks.
            return HeartbeatNetwork(node: node).start().flatMap { _ in
                // Ready means "detector armed": every peer heard once, or, if one is down at start,
                // after one timeout plus one interval.
                let armed = loop.makePromise(of: Bool.self)  // true: every peer heard
                let boundNode = NIOLoopBound(node, eventLoop: loop)
                let giveUp = loop.scheduleTask(in: .milliseconds(Int64(options.hbTimeoutMs + options.hbIntervalMs))) {
                    boundNode.value.fireArmed()
                }
                node.whenArmed {
                    giveUp.cancel()
                    armed.succeed(boundNode.value.isArmed)
                }
                return armed.futureResult
            }
        }
        let allPeersHeard: Bool
        do {
            allPeersHeard = try startup.wait()
        } catch let error as NodeError {
            writeStderr("kvnode \(options.id): \(error)")
            exit(1)
        } catch {
            writeStderr("kvnode \(options.id): \(NodeError.cannotListen(host: options.host, port: options.port, reason: "\(error)"))")
            exit(1)
        }
        Notifier.ready(status: "listening on \(options.host):\(options.port), "
            + (allPeersHeard ? "all \(options.peers.count) peer(s) heard" : "not every peer heard yet"))
        // The event loop thread does the work; this thread only waits for a termination signal.
        while true { pause() }
    }

    /// SIGTERM and SIGINT end the node at once with status 0: every event line is already written
    /// (one write(2) each), so there is nothing to flush.
    private static func installTerminationHandlers() {
        signal(SIGTERM) { _ in _exit(0) }
        signal(SIGINT) { _ in _exit(0) }
        signal(SIGPIPE, SIG_IGN)
    }
}

/// Makes a node die with its supervisor: PR_SET_PDEATHSIG, then a check that closes the race
/// in which the supervisor died between fork and prctl.
enum ParentWatch {
    static func armIfSupervised() throws {
        guard let raw = getenv("KVSUPERVISOR_PID"), let expected = Int32(String(cString: raw)) else { return }
        _ = kv_set_pdeathsig(SIGKILL)
        if getppid() != expected { throw NodeError.parentGone }
    }
}
