#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A method call as sent by a client: `{"method": "iface.Method", "parameters": {...}, "more": true}`.
public struct VarlinkCall: Sendable, Codable, Equatable {
    public var method: String
    public var parameters: JSONValue?
    public var more: Bool?
    public var oneway: Bool?
    public var upgrade: Bool?
    /// The call as received (the server sets it), so that a method decodes its own typed parameters.
    public var frame: [UInt8] = []

    enum CodingKeys: String, CodingKey { case method, parameters, more, oneway, upgrade }

    public init(method: String, parameters: JSONValue? = nil, more: Bool? = nil) {
        self.method = method; self.parameters = parameters; self.more = more
    }

    /// Decodes the call's `parameters` as `P` (absent parameters as `{}`). A refusal names the
    /// top-level parameter that was wrong and why, for an InvalidParameter error.
    public func decodeParameters<P: Decodable>(_ type: P.Type) throws(VarlinkParameterError) -> P {
        do {
            if let p = try JSONDecoder().decode(CallEnvelope<P>.self, from: Data(frame)).parameters { return p }
            return try JSONDecoder().decode(P.self, from: Data("{}".utf8))
        } catch let DecodingError.typeMismatch(expected, context) {
            throw VarlinkParameterError(name: Self.parameterName(context.codingPath), reason: "must be \(Self.typeName(expected))")
        } catch let DecodingError.keyNotFound(key, context) {
            let path = context.codingPath.dropFirst()  // "parameters"
            throw VarlinkParameterError(name: path.first?.stringValue ?? key.stringValue, reason: "is required")
        } catch let DecodingError.valueNotFound(expected, context) {
            throw VarlinkParameterError(name: Self.parameterName(context.codingPath), reason: "must be \(Self.typeName(expected)), not null")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw VarlinkParameterError(name: Self.parameterName(context.codingPath), reason: context.debugDescription)
        } catch {
            // Some decoders report a fraction for an Int, or an integer out of range, without a
            // path: find the parameter whose removal lets the rest decode.
            if case .object(let object)? = (try? JSONDecoder().decode(CallEnvelope<JSONValue>.self, from: Data(frame)))?.parameters {
                for key in object.keys.sorted() {
                    var rest = object
                    rest[key] = nil
                    guard let data = try? JSONEncoder().encode(JSONValue.object(rest)) else { continue }
                    do {
                        _ = try JSONDecoder().decode(P.self, from: data)
                    } catch DecodingError.keyNotFound(let missing, _) where missing.stringValue == key {
                    } catch { continue }
                    throw VarlinkParameterError(name: key, reason: "has a value of the wrong kind: a fraction, or out of range")
                }
            }
            throw VarlinkParameterError(name: "parameters", reason: "\(error)")
        }
    }

    private static func parameterName(_ path: [any CodingKey]) -> String {
        path.dropFirst().first?.stringValue ?? "parameters"
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt32.Type: return "an integer"
        case is Double.Type: return "a number"
        case is Bool.Type: return "a boolean"
        default:
            let name = "\(type)"
            return name.hasPrefix("Array") ? "an array" : name.hasPrefix("Dictionary") ? "an object" : "of type \(name)"
        }
    }

    /// "io.kvsupervisor" of "io.kvsupervisor.GetStatus".
    public var interface: String {
        guard let dot = method.lastIndex(of: ".") else { return "" }
        return String(method[..<dot])
    }
    public var wantsMore: Bool { more == true }
}

/// A reply: parameters, or an error with parameters; `continues` marks more replies to come.
public struct VarlinkReply: Sendable, Codable, Equatable {
    public var parameters: JSONValue?
    public var error: String?
    public var continues: Bool?

    public init(parameters: JSONValue? = .object([:]), error: String? = nil, continues: Bool? = nil) {
        self.parameters = parameters; self.error = error; self.continues = continues
    }

    public static func failure(_ name: String, _ parameters: JSONValue = .object([:])) -> VarlinkReply {
        VarlinkReply(parameters: parameters, error: name)
    }

    public func encoded() -> [UInt8] {
        var bytes = Array((try? JSONEncoder().encode(self)) ?? Data("{}".utf8))
        bytes.append(0)
        return bytes
    }

    /// A reply frame with typed parameters, NUL included.
    public static func frame(_ parameters: some Encodable, continues: Bool? = nil) -> [UInt8] {
        var bytes = Array((try? JSONEncoder().encode(ReplyEnvelope(parameters: parameters, continues: continues)))
            ?? Data(#"{"error":"org.varlink.service.InvalidParameter","parameters":{"parameter":"reply"}}"#.utf8))
        bytes.append(0)
        return bytes
    }
}

private struct CallEnvelope<P: Decodable>: Decodable { var parameters: P? }
private struct ReplyEnvelope<P: Encodable>: Encodable { var parameters: P; var continues: Bool? }

/// A method's parameter that could not be decoded: which one, and why.
public struct VarlinkParameterError: Error, Sendable, Equatable {
    public var name: String
    public var reason: String
    public init(name: String, reason: String) { self.name = name; self.reason = reason }
}

/// The standard org.varlink.service errors.
public enum VarlinkError {
    public static let methodNotFound = "org.varlink.service.MethodNotFound"
    public static let interfaceNotFound = "org.varlink.service.InterfaceNotFound"
    public static let invalidParameter = "org.varlink.service.InvalidParameter"
    public static let methodNotImplemented = "org.varlink.service.MethodNotImplemented"
    public static let expectedMore = "org.varlink.service.ExpectedMore"
}
