import CLinux
import Core
import Timing
#if canImport(Glibc)
import Glibc
#endif

/// What a child's monitor thread saw, in order.
public enum ChildReport: Sendable {
    /// Always the first report of a generation, so the owner knows the child before its READY or exit.
    case started(NodeID, generation: Int, child: RunningChild)
    case notify(NodeID, generation: Int, message: String, at: Stamp)
    case output(NodeID, generation: Int, line: String)
    case exited(NodeID, generation: Int, cause: ExitCause, at: Stamp)
    /// A stop or cont fault's effect on the node, seen by the fault's thread; `asOf` is when the
    /// signal was applied, which orders two changes whose effects were seen out of order.
    case paused(NodeID, generation: Int, paused: Bool, asOf: Stamp)
    /// Not from a child: the watchdog's probe, answered when the loop that takes reports reaches it.
    case probe(UInt64)
}

public struct ChildSpec: Sendable {
    public var id: NodeID
    public var executable: String
    public var arguments: [String]
    public var environment: [String]

    public init(id: NodeID, executable: String, arguments: [String], environment: [String]) {
        self.id = id; self.executable = executable; self.arguments = arguments; self.environment = environment
    }
}

/// A running child as its owner sees it. The owner closes `pidfd` after the child's `.exited` report.
public struct RunningChild: Sendable {
    public var pid: Int32
    public var pidfd: Int32
    public var started: Stamp
}

/// Spawns one child from a dedicated thread and watches it until it is reaped: exit (pidfd),
/// notify datagrams and stdout/stderr lines all become `ChildReport`s on one ordered stream.
enum ChildMonitor {
    static let maxLineBytes = 4096

    /// Spawns `spec`; returns once the child runs and is watched. `openPidfd` is pidfd_open(2),
    /// replaceable so that a test can make it fail.
    static func launch(_ spec: ChildSpec, generation: Int, notify: NotifySocket,
                       reports: AsyncStream<ChildReport>.Continuation,
                       openPidfd: @escaping @Sendable (pid_t) -> Int32 = { kv_pidfd_open($0) }) async throws -> RunningChild {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<RunningChild, any Error>) in
            startDetachedThread {
                let outPipe = makePipe(), errPipe = makePipe()
                let spawned = spawn(spec, stdout: outPipe.write, stderr: errPipe.write)
                close(outPipe.write)
                close(errPipe.write)
                guard case .success(let pid) = spawned else {
                    close(outPipe.read); close(errPipe.read)
                    if case .failure(let e) = spawned { cont.resume(throwing: e) }
                    return
                }
                let pidfd = openPidfd(pid)
                guard pidfd >= 0 else {
                    // Without a pidfd the exit would never be seen: end the child now, while its pid
                    // is still ours (unreaped), reap it, and fail the start with the reason.
                    let e = errno
                    kill(pid, SIGKILL)
                    var status: Int32 = 0
                    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                    close(outPipe.read); close(errPipe.read)
                    cont.resume(throwing: SupervisionError.pidfdUnavailable(pid: pid, errno: e))
                    return
                }
                let child = RunningChild(pid: pid, pidfd: pidfd, started: Stamp.now())
                reports.yield(.started(spec.id, generation: generation, child: child))
                cont.resume(returning: child)
                watch(spec.id, generation: generation, pidfd: pidfd, notify: notify,
                      outputs: [outPipe.read, errPipe.read], reports: reports)
            }
        }
    }

    private static func makePipe() -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        _ = kv_pipe_cloexec(&fds)
        return (fds[0], fds[1])
    }

    private static func spawn(_ spec: ChildSpec, stdout: Int32, stderr: Int32) -> Result<pid_t, SupervisionError> {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // Own process group (faults and stop act on it alone); default dispositions and an empty mask,
        // since the daemon itself ignores or blocks signals it handles.
        var defaults = sigset_t(), empty = sigset_t()
        sigemptyset(&empty)
        sigemptyset(&defaults)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        // Nothing else of the supervisor's reaches the node (NIO's accepted sockets are not CLOEXEC).
        _ = kv_spawn_closefrom(&actions, 3)

        let argv = [spec.executable] + spec.arguments
        var pid: pid_t = 0
        let rc = withCStrings(argv) { cargv in
            withCStrings(spec.environment) { cenv in
                posix_spawn(&pid, spec.executable, &actions, &attr, cargv, cenv)
            }
        }
        return rc == 0 ? .success(pid) : .failure(.spawnFailed(spec.executable, rc))
    }

    private static func watch(_ id: NodeID, generation: Int, pidfd: Int32, notify: NotifySocket,
                              outputs: [Int32], reports: AsyncStream<ChildReport>.Continuation) {
        var open = outputs
        var partial: [Int32: [UInt8]] = [:]
        var exitStamp: Stamp? = nil
        while exitStamp == nil || !open.isEmpty {
            var fds = [pollfd(fd: notify.fd, events: Int16(POLLIN), revents: 0)]
            if exitStamp == nil { fds.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
            for fd in open { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            // After the exit, wait briefly for the last output; a grandchild holding the pipe cannot stall us.
            let timeout: Int32 = exitStamp == nil ? -1 : 200
            let n = poll(&fds, nfds_t(fds.count), timeout)
            if n < 0 { if errno == EINTR { continue } else { break } }
            if n == 0 { break }
            for p in fds where p.revents != 0 {
                if p.fd == pidfd {
                    exitStamp = Stamp.now()
                } else if p.fd == notify.fd {
                    for message in notify.drain() {
                        reports.yield(.notify(id, generation: generation, message: message, at: Stamp.now()))
                    }
                } else {
                    var buffer = [UInt8](repeating: 0, count: 8192)
                    let got = read(p.fd, &buffer, buffer.count)
                    if got <= 0 {
                        open.removeAll { $0 == p.fd }
                        close(p.fd)
                        if let rest = partial.removeValue(forKey: p.fd), !rest.isEmpty {
                            reports.yield(.output(id, generation: generation, line: String(decoding: rest, as: UTF8.self)))
                        }
                        continue
                    }
                    var pending = partial[p.fd, default: []] + buffer[0..<got]
                    while let nl = pending.firstIndex(of: 10) {
                        reports.yield(.output(id, generation: generation, line: String(decoding: pending[..<nl], as: UTF8.self)))
                        pending.removeSubrange(...nl)
                    }
                    if pending.count > maxLineBytes {
                        reports.yield(.output(id, generation: generation, line: String(decoding: pending, as: UTF8.self)))
                        pending.removeAll()
                    }
                    partial[p.fd] = pending
                }
            }
        }
        for fd in open { close(fd) }
        // Notify messages sent just before death (e.g. a final event) are still queued: deliver them first.
        for message in notify.drain() {
            reports.yield(.notify(id, generation: generation, message: message, at: Stamp.now()))
        }
        var code: Int32 = 0, status: Int32 = 0
        while kv_waitid_pidfd(pidfd, &code, &status) != 0 && errno == EINTR {}
        let cause: ExitCause = code == kv_cld_exited() ? .exited(code: status) : .signaled(signal: status)
        reports.yield(.exited(id, generation: generation, cause: cause, at: exitStamp ?? Stamp.now()))
    }
}

/// Calls `body` with a NULL-terminated C array of the strings.
func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    var cstrings: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    cstrings.append(nil)
    defer { for p in cstrings { free(p) } }
    return body(cstrings)
}
