import Core

/// How a child ended, as waitid() tells it.
public enum ExitCause: Sendable, Equatable, CustomStringConvertible {
    case exited(code: Int32)
    case signaled(signal: Int32)

    /// systemd's notion of a clean exit: code 0, or one of SIGHUP, SIGINT, SIGTERM, SIGPIPE.
    public var isClean: Bool {
        switch self {
        case .exited(let code): return code == 0
        case .signaled(let s): return [1, 2, 15, 13].contains(s)
        }
    }

    public var description: String {
        switch self {
        case .exited(let code): return "exited with status \(code)"
        case .signaled(let s): return "killed by \(SignalName.name(s))"
        }
    }
}

public enum RestartDecision: Sendable, Equatable {
    case restart(afterMs: Int)
    case noRestart(reason: String)
    case giveUp(reason: String)
}

/// systemd's Restart= semantics for one child: when to restart, with exponential backoff and a
/// start limit (StartLimitBurst within StartLimitIntervalSec). Exits caused by an injected fault
/// are never "repaired": the experiment decides.
public struct RestartPolicy: Sendable {
    public var mode: RestartMode
    public var restartSecMs: Int
    public var maxDelayMs: Int
    public var burst: Int
    public var intervalNs: Int64

    private var recentStarts: [MonotonicNanos] = []
    private var consecutiveFailures = 0
    private var lastStart: MonotonicNanos?

    public init(mode: RestartMode, restartSecMs: Int, maxDelayMs: Int, burst: Int, intervalMs: Int) {
        self.mode = mode
        self.restartSecMs = restartSecMs
        self.maxDelayMs = maxDelayMs
        self.burst = burst
        self.intervalNs = Int64(intervalMs) * 1_000_000
    }

    public init(config: ClusterConfig) {
        self.init(mode: config.restart, restartSecMs: config.restartSecMs, maxDelayMs: config.restartMaxDelayMs,
                  burst: config.startLimitBurst, intervalMs: config.startLimitIntervalMs)
    }

    /// The same history under new settings: a reload changes how the policy acts, not what it has
    /// seen (systemd keeps a unit's start-limit count across daemon-reload).
    public func reconfigured(_ config: ClusterConfig) -> RestartPolicy {
        var p = self
        p.mode = config.restart
        p.restartSecMs = config.restartSecMs
        p.maxDelayMs = config.restartMaxDelayMs
        p.burst = config.startLimitBurst
        p.intervalNs = Int64(config.startLimitIntervalMs) * 1_000_000
        return p
    }

    /// Records a start; the start limit counts these.
    public mutating func recordStart(at now: MonotonicNanos) {
        recentStarts.append(now)
        recentStarts.removeAll { now - $0 > intervalNs }
        lastStart = now
    }

    /// A child that stayed up past the start-limit interval is healthy again: backoff resets.
    public mutating func recordHealthy() { consecutiveFailures = 0 }

    /// The backoff step the next failure will use (0: the first, restart_sec_ms).
    public var failuresInARow: Int { consecutiveFailures }

    public mutating func decide(_ cause: ExitCause, injected: Bool, at now: MonotonicNanos) -> RestartDecision {
        if let lastStart, now - lastStart >= intervalNs { recordHealthy() }
        if injected { return .noRestart(reason: "exit caused by an injected fault") }
        switch mode {
        case .no: return .noRestart(reason: "restart policy is 'no'")
        case .onFailure where cause.isClean: return .noRestart(reason: "clean exit and restart policy is 'on-failure'")
        default: break
        }
        recentStarts.removeAll { now - $0 > intervalNs }
        if recentStarts.count >= burst {
            return .giveUp(reason: "start limit hit: \(recentStarts.count) starts within \(intervalNs / 1_000_000) ms")
        }
        consecutiveFailures += 1
        let factor = 1 << min(consecutiveFailures - 1, 20)
        return .restart(afterMs: min(restartSecMs * factor, maxDelayMs))
    }
}
