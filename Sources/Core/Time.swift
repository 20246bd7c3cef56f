#if canImport(Glibc)
import Glibc
#endif

/// Nanoseconds on this host's CLOCK_MONOTONIC. Comparable only between processes on one host.
public typealias MonotonicNanos = Int64
/// Milliseconds since the Unix epoch (CLOCK_REALTIME). For people and for crossing hosts.
public typealias WallMillis = Int64

/// One reading of both clocks, taken together.
public struct Stamp: Sendable, Equatable, Codable {
    public var wallMs: WallMillis
    public var monoNs: MonotonicNanos

    public init(wallMs: WallMillis, monoNs: MonotonicNanos) {
        self.wallMs = wallMs
        self.monoNs = monoNs
    }

    /// Reads CLOCK_MONOTONIC first: it is the clock latency figures are computed on.
    public static func now() -> Stamp {
        let mono = monotonicNow()
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Stamp(wallMs: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000, monoNs: mono)
    }
}

public func monotonicNow() -> MonotonicNanos {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// Milliseconds between two monotonic readings, with microsecond resolution kept.
public func millisBetween(_ from: MonotonicNanos, _ to: MonotonicNanos) -> Double {
    Double(to - from) / 1_000_000
}
