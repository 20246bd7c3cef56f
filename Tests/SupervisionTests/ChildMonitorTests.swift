import Core
import Testing
@testable import Supervision
#if canImport(Glibc)
import Glibc
#endif

/// A real child: /bin/sleep, spawned and watched by ChildMonitor's own thread.
@Test func aFailedPidfdOpenFailsTheStartAndReapsTheChild() async throws {
    // Before: the result of pidfd_open was not checked, so the child ran on unwatched (poll
    // ignores fd -1) and its exit was never reported.
    let path = "/tmp/kvsup-monitor-\(getpid()).sock"
    let notify = try NotifySocket(path: path)
    defer { unlink(path) }
    let (_, sink) = AsyncStream.makeStream(of: ChildReport.self)
    let spec = ChildSpec(id: NodeID(validating: "A")!, executable: "/bin/sleep", arguments: ["30"], environment: [])
    do {
        _ = try await ChildMonitor.launch(spec, generation: 1, notify: notify, reports: sink,
                                          openPidfd: { _ in errno = EMFILE; return -1 })
        Issue.record("a child without a pidfd was reported started")
    } catch let SupervisionError.pidfdUnavailable(pid, e) {
        #expect(e == EMFILE)
        #expect(kill(pid, 0) == -1 && errno == ESRCH, "child \(pid) still exists (running or unreaped)")
    }
}

@Test func aChildsExitIsReportedWithItsStatus() async throws {
    let path = "/tmp/kvsup-monitor2-\(getpid()).sock"
    let notify = try NotifySocket(path: path)
    defer { unlink(path) }
    let (stream, sink) = AsyncStream.makeStream(of: ChildReport.self)
    let spec = ChildSpec(id: NodeID(validating: "A")!, executable: "/bin/sh", arguments: ["-c", "exit 7"], environment: [])
    let child = try await ChildMonitor.launch(spec, generation: 1, notify: notify, reports: sink)
    var exit: ExitCause?
    for await report in stream {
        if case .exited(_, _, let cause, _) = report { exit = cause; break }
    }
    #expect(exit == .exited(code: 7))
    close(child.pidfd)
}
