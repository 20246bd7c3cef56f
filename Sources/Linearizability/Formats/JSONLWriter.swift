/// Writes a key-value history in the lab's JSONL format (see JSONLHistory), so that a history a
/// program recorded (the Raft simulation's clients, an experiment) can go to `kvctl check`.
public enum JSONLWriter {
    public static func render(_ history: [Operation<KVModel.Input, KVModel.Output>]) -> String {
        var events: [(t: Int64, order: Int, line: String)] = []
        for (i, op) in history.enumerated() {
            let (f, value, expected): (String, String??, String??) = switch op.input {
            case .get: ("get", nil, nil)
            case .put(let v): ("put", .some(v), nil)
            case .append(let v): ("append", .some(v), nil)
            case .delete: ("delete", nil, nil)
            case .cas(let e, let n): ("cas", .some(n), .some(e))
            }
            let head = "\"client\":\(op.client),\"key\":\(quote(op.key)),\"f\":\"\(f)\""
            let invokeFields = head + field("value", op.input == .get ? nil : value) + field("expected", expected)
            events.append((op.invoke, 2 * i, line("invoke", invokeFields, op.invoke)))
            let end = op.complete ?? Int64.max
            switch op.outcome {
            case .unknown:
                events.append((end, 2 * i + 1, line("info", head, history.map { $0.complete ?? $0.invoke }.max() ?? op.invoke)))
            case .ok, .fail:
                var fields = invokeFields
                if case .value(let v)? = op.output { fields = head + field("value", .some(v)) }
                events.append((end, 2 * i + 1, line(op.outcome == .ok ? "ok" : "fail", fields, end)))
            }
        }
        events.sort { ($0.t, $0.order) < ($1.t, $1.order) }
        return events.map(\.line).joined(separator: "\n") + "\n"
    }

    private static func line(_ type: String, _ fields: String, _ t: Int64) -> String {
        "{\"v\":1,\"type\":\"\(type)\",\(fields),\"t_mono_ns\":\(t)}"
    }

    /// `,"name":value` when the field is present (an inner nil is JSON null).
    private static func field(_ name: String, _ v: String??) -> String {
        guard let v else { return "" }
        return ",\"\(name)\":" + (v.map(quote) ?? "null")
    }

    /// `s` as a JSON string.
    public static func quoted(_ s: String) -> String { quote(s) }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
