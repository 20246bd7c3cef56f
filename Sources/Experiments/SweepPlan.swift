import SplitMix
/// The trials of a detection sweep, in the order they run: a fresh cluster per cell, and within a
/// cell each trial's fault at a random phase of the heartbeat interval. Fully determined by the
/// spec (the seed included), so a spec run twice gets the same schedule of phases and faults.
public struct SweepPlan: Sendable, Equatable {
    public struct Cell: Hashable, Sendable, CustomStringConvertible {
        public var intervalMs: Int
        public var timeoutMs: Int
        public var detector: DetectionSweepSpec.Detector
        public var description: String { "I=\(intervalMs) ms T=\(timeoutMs) ms \(detector.rawValue)" }
    }

    public struct Trial: Hashable, Sendable {
        public var cell: Cell
        /// 0-based within its cell.
        public var index: Int
        /// How far into the heartbeat interval the fault lands, after the last beat, in µs.
        public var phaseUs: Int
    }

    public var cells: [Cell]
    /// Cells whose timeout is not above their interval: every peer would be declared dead between beats.
    public var skipped: [Cell]
    public var trials: [Trial]

    public init(_ spec: DetectionSweepSpec) {
        var rng = PlanRandom(seed: spec.seed)
        var cells: [Cell] = [], skipped: [Cell] = [], trials: [Trial] = []
        for detector in spec.detectors {
            for interval in spec.intervalsMs {
                for timeout in spec.timeoutsMs {
                    let cell = Cell(intervalMs: interval, timeoutMs: timeout, detector: detector)
                    guard timeout > interval else { skipped.append(cell); continue }
                    cells.append(cell)
                    for i in 0..<spec.trials {
                        trials.append(Trial(cell: cell, index: i, phaseUs: Int(rng.next() % UInt64(interval * 1000))))
                    }
                }
            }
        }
        self.cells = cells
        self.skipped = skipped
        self.trials = trials
    }
}

/// The plan's generator: the same sequence on every machine for a seed.
typealias PlanRandom = SplitMix64
