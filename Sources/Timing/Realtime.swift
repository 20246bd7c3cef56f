import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// SCHED_FIFO for the stretch whose time is measured: the last wait before a fault and its syscall.
/// Measured here (40 scheduled kills each, 2 vCPUs): under SCHED_OTHER, pidfd_send_signal(SIGKILL)
/// returned up to 1.27 ms late (p90 1.05), because the victim's woken threads preempt the caller,
/// which has just spun; under SCHED_FIFO the worst was 0.07 ms. Priority 0 means never.
public struct Realtime: Sendable {
    public let priority: Int32

    public init(priority: Int) { self.priority = Int32(priority) }

    /// Runs `body` with the calling thread at SCHED_FIFO when the process may (root, CAP_SYS_NICE,
    /// or RLIMIT_RTPRIO at least `priority`), else as it is; the thread is SCHED_OTHER again after.
    public func run<T>(_ body: () throws -> T) rethrows -> T {
        guard priority > 0, kv_set_thread_fifo(priority) == 0 else { return try body() }
        defer { _ = kv_set_thread_fifo(0) }
        return try body()
    }

    /// Whether the calling thread runs SCHED_FIFO now.
    public static var callingThreadIsRealtime: Bool { kv_thread_policy() == SCHED_FIFO }

    /// nil if `run` will get SCHED_FIFO, else why not and what to do. Tries on the calling thread
    /// and puts it back.
    public func unavailableReason() -> String? {
        guard priority > 0 else { return "sched_priority is 0" }
        let rc = kv_set_thread_fifo(priority)
        guard rc != 0 else {
            _ = kv_set_thread_fifo(0)
            return nil
        }
        return "SCHED_FIFO priority \(priority) refused (\(String(cString: strerror(-rc)))): run as root, grant "
            + "CAP_SYS_NICE, or raise RLIMIT_RTPRIO to \(priority) (systemd: LimitRTPRIO=\(priority), RestrictRealtime=no)"
    }
}
