/// The replicated store's HTTP API (SPEC 2.2) as types: request and reply bodies, shared by
/// kvnode (which decodes requests and encodes replies), kvctl kv (the reverse) and the tests, as
/// `ControlProtocol` is for the control socket. Field names are the JSON's.
public enum KVHTTP {
    /// A request's `seq`. Decoded on its own because FoundationEssentials reports -1 or 1.5 for a
    /// UInt64 as "not valid JSON" with no field; this says the field.
    public struct Seq: Codable, Sendable, Equatable {
        public let value: UInt64
        public init(_ value: UInt64) { self.value = value }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let v = try? c.decode(UInt64.self) { value = v; return }
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a whole number"))
        }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            try c.encode(value)
        }
    }

    /// What every write carries for deduplication: no client_id, no session (each copy applied).
    public protocol WriteRequest: Codable, Sendable {
        var client_id: String? { get set }
        var seq: Seq? { get set }
    }

    public struct PutRequest: WriteRequest, Equatable {
        public var client_id: String?
        public var seq: Seq?
        public var value: String
        public init(client_id: String? = nil, seq: Seq? = nil, value: String) {
            self.client_id = client_id; self.seq = seq; self.value = value
        }
    }

    public struct Pair: Codable, Sendable, Equatable {
        public var key: String
        public var value: String
        public init(key: String, value: String) { self.key = key; self.value = value }
    }

    public struct MPutRequest: WriteRequest, Equatable {
        public var client_id: String?
        public var seq: Seq?
        public var entries: [Pair]
        public init(client_id: String? = nil, seq: Seq? = nil, entries: [Pair]) {
            self.client_id = client_id; self.seq = seq; self.entries = entries
        }
    }

    public struct CASRequest: WriteRequest, Equatable {
        public var client_id: String?
        public var seq: Seq?
        public var key: String
        /// null: the key must be absent. Leaving it out is an error: a forgotten field must not
        /// mean "only if absent". Encoded as null when nil.
        public var expected: String?
        public var value: String

        public init(client_id: String? = nil, seq: Seq? = nil, key: String, expected: String?, value: String) {
            self.client_id = client_id; self.seq = seq; self.key = key; self.expected = expected; self.value = value
        }

        enum CodingKeys: String, CodingKey { case client_id, seq, key, expected, value }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            client_id = try c.decodeIfPresent(String.self, forKey: .client_id)
            seq = try c.decodeIfPresent(Seq.self, forKey: .seq)
            key = try c.decode(String.self, forKey: .key)
            guard c.contains(.expected) else {
                throw DecodingError.keyNotFound(CodingKeys.expected, .init(codingPath: [], debugDescription: "expected"))
            }
            expected = try c.decodeIfPresent(String.self, forKey: .expected)
            value = try c.decode(String.self, forKey: .value)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encodeIfPresent(client_id, forKey: .client_id)
            try c.encodeIfPresent(seq, forKey: .seq)
            try c.encode(key, forKey: .key)
            try c.encode(expected, forKey: .expected)  // null, never left out
            try c.encode(value, forKey: .value)
        }
    }

    public struct DeleteRequest: WriteRequest, Equatable {
        public var client_id: String?
        public var seq: Seq?
        public init(client_id: String? = nil, seq: Seq? = nil) { self.client_id = client_id; self.seq = seq }
    }

    /// Every refusal: a sentence and a code, with the fields that code needs.
    public struct ErrorReply: Codable, Sendable, Equatable {
        public var error: String
        public var code: String
        public var leader: String?
        public var leader_addr: String?
        public var current: String?
        public var latest_seq: UInt64?
        public var key: String?
        public init(error: String, code: String, leader: String? = nil, leader_addr: String? = nil, current: String? = nil,
                    latest_seq: UInt64? = nil, key: String? = nil) {
            self.error = error; self.code = code; self.leader = leader; self.leader_addr = leader_addr; self.current = current
            self.latest_seq = latest_seq; self.key = key
        }
    }

    public struct WriteReply: Codable, Sendable, Equatable {
        public var ok = true
        public var index: UInt64
        /// DELETE: whether the key held a value (false: it was already absent).
        public var existed: Bool?
        public init(index: UInt64, existed: Bool? = nil) { self.index = index; self.existed = existed }
    }

    public struct ValueReply: Codable, Sendable, Equatable {
        public var key: String
        public var value: String
        /// The applied index the read saw: the value is the store's as of this index.
        public var index: UInt64
        /// How it was read: linearizable (ReadIndex) or stale (this replica's store as it is).
        public var consistency: String
        public init(key: String, value: String, index: UInt64, consistency: String) {
            self.key = key; self.value = value; self.index = index; self.consistency = consistency
        }
    }

    /// Any reply, as a client reads it before it knows which one it got.
    public struct AnyReply: Decodable, Sendable {
        public var value: String?
        public var index: UInt64?
        public var existed: Bool?
        public var error: String?
        public var code: String?
        /// A redirect's or a refusal's: the leader to ask, a failed cas's current value.
        public var leader: String?
        public var current: String?
        public init() {}
    }
}
