/// The store's keys and values in 256 dictionaries, by a hash of the key that is the same in every
/// process (FNV-1a, not Swift's seeded `hashValue`). A snapshot takes a copy of the store (each
/// shard's storage shared) and writes it on a worker while the Raft loop applies on: the first
/// write to a shard copies that shard alone, 1/256 of the store, instead of the whole dictionary at
/// once, which for millions of keys would hold the loop past an election timeout.
public struct ShardedMap: Sendable, Equatable {
    static let shardCount = 256
    private var shards = [[String: String]](repeating: [:], count: shardCount)
    public private(set) var count = 0

    public init() {}

    public init(_ pairs: [String: String]) {
        for (k, v) in pairs { self[k] = v }
    }

    static func shard(of key: String) -> Int {
        var h: UInt32 = 2_166_136_261
        for b in key.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
        return Int(h % UInt32(shardCount))
    }

    public subscript(key: String) -> String? {
        get { shards[Self.shard(of: key)][key] }
        set {
            let s = Self.shard(of: key)
            if let newValue {
                if shards[s].updateValue(newValue, forKey: key) == nil { count += 1 }
            } else if shards[s].removeValue(forKey: key) != nil {
                count -= 1
            }
        }
    }

    /// Sets (or with nil removes) `key` in one lookup; the value it had.
    @discardableResult
    public mutating func update(_ key: String, _ value: String?) -> String? {
        let s = Self.shard(of: key)
        let old = value.map { shards[s].updateValue($0, forKey: key) } ?? shards[s].removeValue(forKey: key)
        if old == nil && value != nil { count += 1 }
        if old != nil && value == nil { count -= 1 }
        return old
    }

    /// Every key, in no particular order.
    public var keys: [String] { shards.flatMap(\.keys) }

    public var isEmpty: Bool { count == 0 }

    /// The same map as one dictionary (tests and small stores).
    public var dictionary: [String: String] {
        var out: [String: String] = [:]
        out.reserveCapacity(count)
        for shard in shards { out.merge(shard) { a, _ in a } }
        return out
    }

    public static func == (a: ShardedMap, b: ShardedMap) -> Bool { a.count == b.count && a.shards == b.shards }
}

extension ShardedMap: Hashable {
    public func hash(into h: inout Hasher) {
        h.combine(count)
        for shard in shards { h.combine(shard) }
    }
}

extension ShardedMap: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, String)...) {
        self.init()
        for (k, v) in elements { self[k] = v }
    }
}
