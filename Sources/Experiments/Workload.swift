import Core
import SplitMix

/// What one client of a linearizability run asks next: an operation drawn from the spec's mix on
/// a random key, with a value no other operation writes ("3-17": client 3's 17th), so that a read
/// names the one write it saw. Pure: a seeded generator per client.
public struct Workload: Sendable {
    public enum Op: Sendable, Equatable {
        case get(String)
        case put(String, String)
        /// expected nil: the key must be absent.
        case cas(String, expected: String?, new: String)
        case delete(String)
        /// Keys of one group (a write is atomic only within one), each with its own value.
        case mput([Pair])
    }

    public struct Pair: Sendable, Equatable {
        public var key: String
        public var value: String
    }

    public let client: Int
    public let keys: [String]
    private let mix: LinearizabilitySpec.Mix
    /// Keys by their group, for mput.
    private let byGroup: [[String]]
    private var rng: SplitMix64
    private var written = 0
    /// The last value this client saw for each key (read or written): its cas expects it.
    private var lastSeen: [String: String?] = [:]

    /// The run's keys: k0, k1, ...
    public static func keys(_ count: Int) -> [String] { (0..<count).map { "k\($0)" } }

    public init(client: Int, spec: LinearizabilitySpec) {
        self.client = client
        self.keys = Self.keys(spec.keys)
        self.mix = spec.mix
        let groups = spec.layout.groups
        byGroup = (0..<groups).map { g in Self.keys(spec.keys).filter { KeyGroups.group(of: $0, groups: groups) == g } }
        rng = SplitMix64(seed: SplitMix64.mix(spec.seed &+ UInt64(client) &* 0x9E37_79B9))
    }

    public mutating func next() -> Op {
        var pick = Int(rng.next() % UInt64(mix.total))
        let key = keys[Int(rng.next() % UInt64(keys.count))]
        for (weight, make) in [(mix.get, 0), (mix.put, 1), (mix.cas, 2), (mix.delete, 3), (mix.mput, 4)] {
            if pick < weight {
                switch make {
                case 0: return .get(key)
                case 1: return .put(key, value())
                case 2: return .cas(key, expected: lastSeen[key] ?? nil, new: value())
                case 3: return .delete(key)
                default:
                    let group = byGroup.filter { !$0.isEmpty }.randomElement(using: &rng) ?? [key]
                    let chosen = group.shuffled(using: &rng).prefix(min(group.count, 3))
                    return .mput(chosen.sorted().map { Pair(key: $0, value: value()) })
                }
            }
            pick -= weight
        }
        return .get(key)
    }

    /// What the client learned from an answer (a read's value, an acknowledged write's).
    public mutating func saw(_ key: String, _ value: String?) { lastSeen[key] = .some(value) }

    private mutating func value() -> String {
        written += 1
        return "\(client)-\(written)"
    }
}
