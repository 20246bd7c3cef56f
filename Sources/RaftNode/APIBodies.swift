import Core
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The HTTP contract's types are Core's `KVHTTP` (kvctl reads and writes the same ones); the
/// server's names for them:
typealias SeqField = KVHTTP.Seq
typealias PutBody = KVHTTP.PutRequest
typealias MPutBody = KVHTTP.MPutRequest
typealias CASBody = KVHTTP.CASRequest
typealias DeleteBody = KVHTTP.DeleteRequest
typealias ErrorBody = KVHTTP.ErrorReply
typealias WriteReplyBody = KVHTTP.WriteReply
typealias ValueBody = KVHTTP.ValueReply
typealias StatusBody = KVHTTP.StatusReply

enum Decoded<T> {
    case success(T)
    /// What was wrong, in one line.
    case failure(String)
}

enum JSON {
    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(value)) ?? Data("{}".utf8)) + [0x0A]
    }

    /// Decodes `bytes` as `T`, or says in one line which field was wrong and how.
    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) -> Decoded<T> {
        do {
            return .success(try JSONDecoder().decode(type, from: Data(bytes)))
        } catch let DecodingError.keyNotFound(key, _) {
            return .failure("missing field '\(key.stringValue)'" + (key.stringValue == "expected" ? " (null: only if the key is absent)" : ""))
        } catch let DecodingError.typeMismatch(expected, ctx) {
            if ctx.codingPath.isEmpty { return .failure("the body must be a JSON object") }
            return .failure("field '\(path(ctx))': expected \(describe(expected, field: ctx.codingPath.last?.stringValue))")
        } catch let DecodingError.valueNotFound(expected, ctx) {
            return .failure("field '\(path(ctx))' is null: expected \(describe(expected, field: ctx.codingPath.last?.stringValue))")
        } catch DecodingError.dataCorrupted(let ctx) {
            // A number that does not fit the field (-1 or 1.5 for a seq): say what fits, not Swift's words.
            guard let field = ctx.codingPath.last?.stringValue else { return .failure("the body is not valid JSON") }
            return .failure("field '\(path(ctx))': expected \(describe(UInt64.self, field: field))")
        } catch {
            return .failure("the body is not valid JSON")
        }
    }

    private static func path(_ ctx: DecodingError.Context) -> String {
        ctx.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    private static func describe(_ type: Any.Type, field: String?) -> String {
        if field == "seq" { return "a whole number, 1 or more" }
        switch type {
        case is String.Type: return "a string"
        case is UInt64.Type: return "a whole number, 0 or more"
        default: return type is any Collection.Type ? "an array" : "an object"
        }
    }
}
