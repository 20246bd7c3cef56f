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

    static func json(_ value: JSONValue) -> String {
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
    static func eventLine(_ e: JSONValue) -> String {
        var parts: [String] = []
        if let wall = e["t_wall_ms"]?.intValue { parts.append(clock(wall)) }
        parts.append(text(e["event"]).padding(15))
        if let n = e["node"]?.stringValue { parts.append("node=\(n)") }
        if let p = e["peer"]?.stringValue { parts.append("peer=\(p)") }
        if let f = e["fault"]?.stringValue { parts.append("fault=\(f)") }
        if let l = e["detection_latency_ms"]?.doubleValue { parts.append("latency_ms=\(round3(l))") }
        if let o = e["detector_overshoot_ms"]?.doubleValue { parts.append("overshoot_ms=\(round3(o))") }
        if let l = e["label"]?.stringValue { parts.append(l) }
        if let s = e["signal"]?.stringValue { parts.append("signal=\(s)") }
        if let c = e["exit_code"]?.intValue { parts.append("exit_code=\(c)") }
        if let id = e["fault_id"]?.stringValue { parts.append("fault_id=\(id)") }
        if let a = e["applied"]?["mono_ns"]?.intValue, let f = e["effect"]?["mono_ns"]?.intValue {
            parts.append("effect_after_ms=\(round3(Double(f - a) / 1e6))")
        }
        if let r = e["reason"]?.stringValue { parts.append("reason=\"\(r)\"") }
        return parts.joined(separator: " ")
    }

    static func round3(_ x: Double) -> String { String((x * 1000).rounded() / 1000) }

    static func clock(_ wallMs: Int) -> String {
        let ms = wallMs % 1000, s = (wallMs / 1000) % 60, m = (wallMs / 60_000) % 60, h = (wallMs / 3_600_000) % 24
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(two(h)):\(two(m)):\(two(s)).\(ms < 10 ? "00" : ms < 100 ? "0" : "")\(ms)Z"
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
