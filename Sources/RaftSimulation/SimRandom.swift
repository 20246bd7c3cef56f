import SplitMix

/// The simulator's only source of randomness (SplitMix64): one seed replays a schedule exactly.
public struct SimRandom: RandomNumberGenerator, Sendable {
    private var generator: SplitMix64
    public var state: UInt64 { generator.state }
    public init(seed: UInt64) { generator = SplitMix64(seed: seed) }
    public mutating func next() -> UInt64 { generator.next() }

    /// True with the given chance in percent.
    public mutating func chance(_ percent: UInt64) -> Bool { next() % 100 < percent }
    /// Uniform in 0..<n.
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    public mutating func pick<T>(_ xs: [T]) -> T { xs[below(xs.count)] }
}
