#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The lab's own history format: one operation event per line, JSON.
///
///     {"v":1,"type":"invoke","client":3,"key":"k1","f":"put","value":"x","t_mono_ns":1200}
///     {"v":1,"type":"ok","client":3,"key":"k1","f":"put","value":"x","t_mono_ns":1850}
///
/// `type`: invoke, ok, fail (did not take effect; a cas: its compare failed), info (outcome
/// unknown); a completion closes the client's open invocation on its key (a write of several keys
/// at once is an invocation per key). `f`: for a key-value store get, put, append, delete, cas; for a
/// register read, write, cas. `value`: what is written or appended, a get/read's result on its
/// `ok`, a cas's new value; `expected`: a cas's expected value (null: absent). `key` defaults to
/// "" (one register). `t_mono_ns`: CLOCK_MONOTONIC nanoseconds (any monotonic clock will do).
public enum JSONLHistory {
    public enum Model: String, Sendable { case register, kv }

    struct Line: Decodable {
        /// Schema version: 1, or absent (read as 1).
        var v: Int?
        var type: String
        var client: Int
        var key: String?
        var f: String
        var value: Scalar?
        var expected: Scalar?
        var tMonoNs: Int64

        enum CodingKeys: String, CodingKey {
            case v, type, client, key, f, value, expected, tMonoNs = "t_mono_ns"
        }
    }

