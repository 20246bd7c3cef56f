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

    public init(method: String, parameters: JSONValue? = nil, more: Bool? = nil) {
        self.method = method; self.parameters = parameters; self.more = more
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
}

/// The standard org.varlink.service errors.
public enum VarlinkError {
    public static let methodNotFound = "org.varlink.service.MethodNotFound"
    public static let interfaceNotFound = "org.varlink.service.InterfaceNotFound"
    public static let invalidParameter = "org.varlink.service.InvalidParameter"
    public static let methodNotImplemented = "org.varlink.service.MethodNotImplemented"
    public static let expectedMore = "org.varlink.service.ExpectedMore"
}
