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
/// `type`: invoke, ok, fail (did not take effect), info (outcome unknown); a completion closes the
/// client's open invocation. `f`: for a key-value store get, put, append, delete, cas; for a
/// register read, write, cas. `value`: what is written or appended, a get/read's result on its
/// `ok`, a cas's new value; `expected`: a cas's expected value (null: absent). `key` defaults to
/// "" (one register). `t_mono_ns`: CLOCK_MONOTONIC nanoseconds (any monotonic clock will do).
public enum JSONLHistory {
    public enum Model: String, Sendable { case register, kv }

    struct Line: Decodable {
        var type: String
        var client: Int
        var key: String?
        var f: String
        var value: Scalar?
        var expected: Scalar?
        var tMonoNs: Int64

        enum CodingKeys: String, CodingKey {
            case type, client, key, f, value, expected, tMonoNs = "t_mono_ns"
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

    public static func parseKV(_ text: String) throws(HistoryError) -> [Operation<KVModel.Input, KVModel.Output>] {
        try parse(text) { (l: Line, line: Int) throws(HistoryError) -> KVModel.Input in
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

    public static func parseRegister(_ text: String) throws(HistoryError) -> [Operation<RegisterModel.Input, RegisterModel.Output>] {
        try parse(text) { (l: Line, line: Int) throws(HistoryError) -> RegisterModel.Input in
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
        _ text: String, input: (Line, Int) throws(HistoryError) -> I, output: (Line, Int) throws(HistoryError) -> O
    ) throws(HistoryError) -> [Operation<I, O>] {
        var operations: [Operation<I, O>] = []
        var open: [Int: Int] = [:]
        let decoder = JSONDecoder()
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = n + 1
            guard raw.contains(where: { $0 != " " && $0 != "\r" }) else { continue }
            let l: Line
            do { l = try decoder.decode(Line.self, from: Data(raw.utf8)) } catch {
                throw HistoryError(line: number, message: "not a history event (need type, client, f, t_mono_ns): \(error)")
            }
            switch l.type {
            case "invoke":
                if let i = open[l.client] { operations[i].outcome = .unknown; operations[i].complete = nil }
                open[l.client] = operations.count
                operations.append(Operation(client: l.client, key: l.key ?? "", input: try input(l, number), output: nil,
                                            outcome: .unknown, invoke: l.tMonoNs, complete: nil))
            case "ok", "fail", "info":
                guard let i = open.removeValue(forKey: l.client) else {
                    throw HistoryError(line: number, message: "client \(l.client) completes an operation it never invoked")
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
}
