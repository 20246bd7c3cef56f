/// A node's name in the cluster ("A", "node1"). Validated once, at the edge.
public struct NodeID: Hashable, Sendable, Codable, Comparable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String

    /// Letters, digits, `-` and `_`, 1 to 32 characters: safe in paths, unit names and journal fields.
    public init?(validating raw: String) {
        guard (1...32).contains(raw.count),
              raw.unicodeScalars.allSatisfy({ $0.isASCIIAlnum || $0 == "-" || $0 == "_" })
        else { return nil }
        self.rawValue = raw
    }

    public init(stringLiteral value: String) {
        precondition(NodeID(validating: value) != nil, "invalid node id literal \(value)")
        self.rawValue = value
    }

    public init(from decoder: Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        guard let id = NodeID(validating: raw) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: "invalid node id '\(raw)': use 1-32 letters, digits, '-' or '_'"))
        }
        self = id
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }

    public var description: String { rawValue }
    public static func < (a: NodeID, b: NodeID) -> Bool { a.rawValue < b.rawValue }
}

extension Unicode.Scalar {
    var isASCIIAlnum: Bool {
        (0x30...0x39).contains(value) || (0x41...0x5A).contains(value) || (0x61...0x7A).contains(value)
    }
}
