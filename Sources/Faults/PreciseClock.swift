import CLinux
import Core
#if canImport(Glibc)
import Glibc
#endif

/// Sleeps on CLOCK_MONOTONIC until an absolute time. Call `tightenTimerSlack()` once on the thread
/// first: Linux otherwise lets the wake-up be 50 µs late by design.
enum PreciseClock {
    static func tightenTimerSlack() { _ = kv_set_timerslack_ns(1) }

    static func sleep(until deadline: MonotonicNanos) {
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
    }

    /// Process state letter from /proc/PID/stat ("R", "S", "T", "Z", ...), nil if gone.
    static func processState(_ pid: Int32) -> Character? {
        guard let f = fopen("/proc/\(pid)/stat", "r") else { return nil }
        defer { fclose(f) }
        var buffer = [CChar](repeating: 0, count: 512)
        guard fgets(&buffer, Int32(buffer.count), f) != nil else { return nil }
        let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // The command name is in parentheses and may contain spaces: the state follows the last ')'.
        guard let close = line.lastIndex(of: ")") else { return nil }
        return line[line.index(after: close)...].first { $0 != " " }
    }
}