    /// A JSON string, integer or null.
    enum Scalar: Decodable, Equatable {
        case string(String)
        case integer(Int)
        case null

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null }
            else if let i = try? c.decode(Int.self) { self = .integer(i) }
            else { self = .string(try c.decode(String.self)) }
        }
    }

    /// Which model the operations name: register for read/write, kv for get/put/append/delete.
    public static func detectModel(_ text: String) -> Model? {
        struct Head: Decodable { var f: String }
        let decoder = JSONDecoder()
        for raw in text.split(separator: "\n").prefix(10_000) {
            guard let head = try? decoder.decode(Head.self, from: Data(raw.utf8)) else { continue }
            switch head.f {
            case "read", "write": return .register
            case "get", "put", "append", "delete": return .kv
            default: continue
            }
        }
        return nil
    }

    /// What the parser let pass and the reader should be told (a torn last line).
    public typealias Notes = (String) -> Void

    /// `strict`: a last line cut short (the writer died mid-line) is an error; otherwise it is
    /// left out and said in `notes`, and the rest is checked.
    public static func parseKV(_ text: String, strict: Bool = true, notes: Notes? = nil)
        throws(HistoryError) -> [Operation<KVModel.Input, KVModel.Output>] {
        try parse(text, strict: strict, notes: notes) { (l: Line, line: Int) throws(HistoryError) -> KVModel.Input in
            func string(_ s: Scalar?, _ what: String) throws(HistoryError) -> String {
                guard case .string(let v)? = s else { throw HistoryError(line: line, message: "\(l.f) needs a string \(what)") }
                return v
            }
            switch l.f {
            case "get": return .get
            case "put": return .put(try string(l.value, "value"))
            case "append": return .append(try string(l.value, "value"))
            case "delete": return .delete
            case "cas":
                let expected: String?
                switch l.expected {
                case .string(let e)?: expected = e
                case .null?, nil: expected = nil
                default: throw HistoryError(line: line, message: "cas needs a string or null \"expected\"")
                }
                return .cas(expected: expected, new: try string(l.value, "value"))
            default: throw HistoryError(line: line, message: "unknown f '\(l.f)' for a key-value history (get, put, append, delete, cas)")
            }
        } output: { (l: Line, line: Int) throws(HistoryError) -> KVModel.Output in
            guard l.f == "get" else { return .done }
            switch l.value {
            case .string(let v)?: return .value(v)
            case .null?, nil: return .value(nil)
            default: throw HistoryError(line: line, message: "a get returns a string or null")
            }
        }
    }

    public static func parseRegister(_ text: String, strict: Bool = true, notes: Notes? = nil)
        throws(HistoryError) -> [Operation<RegisterModel.Input, RegisterModel.Output>] {
        try parse(text, strict: strict, notes: notes) { (l: Line, line: Int) throws(HistoryError) -> RegisterModel.Input in
            func int(_ s: Scalar?, _ what: String) throws(HistoryError) -> Int {
                guard case .integer(let v)? = s else { throw HistoryError(line: line, message: "\(l.f) needs an integer \(what)") }
                return v
            }
            switch l.f {
            case "read": return .read
            case "write": return .write(try int(l.value, "value"))
            case "cas": return .cas(from: try int(l.expected, "expected"), to: try int(l.value, "value"))
            default: throw HistoryError(line: line, message: "unknown f '\(l.f)' for a register history (read, write, cas)")
            }
        } output: { (l: Line, line: Int) throws(HistoryError) -> RegisterModel.Output in
            guard l.f == "read" else { return .done }
            switch l.value {
            case .integer(let v)?: return .value(v)
            case .null?, nil: return .value(nil)
            default: throw HistoryError(line: line, message: "a read returns an integer or null")
            }
        }
    }

    private static func parse<I: Sendable, O: Sendable>(
        _ text: String, strict: Bool, notes: Notes?, input: (Line, Int) throws(HistoryError) -> I,
        output: (Line, Int) throws(HistoryError) -> O
    ) throws(HistoryError) -> [Operation<I, O>] {
        var operations: [Operation<I, O>] = []
        // Open invocations by client and key: a write of several keys at once (an mput) is one
        // invocation per key, each closed by its own completion.
        var open: [OpenSlot: Int] = [:]
        let decoder = JSONDecoder()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (n, raw) in lines.enumerated() {
            let number = n + 1
            guard raw.contains(where: { $0 != " " && $0 != "\r" }) else { continue }
            let l: Line
            do { l = try decoder.decode(Line.self, from: Data(raw.utf8)) } catch {
                // The last line, with no newline after it, that does not parse: the writer stopped mid-line.
                if n == lines.count - 1 && !strict {
                    notes?("line \(number) is cut short (the file ends mid-line): left out, the \(number - 1) lines before it checked; "
                           + "--strict refuses such a file")
                    break
                }
                let torn = n == lines.count - 1 ? " (the file ends mid-line: was the writer stopped?)" : ""
                throw HistoryError(line: number, message: describe(error) + torn)
            }
            if let v = l.v, v != 1 {
                throw HistoryError(line: number, message: "schema version \"v\": \(v) is not one this checker reads (1)")
            }
            switch l.type {
            case "invoke":
                let slot = OpenSlot(client: l.client, key: l.key ?? "")
                if let i = open[slot] {
                    throw HistoryError(line: number, message: "client \(l.client) invokes again on key \"\(slot.key)\" while its operation "
                                       + "invoked at \(operations[i].invoke) ns is open; complete it first (info if its outcome is "
                                       + "unknown), or use another client id")
                }
                open[slot] = operations.count
                operations.append(Operation(client: l.client, key: l.key ?? "", input: try input(l, number), output: nil,
                                            outcome: .unknown, invoke: l.tMonoNs, complete: nil))
            case "ok", "fail", "info":
                guard let i = open.removeValue(forKey: OpenSlot(client: l.client, key: l.key ?? "")) else {
                    throw HistoryError(line: number, message: "client \(l.client) completes an operation on key \"\(l.key ?? "")\" "
                                       + "it never invoked")
                }
                guard l.tMonoNs >= operations[i].invoke else {
                    throw HistoryError(line: number, message: "completion at \(l.tMonoNs) ns before its invocation")
                }
                let outcome: Outcome = l.type == "ok" ? .ok : l.type == "fail" ? .fail : .unknown
                operations[i].outcome = outcome
                operations[i].output = outcome == .unknown ? nil : try output(l, number)
                operations[i].complete = outcome == .unknown ? nil : l.tMonoNs
            default:
                throw HistoryError(line: number, message: "unknown type '\(l.type)' (invoke, ok, fail, info)")
            }
        }
        return operations
    }

    private struct OpenSlot: Hashable { var client: Int; var key: String }

    /// A line that is not an event, said in terms of the format (never Swift's decoding words).
    private static func describe(_ error: any Error) -> String {
        let need = "an event needs type, client, f and t_mono_ns"
        switch error {
        case DecodingError.keyNotFound(let key, _): return "no \"\(key.stringValue)\" field: \(need)"
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx):
            guard let field = ctx.codingPath.last?.stringValue else { return "not a JSON object: \(need)" }
            let want = ["client": "an integer", "t_mono_ns": "an integer", "v": "an integer"][field] ?? "a string"
            return "\"\(field)\" must be \(want)"
        default: return "not valid JSON: \(need)"
        }
    }
}
