import Core

/// The sentence a person reads in the journal for an event, and its priority.
public enum EventText {
    /// " of group N" with several Raft groups; nothing for group 0, so a one-group store reads as before.
    static func ofGroup(_ e: Event) -> String { e.group.map { $0 == 0 ? "" : " of group \($0)" } ?? "" }

    public static func message(_ e: Event) -> String {
        let node = e.node?.rawValue ?? "?"
        let peer = e.peer?.rawValue ?? "?"
        switch e.kind {
        case .declaredDead:
            var s = "node \(node) declared \(peer) dead"
            if let l = e.detectionLatencyMs { s += " after \(format(l)) ms" }
            else if let silence = e.silenceMs { s += " after \(format(silence)) ms of silence" }
            if let label = e.label { s += " (\(label.rawValue.replacingUnderscores()))" }
            return s
        case .declaredAlive: return "node \(node) declared \(peer) alive again"
        case .suspect: return "node \(node) suspects \(peer)"
        case .nodeStarted: return "node \(node) started as pid \(e.pid.map(String.init) ?? "?")"
        case .nodeReady: return "node \(node) is ready"
        case .nodeExited:
            var s = "node \(node) (pid \(e.pid.map(String.init) ?? "?")) "
            if let sig = e.signal { s += "was killed by \(sig)" } else { s += "exited with status \(e.exitCode ?? -1)" }
            if let r = e.reason { s += "; \(r)" }
            return s
        case .nodeRestartScheduled: return "node \(node) will be restarted in \(e.restartInMs ?? 0) ms"
        case .faultRequested:
            return "fault \(e.fault?.rawValue ?? "?") on \(node) requested (\(e.faultID ?? ""))"
                + (e.afterMs.map { ", due in \($0) ms" } ?? "")
        case .faultApplied:
            var s = "fault \(e.fault?.rawValue ?? "?") applied to \(node)"
            if let d = e.direction { s += d == .out ? " (what it sends only)" : " (what it receives only)" }
            if let p = e.peers { s += ", toward " + p.map(\.rawValue).joined(separator: ", ") }
            if let a = e.applied, let f = e.effect { s += ", effect seen \(format(millisBetween(a.monoNs, f.monoNs))) ms later" }
            return s
        case .faultFailed: return "fault \(e.fault?.rawValue ?? "?") on \(node) failed: \(e.reason ?? "unknown")"
        case .faultCleared: return "fault \(e.fault?.rawValue ?? "?") on \(node) cleared (\(e.reason ?? ""))"
        case .faultCancelled:
            return "scheduled fault \(e.fault?.rawValue ?? "?") on \(node) cancelled (\(e.faultID ?? "")): \(e.reason ?? "")"
        case .leaderElected where e.leader != nil && e.leader != e.node, .leaderLost where e.reason != nil:
            // Primary-backup: the coordinator names who serves (or who was lost), in its words.
            return "coordinator \(node): \(e.reason ?? "") (epoch \(e.term.map(String.init) ?? "?"))"
        case .leaderElected:
            var s = "node \(node) became leader\(ofGroup(e)) in term \(e.term.map(String.init) ?? "?")"
            if let ms = e.sinceLostMs { s += ", \(format(ms)) ms after the previous leader was lost" }
            return s
        case .leaderLost:
            let who = e.leader?.rawValue ?? "?"
            return who == node ? "node \(node) stepped down as leader\(ofGroup(e)) in term \(e.term.map(String.init) ?? "?")"
                : "node \(node) lost its leader \(who)\(ofGroup(e)) in term \(e.term.map(String.init) ?? "?")"
        case .walTruncated:
            return "node \(node) cut a torn WAL record off \(e.path ?? "?") at byte \(e.offset.map(String.init) ?? "?"): \(e.reason ?? "")"
        case .experimentStarted: return "experiment \(e.runID) started: \(e.reason ?? "")" + (e.path.map { " in \($0)" } ?? "")
        case .experimentProgress: return "experiment \(e.runID): \(e.reason ?? "")"
        case .experimentFinished: return "experiment \(e.runID) ended: \(e.reason ?? "")" + (e.path.map { "; report \($0)/report.html" } ?? "")
        case .supervisorStarted:
            return "kvsupervisor \(e.version ?? "") started (pid \(e.pid.map(String.init) ?? "?"), config \(e.path ?? "built-in default"))"
        case .supervisorStopping: return "kvsupervisor stopping"
        case .configReloaded:
            var s = "configuration reloaded from \(e.path ?? "?"): \(e.reason ?? "")"
            for c in e.changes ?? [] { s += "; \(c.key) \(c.old) -> \(c.new) \(c.outcome.rawValue) (\(c.reason))" }
            return s
        case .configRejected: return "configuration reload refused, old configuration kept: \(e.reason ?? "")"
        case .replicationLag:
            return "node \(node): \(e.count ?? 0) writes reached the standby in the last second, lag max \(format(e.lagMsMax ?? 0)) ms, "
                + "mean \(format(e.lagMsMean ?? 0)) ms; \(e.queued ?? 0) unconfirmed"
        case .syncStarted, .syncFinished, .primaryResumed: return "coordinator \(node): \(e.reason ?? e.kind.rawValue)"
        default: return "\(e.kind.rawValue) \(node)"
        }
    }

    /// syslog priorities: 3 err, 4 warning, 5 notice, 6 info.
    public static func priority(_ e: Event) -> Int {
        switch e.kind {
        case .faultFailed, .configRejected: return 3
        case .configReloaded where e.changes?.contains(where: { $0.outcome == .refused }) == true: return 4
        case .declaredDead, .nodeExited, .leaderLost, .walTruncated: return 4
        case .faultApplied, .faultCleared, .declaredAlive, .leaderElected, .configReloaded, .syncStarted, .syncFinished, .primaryResumed:
            return 5
        default: return 6
        }
    }

    static func format(_ ms: Double) -> String {
        let tenths = (ms * 10).rounded() / 10
        return tenths == tenths.rounded() ? String(Int(tenths)) : String(tenths)
    }
}

extension String {
    func replacingUnderscores() -> String { String(map { $0 == "_" ? " " : $0 }) }
}
