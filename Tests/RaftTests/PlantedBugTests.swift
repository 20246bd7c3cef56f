#if RAFT_PLANTED_BUGS
import Foundation
import Raft
import RaftSimulation
import Testing

/// The simulation has teeth: built with -DRAFT_PLANTED_BUGS (make unit does it in a build folder of
/// its own, never for the shipped binaries), each planted bug must be caught within the budget.
/// ackOnPropose is not one: its core half only sends later, and its other half (answering the write
/// at once) is kvnode's; the failover experiment must find that one (integration-tests).
@Test(arguments: Raft.PlantedBug.allCases.filter { $0 != .ackOnPropose })
func theSimulationCatchesAPlantedBug(bug: Raft.PlantedBug) {
    let budget: UInt64 = 3000
    for seed in 1...budget {
        var options = ScheduleOptions(seed: seed)
        options.configure = { $0.plantedBug = bug }
        let r = Simulation(options).run()
        if !r.violations.isEmpty {
            print("planted bug \(bug.rawValue): caught by schedule \(seed) of \(budget): \(r.violations[0])")
            return
        }
    }
    Issue.record("planted bug \(bug.rawValue): no violation in \(budget) schedules")
}
#endif
