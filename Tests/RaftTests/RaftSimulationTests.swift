import Foundation
import Core
@testable import RaftSimulation
import Testing

/// Seeded random schedules (RaftSimulation): crashes mid-write, partitions, loss, duplication,
/// reordering, snapshots, transfers, retrying clients. A failure names its seed and the command
/// that replays it alone with a trace. `make test` also runs 10,000 of them from the release build
/// (`kvctl sim schedules`); here 300, so that a debug `swift test` stays quick.
@Test func raftSimulationKeepsItsInvariants() {
    let only = ProcessInfo.processInfo.environment["KV_RAFT_SEED"].flatMap(UInt64.init)
    let count = UInt64(ProcessInfo.processInfo.environment["KV_RAFT_SCHEDULES"].flatMap(Int.init) ?? 300)
    let seeds: [UInt64] = only.map { [$0] } ?? Array(1...count)
    var commits = 0, elections = 0, installs = 0, acked = 0, reads = 0, midWrite = 0, linearizable = 0
    let started = Date()
    for seed in seeds {
        var options = ScheduleOptions(seed: seed)
        options.trace = only != nil
        let r = Simulation(options).run()
        if only != nil && !r.violations.isEmpty { print(r.trace.suffix(400).joined(separator: "\n")) }
        #expect(r.violations.isEmpty, "seed \(seed): \(r.violations.joined(separator: "; ")) — replay: kvctl sim schedules --seed \(seed) --count 1 --trace")
        commits += r.entriesCommitted
        elections += r.leadersElected
        installs += r.snapshotsInstalled
        acked += r.acknowledged
        reads += r.readIndexReads
        midWrite += r.crashesMidWrite
        if r.linearizable == .linearizable { linearizable += 1 }
    }
    let seconds = Date().timeIntervalSince(started)
    print("raft simulation: \(seeds.count) schedules in \(String(format: "%.1f", seconds)) s; \(elections) leaders, "
          + "\(commits) entries committed, \(installs) snapshots installed, \(midWrite) crashes mid-write, "
          + "\(acked) writes acknowledged, \(reads) ReadIndex reads, \(linearizable) histories linearizable")
    // The schedules must exercise what they claim to.
    #expect(elections > seeds.count && commits > seeds.count * 5)
    if only == nil {
        #expect(installs > 0 && midWrite > 0 && reads > 0 && acked > seeds.count)
        #expect(linearizable == seeds.count)
    }
}

@Test func aScheduleReplaysExactly() {
    let a = Simulation(ScheduleOptions(seed: 7)).run(), b = Simulation(ScheduleOptions(seed: 7)).run()
    #expect(a.entriesCommitted == b.entriesCommitted && a.leadersElected == b.leadersElected && a.operations == b.operations)
    var traced = ScheduleOptions(seed: 7)
    traced.trace = true
    let c = Simulation(traced).run()
    #expect(c.entriesCommitted == a.entriesCommitted && c.trace.count > 1000)
    #expect(a.entriesCommitted > 0)
}

/// One and two replicas are clusters too: `kvctl sim schedules --size 1` once trapped picking a
/// second replica (for a transfer or a one-way partition) from an empty list.
@Test(arguments: [1, 2])
func smallClustersRunTheirSchedules(size: Int) {
    for seed in UInt64(1)...30 {
        let r = Simulation(ScheduleOptions(seed: seed, size: size)).run()
        #expect(r.violations.isEmpty, "seed \(seed), \(size) replicas: \(r.violations)")
        #expect(r.linearizable == .linearizable, "seed \(seed), \(size) replicas")
    }
}

/// The step mix is a named table that adds up to 100, drawn in its order.
@Test func theStepMixIsANamedTableOf100() {
    #expect(Simulation.stepWeights.reduce(0) { $0 + $1.weight } == 100)
    #expect(Set(Simulation.stepWeights.map(\.action)).count == Simulation.StepAction.allCases.count)
    let rolls: [UInt64] = [0, 39, 40, 54, 56, 60, 63, 65, 66, 70, 73, 74, 82, 84, 85, 86, 87, 99]
    let actions: [Simulation.StepAction] = [
        .tick, .tick, .clientOperations, .crashAny, .crashLeader, .restartDown, .partitionHalves, .oneWayCut, .heal,
        .isolateLeaderWithFollower, .transferLeadership, .backgroundWrite, .reboot, .pause, .suspect, .suspect, .nothing, .nothing,
    ]
    #expect(rolls.map(Simulation.action(for:)) == actions)
}

/// Three groups on the same 3 or 5 replicas (a quarter of the default seeds run so too): every
/// invariant holds per group, each group commits and elects on its own, and the merged history,
/// each group on its own keys, is linearizable.
@Test(arguments: [3, 5])
func threeGroupsOnTheSameReplicasKeepTheirInvariants(size: Int) {
    for seed in UInt64(1)...25 {
        let r = Simulation(ScheduleOptions(seed: seed, size: size, groups: 3)).run()
        #expect(r.groups == 3)
        #expect(r.violations.isEmpty, "seed \(seed), \(size) replicas, 3 groups: \(r.violations) — replay: kvctl sim schedules --seed \(seed) --count 1 --size \(size) --groups 3 --trace")
        #expect(r.linearizable == .linearizable, "seed \(seed)")
        #expect(r.leadersElected >= 3 && r.acknowledged > 0, "seed \(seed): \(r.leadersElected) leaders, \(r.acknowledged) acknowledged")
    }
}

@Test func eachGroupsClientsUseKeysOfTheirGroup() {
    for g in 0..<3 {
        let keys = Clients.keys(group: g, of: 3)
        #expect(keys.count == 2 && keys.allSatisfy { KeyGroups.group(of: $0, groups: 3) == g })
    }
    #expect(Clients.keys(group: 0, of: 1) == ["x", "y"])
}
