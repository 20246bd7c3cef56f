import Core
import Varlink
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Output for people (aligned tables, sentences) and for programs (`--json`).
enum Render {
    static func table(_ headers: [String], _ rows: [[String]]) -> String {
        var widths = headers.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(widths[i]) }.joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }

    static func json(_ value: some Encodable) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? e.encode(value)) ?? Data(), as: UTF8.self)
    }

    static func text(_ v: JSONValue?) -> String {
        switch v {
        case .none, .some(.null): return "-"
        case .some(.string(let s)): return s
        case .some(.integer(let i)): return String(i)
        case .some(.number(let n)): return n == n.rounded() && abs(n) < 9e15 ? String(Int64(n)) : String(n)
        case .some(.bool(let b)): return b ? "yes" : "no"
        default: return json(v!)
        }
    }

    /// One event as a line: time, kind, then what matters for it.
    static func eventLine(_ e: Event) -> String {
        var parts = [clock(Int(e.tWallMs)), e.kind.rawValue.padding(15)]
        if let n = e.node { parts.append("node=\(n)") }
        if let p = e.peer { parts.append("peer=\(p)") }
        if let f = e.fault { parts.append("fault=\(f.rawValue)") }
        if let l = e.detectionLatencyMs { parts.append("latency_ms=\(round3(l))") }
        if let o = e.detectorOvershootMs { parts.append("overshoot_ms=\(round3(o))") }
        if let l = e.label { parts.append(l.rawValue) }
        if let s = e.signal { parts.append("signal=\(s)") }
        if let c = e.exitCode { parts.append("exit_code=\(c)") }
        if let id = e.faultID { parts.append("fault_id=\(id)") }
        if let after = e.afterMs { parts.append("after_ms=\(after)") }
        if let leader = e.leader, e.kind != .leaderElected || leader != e.node { parts.append("leader=\(leader)") }
        if let term = e.term { parts.append("term=\(term)") }
        if let group = e.group { parts.append("group=\(group)") }
        if let since = e.sinceLostMs { parts.append("since_lost_ms=\(round3(since))") }
        if let a = e.applied, let f = e.effect { parts.append("effect_after_ms=\(round3(Double(f.monoNs - a.monoNs) / 1e6))") }
        if let r = e.reason { parts.append("reason=\"\(r)\"") }
        return parts.joined(separator: " ")
    }

    static func round3(_ x: Double) -> String { String((x * 1000).rounded() / 1000) }

    /// `x` with exactly `digits` decimals.
    static func fixed(_ x: Double, _ digits: Int) -> String { FixedText.fixed(x, digits) }

    static func clock(_ wallMs: Int) -> String {
        let ms = wallMs % 1000, s = (wallMs / 1000) % 60, m = (wallMs / 60_000) % 60, h = (wallMs / 3_600_000) % 24
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(two(h)):\(two(m)):\(two(s)).\(ms < 10 ? "00" : ms < 100 ? "0" : "")\(ms)Z"
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
