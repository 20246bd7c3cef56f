import CSystemd
#if canImport(Glibc)
import Glibc
#endif

/// The sd_notify(3) face: READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1.
/// A no-op (returns false) where NOTIFY_SOCKET is unset, as sd_notify itself is.
public enum Notifier {
    @discardableResult
    public static func send(_ assignments: [String]) -> Bool {
        let message = assignments.joined(separator: "\n")
        return message.withCString { sd_notify(0, $0) } > 0
    }

    @discardableResult public static func ready(status: String? = nil) -> Bool {
        send(["READY=1"] + (status.map { ["STATUS=\($0)"] } ?? []))
    }
    @discardableResult public static func status(_ text: String) -> Bool { send(["STATUS=\(text)"]) }
    @discardableResult public static func watchdog() -> Bool { send(["WATCHDOG=1"]) }
    @discardableResult public static func stopping(status: String? = nil) -> Bool {
        send(["STOPPING=1"] + (status.map { ["STATUS=\($0)"] } ?? []))
    }

    /// RELOADING=1 must carry MONOTONIC_USEC so systemd (≥253, Type=notify-reload) can order it.
    @discardableResult public static func reloading() -> Bool {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let usec = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
        return send(["RELOADING=1", "MONOTONIC_USEC=\(usec)"])
    }

    public static var isAvailable: Bool { getenv("NOTIFY_SOCKET") != nil }

    /// Half of WATCHDOG_USEC (when set for this process), the interval systemd recommends pinging at.
    public static func watchdogPingIntervalUsec() -> UInt64? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return usec / 2
    }
}
