import CLinux
import Core
import Systemd
import Timing
#if canImport(Glibc)
import Glibc
#endif

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

/// What every kvnode does with its process, whatever its runtime: dies with its supervisor, takes
/// SIGTERM on a thread of its own, opens its event output, logs its start; says READY=1 once the
/// runtime is up; and fails with a message and status 1.
public enum NodeProcess {
    /// The process set up, before any runtime part starts: returns the node's event output.
    public static func begin(_ options: NodeOptions) -> EventOutput {
        do { try ParentWatch.armIfSupervised() } catch { fail(options, "\(error)") }
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
        started.reason = options.startDescription ?? "\(options.role.rawValue) on \(options.host):\(options.port)"
            + (options.peers.isEmpty ? "" : ", peers " + options.peers.map { p in (p.id.map { "\($0)=" } ?? "") + "\(p.host):\(p.port)" }
                .joined(separator: ","))
            + ", heartbeat every \(options.hbIntervalMs) ms, dead after \(options.hbTimeoutMs) ms"
        output.emit(started, reach: .logOnly)
        return output
    }

    /// READY=1 with `status`, then this thread only waits: event loops and timing threads do the work.
    public static func serve(status: String) -> Never {
        Notifier.ready(status: status)
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
