/// SplitMix64 (Steele, Lea and Flood, 2014): small, fast, and the same sequence on every machine,
/// so that one seed replays a schedule, a sweep's phases or a Raft node's election timeouts.
/// The one definition every target with seeded randomness uses.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// The output function alone: a fixed pseudo-random value for `x` (SplitMix64 of a counter).
    @inline(__always)
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
