/// Key-value histories as EDN maps, one a line:
/// `{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}`; completions have
/// `:type :ok` (a get's carries the value read), `:fail` or `:info` (outcome unknown).
/// Operations: get, put, append, delete, cas (`:value ["expected" "new"]`, expected may be nil).
public enum EDNHistory {
    public static func parse(_ text: String) throws(HistoryError) -> [Operation<KVModel.Input, KVModel.Output>] {
        var pairing = Pairing<KVModel.Input, KVModel.Output>()
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = n + 1
            let trimmed = raw.trimmingSpaces()
            if trimmed.isEmpty || trimmed.hasPrefix(";") { continue }
            var reader = EDNReader(Array(trimmed.utf8), line: line)
            let map = try reader.map()
            guard case .integer(let client)? = map["process"] else { throw HistoryError(line: line, message: "no integer :process") }
            guard case .keyword(let type)? = map["type"] else { throw HistoryError(line: line, message: "no :type keyword") }
            guard case .keyword(let f)? = map["f"] else { throw HistoryError(line: line, message: "no :f keyword") }
            let key: String
            switch map["key"] {
            case .string(let s)?: key = s
            case .integer(let i)?: key = String(i)
            default: throw HistoryError(line: line, message: "no :key (a string or an integer)")
            }
            let value = map["value"] ?? .null
            switch type {
            case "invoke":
                pairing.invoke(client: Int(client), key: key, input: try input(f, value, line: line), line: line)
            case "ok":
                let output: KVModel.Output
                if f == "get" {
                    switch value {
                    case .string(let s): output = .value(s)
                    case .null: output = .value(nil)
                    default: throw HistoryError(line: line, message: "get returned a non-string value")
                    }
                } else {
                    output = .done
                }
                guard pairing.complete(client: Int(client), outcome: .ok, output: output, line: line) else {
                    throw HistoryError(line: line, message: "process \(client) completed :\(f) that it never invoked")
                }
            case "fail":
                _ = pairing.complete(client: Int(client), outcome: f == "get" ? .unknown : .fail, output: .done, line: line)
            case "info":
                _ = pairing.complete(client: Int(client), outcome: .unknown, output: nil, line: line)
            default:
                throw HistoryError(line: line, message: "unknown :type :\(type) (expected invoke, ok, fail or info)")
            }
        }
        return pairing.operations
    }

    private static func input(_ f: String, _ value: EDNValue, line: Int) throws(HistoryError) -> KVModel.Input {
        func string() throws(HistoryError) -> String {
            guard case .string(let s) = value else { throw HistoryError(line: line, message: ":\(f) needs a string :value") }
            return s
        }
        switch f {
        case "get": return .get
        case "put": return .put(try string())
        case "append": return .append(try string())
        case "delete": return .delete
        case "cas":
            guard case .vector(let pair) = value, pair.count == 2, case .string(let new) = pair[1] else {
                throw HistoryError(line: line, message: ":cas needs :value [expected new]")
            }
            switch pair[0] {
            case .string(let e): return .cas(expected: e, new: new)
            case .null: return .cas(expected: nil, new: new)
            default: throw HistoryError(line: line, message: ":cas expected value must be a string or nil")
            }
        default:
            throw HistoryError(line: line, message: "unknown :f :\(f) (expected get, put, append, delete or cas)")
        }
    }
}

enum EDNValue: Equatable {
    case null
    case integer(Int64)
    case string(String)
    case keyword(String)
    case vector([EDNValue])
}

/// Just enough EDN for history lines: one map of keywords to nil, integers, strings, keywords
/// and vectors of those.
struct EDNReader {
    private let bytes: [UInt8]
    private var pos = 0
    private let line: Int

    init(_ bytes: [UInt8], line: Int) { self.bytes = bytes; self.line = line }

    mutating func map() throws(HistoryError) -> [String: EDNValue] {
        skip()
        guard next() == UInt8(ascii: "{") else { throw fail("expected '{' starting a map") }
        var result: [String: EDNValue] = [:]
        while true {
            skip()
            if peek() == UInt8(ascii: "}") { pos += 1; return result }
            guard case .keyword(let k) = try value() else { throw fail("map keys must be keywords") }
            skip()
            result[k] = try value()
        }
    }

    private mutating func value(depth: Int = 0) throws(HistoryError) -> EDNValue {
        skip()
        guard let c = peek() else { throw fail("unexpected end of line") }
        switch c {
        case UInt8(ascii: ":"):
            pos += 1
            return .keyword(token())
        case UInt8(ascii: "\""):
            pos += 1
            var out: [UInt8] = []
            while let b = next() {
                if b == UInt8(ascii: "\"") { return .string(String(decoding: out, as: UTF8.self)) }
                if b == UInt8(ascii: "\\") {
                    guard let e = next() else { break }
                    out.append(e == UInt8(ascii: "n") ? 10 : e == UInt8(ascii: "t") ? 9 : e)
                } else {
                    out.append(b)
                }
            }
            throw fail("unterminated string")
        case UInt8(ascii: "["):
            guard depth < 8 else { throw fail("vectors nested too deep") }
            pos += 1
            var items: [EDNValue] = []
            while true {
                skip()
                if peek() == UInt8(ascii: "]") { pos += 1; return .vector(items) }
                items.append(try value(depth: depth + 1))
            }
        default:
            let t = token()
            if t == "nil" { return .null }
            if let i = Int64(t) { return .integer(i) }
            throw fail("unexpected '\(t.isEmpty ? String(UnicodeScalar(c)) : t)'")
        }
    }

    private mutating func token() -> String {
        let start = pos
        while let c = peek(), !(c == 32 || c == 44 || c == 9 || c == UInt8(ascii: "}") || c == UInt8(ascii: "]")) { pos += 1 }
        return String(decoding: bytes[start..<pos], as: UTF8.self)
    }

    /// Whitespace and commas (EDN treats commas as whitespace).
    private mutating func skip() { while let c = peek(), c == 32 || c == 44 || c == 9 || c == 13 { pos += 1 } }
    private func peek() -> UInt8? { pos < bytes.count ? bytes[pos] : nil }
    private mutating func next() -> UInt8? { defer { pos += 1 }; return peek() }
    private func fail(_ message: String) -> HistoryError { HistoryError(line: line, message: message + " (column \(pos + 1))") }
}
