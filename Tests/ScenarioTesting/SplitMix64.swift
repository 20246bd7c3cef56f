import RaftSimulation

/// The seeded generator the tests share with the simulator (SplitMix64): a failing seed replays exactly.
public typealias SplitMix64 = SimRandom
