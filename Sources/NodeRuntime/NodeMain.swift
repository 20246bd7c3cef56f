import CLinux
import Core
import NIOCore
import NIOPosix
import Systemd
import Timing
#if canImport(Glibc)
import Glibc
#endif

/// More than heartbeats on the node: raft mode's store. Its protocol shares the peer port.
public struct NodeExtension: Sendable {
    public var guest: PeerPortGuest
    /// Starts the extension once the peer port listens and the detector is armed; returns what
    /// READY's STATUS= says about it. A throw ends the node with status 1 and the message.
    public var start: @Sendable (EventOutput) throws -> String
    public init(guest: PeerPortGuest, start: @escaping @Sendable (EventOutput) throws -> String) {
        self.guest = guest; self.start = start
    }
}

/// A soft limit of 1024 (systemd's default) is less than the HTTP server's connection cap: take
/// the hard limit, as Go's runtime does.
private func raiseFileLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

/// How many connections a server may hold: `preferred`, or `share` of the file descriptors when
/// they are fewer, so that clients can never take the ones the WAL, snapshots and peers need.
public func connectionCap(preferred: Int, share: Double) -> Int {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return preferred }
    let fds = UInt64(limit.rlim_cur)  // RLIM_INFINITY is the largest value: no bound here
    return max(16, min(preferred, Int(Double(min(fds, 1 << 30)) * share)))
}

/// Runs one kvnode until it is signalled. Sends READY=1 once it listens.
public enum NodeMain {
    public static func run(_ options: NodeOptions, extension ext: NodeExtension? = nil) throws -> Never {
        try ParentWatch.armIfSupervised()
        signal(SIGPIPE, SIG_IGN)
        raiseFileLimit()

        let output: EventOutput
        do {
            output = try EventOutput(logPath: options.logPath, viaNotify: options.eventsViaNotify)
        } catch {
            fail(options, "\(error)")
        }
        awaitTermination(options, output)
        // The node's own side, first thing in its own log (the supervisor records starts and exits itself).
        var started = Event(kind: .nodeStarted, runID: options.runID, node: options.id)
        started.pid = getpid()
        started.reason = "\(options.role.rawValue) on \(options.host):\(options.port)"
            + (options.peers.isEmpty ? "" : ", peers " + options.peers.map { p in (p.id.map { "\($0)=" } ?? "") + "\(p.host):\(p.port)" }
                .joined(separator: ","))
            + ", heartbeat every \(options.hbIntervalMs) ms, dead after \(options.hbTimeoutMs) ms"
        output.emit(started, reach: .logOnly)

        let node = HeartbeatNode(options: options, output: output)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        // The seed's monitored node only answers connections with beats: its listener belongs to
        // the sender. Every other role reads heartbeats on an event-loop listener.
        let monitoredListener: Int32? = options.role == .monitored ? listenForBeats(options) : nil
        let listening: EventLoopFuture<Void> = options.role == .monitored
            ? loop.makeSucceededVoidFuture()
            : loop.flatSubmit { HeartbeatNetwork(node: node, loop: loop, guest: ext?.guest).start().map { _ in } }
        let startup: EventLoopFuture<Bool> = listening.flatMap {
            NodeClock.start(node: node, sender: options.role == .detector ? nil
                : HeartbeatSender(dialing: options.role == .peer ? options.peers : [], listenFD: monitoredListener))
            // Ready means "detector armed": every peer heard once, or, if one is down at start,
            // after one timeout plus one interval.
            let armed = loop.makePromise(of: Bool.self)  // true: every peer heard
            let giveUp = loop.scheduleTask(in: .milliseconds(Int64(options.hbTimeoutMs + options.hbIntervalMs))) {
                node.fireArmed()
            }
            node.whenArmed {
                giveUp.cancel()
                armed.succeed(node.isArmed)
            }
            return armed.futureResult
        }
        let allPeersHeard: Bool
        do {
            allPeersHeard = try startup.wait()
        } catch {
            fail(options, "\(NodeError.cannotListen(host: options.host, port: options.port, reason: "\(error)"))")
        }
        var status = "listening on \(options.host):\(options.port), "
            + (allPeersHeard ? "all \(options.peers.count) peer(s) heard" : "not every peer heard yet")
        if let ext {
            do { status = try ext.start(output) + "; peer port " + status } catch { fail(options, "\(error)") }
        }
        Notifier.ready(status: status)
        // The event loop and timing threads do the work; this one only waits.
        while true { pause() }
    }

    /// SIGTERM and SIGINT are blocked in every thread (`blockTerminationSignals`, first thing in
    /// main) and taken here, on a thread of their own, at any moment of the node's life: it
    /// writes the node's exit to its log, then ends the process with status 0. Every other event
    /// line is already written (one write(2) each), so there is nothing to flush.
    private static func awaitTermination(_ options: NodeOptions, _ output: EventOutput) {
        startDetachedThread {
            var set = terminationSignals()
            var received: Int32 = 0
            while sigwait(&set, &received) != 0 {}
            var exited = Event(kind: .nodeExited, runID: options.runID, node: options.id)
            exited.pid = getpid()
            exited.exitCode = 0
            exited.reason = received == SIGINT ? "SIGINT" : "SIGTERM"
            output.emit(exited, reach: .logOnly)
            _exit(0)
        }
    }

    private static func terminationSignals() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        return set
    }

    /// Call before any thread starts (threads inherit the mask): SIGTERM and SIGINT then reach only
    /// the thread that waits for them.
    public static func blockTerminationSignals() {
        var set = terminationSignals()
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    private static func listenForBeats(_ options: NodeOptions) -> Int32 {
        let fd = kv_tcp_listen(options.host, Int32(options.port))
        guard fd >= 0 else {
            fail(options, "\(NodeError.cannotListen(host: options.host, port: options.port, reason: String(cString: strerror(-fd))))")
        }
        return fd
    }

    public static func fail(_ options: NodeOptions, _ message: String) -> Never {
        writeStderr("kvnode \(options.id): \(message)")
        exit(1)
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
