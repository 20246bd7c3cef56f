import Core
import SplitMix
import Testing
@testable import Experiments
import TOML

private func parse(_ text: String) throws(ConfigError) -> LinearizabilitySpec {
    guard case .linearizability(let s) = try ExperimentSpecParser.parse(text: text, file: "lin.toml") else { fatalError("not a linearizability spec") }
    return s
}

private func refusal(_ body: String) -> ConfigError? {
    do { _ = try ExperimentSpecParser.parse(text: "[experiment]\nkind = \"linearizability\"\n" + body, file: "lin.toml"); return nil } catch {
        return error
    }
}

@Test func aLinearizabilitySpecWithItsKindAloneIsAOneGroupRaftStoreAndNoNemesis() throws {
    let s = try parse("[experiment]\nkind = \"linearizability\"\n")
    #expect(s == LinearizabilitySpec())
    #expect(s.layout.mode == .raft && s.layout.nodes == 3 && s.layout.groups == 1 && s.nemesis.isEmpty && s.durationS == 20)
}

@Test func everyKeyOfALinearizabilitySpecIsRead() throws {
    let s = try parse("""
        [experiment]
        kind = "linearizability"
        mode = "primary-backup"
        groups = 2
        clients = 7
        keys = 3
        ops = { get = 2, put = 1, mput = 1 }
        rate = 0
        duration_s = 5
        read_policy = "stale"
        op_timeout_ms = 300
        seed = 9

        [[experiment.nemesis]]
        fault = "delay"
        target = "NM"
        every_ms = 1000
        for_ms = 400
        delay_ms = 50
        jitter_ms = 10

        [[experiment.nemesis]]
        fault = "restart"
        target = "random"
        every_ms = 2500
        """)
    #expect(s.layout.mode == .primaryBackup && s.layout.nodes == 4 && s.layout.allNodes == ["NM", "A", "B", "C", "D"])
    #expect(s.clients == 7 && s.keys == 3 && s.mix.get == 2 && s.mix.put == 1 && s.mix.cas == 0 && s.mix.mput == 1)
    #expect(s.rate == 0 && s.durationS == 5 && s.readPolicy == .stale && s.opTimeoutMs == 300 && s.seed == 9)
    #expect(s.nemesis == [NemesisSpec(fault: .delay, target: .node("NM"), everyMs: 1000, forMs: 400, delayMs: 50, jitterMs: 10),
                          NemesisSpec(fault: .restart, target: .random, everyMs: 2500)])
    // The inline form reads the same.
    let inline = try parse("[experiment]\nkind = \"linearizability\"\nnemesis = [{ fault = \"kill\", target = \"leader\", every_ms = 2000 }]\n")
    #expect(inline.nemesis == [NemesisSpec(fault: .kill, target: .leader, everyMs: 2000, forMs: 1000)])
}

@Test func aBadNemesisOrMixIsRefusedWithItsLineAndWhatToDo() {
    let halves = refusal("[[experiment.nemesis]]\nfault = \"kill\"\ntarget = \"halves\"\nevery_ms = 1000\n")
    #expect(halves?.key == "experiment.nemesis[1].target" && halves?.line == 5 && halves?.problem.contains("partition") == true)
    let long = refusal("nemesis = [{ fault = \"stop\", every_ms = 1000, for_ms = 1000 }]\n")
    #expect(long?.key == "experiment.nemesis[1].for_ms" && long?.problem.contains("below every_ms") == true)
    let node = refusal("nemesis = [{ fault = \"kill\", target = \"E\", every_ms = 1000 }]\n")
    #expect(node?.problem.contains("no node 'E'") == true && node?.problem.contains("A, B, C") == true)
    #expect(refusal("nemesis = [{ fault = \"restart\", every_ms = 1000, for_ms = 10 }]\n")?.problem.contains("moment") == true)
    #expect(refusal("nemesis = [{ fault = \"delay\", every_ms = 2000 }]\n")?.key == "experiment.nemesis[1].delay_ms")
    #expect(refusal("nemesis = [{ fault = \"kill\", every_ms = 2000, delay_ms = 5 }]\n")?.problem.contains("only applies") == true)
    #expect(refusal("nemesis = [{ fault = \"crash\", every_ms = 1000 }]\n")?.problem.contains("kill, stop, partition, delay or restart") == true)
    #expect(refusal("nemesis = [{ fault = \"kill\" }]\n")?.key == "experiment.nemesis[1].every_ms")
    #expect(refusal("ops = { get = 0, put = 1 }\n")?.problem.contains("without reads") == true)
    #expect(refusal("ops = { read = 1 }\n")?.key == "experiment.ops.read")
    #expect(refusal("read_policy = \"lease\"\n")?.problem.contains("linearizable") == true)
    #expect(refusal("trials = 3\n")?.problem.contains("not a key of kind = \"linearizability\"") == true)
    #expect(refusal("mode = \"primary-backup\"\nnodes = 3\n")?.problem.contains("set groups") == true)
}

@Test func strikesComeEveryIntervalAndNoneOutlastsTheRun() {
    var s = LinearizabilitySpec(durationS: 10)
    s.nemesis = [NemesisSpec(fault: .partition, target: .leader, everyMs: 3000, forMs: 1500),
                 NemesisSpec(fault: .restart, target: .random, everyMs: 4000)]
    #expect(NemesisPlan.strikes(s).map { [$0.atMs, $0.entry] } == [[3000, 0], [4000, 1], [6000, 0], [8000, 1]])
}

@Test func aStrikesTargetsComeFromTheStoreAsItIsAndTheSeed() {
    let raft = StoreLayout(groups: 2)
    let view = NemesisPlan.View(layout: raft, leaders: [0: "A", 1: "C"], running: ["A", "B", "C"], keyGroups: [1, 1])
    var rng = SplitMix64(seed: 1)
    // key-leader: the leader of a workload key's group.
    #expect(NemesisPlan.resolve(NemesisSpec(fault: .kill, target: .keyLeader, everyMs: 1000, forMs: 500), view: view, rng: &rng)
            == .inject([FaultSpec(kind: .kill, node: "C")], restartAfterMs: 500))
    // A stop lasts for_ms by itself; a majority is two of three.
    guard case .inject(let stops, nil) = NemesisPlan.resolve(NemesisSpec(fault: .stop, target: .majority, everyMs: 1000, forMs: 300),
                                                             view: view, rng: &rng) else { Issue.record("no stop"); return }
    #expect(stops.count == 2 && stops.allSatisfy { $0.kind == .stop && $0.forMs == 300 })
    // Halves: a minority of one, cut from every other node; several on one side name the other side.
    guard case .inject(let cut, nil) = NemesisPlan.resolve(NemesisSpec(fault: .partition, target: .halves, everyMs: 1000, forMs: 300),
                                                           view: view, rng: &rng) else { Issue.record("no partition"); return }
    #expect(cut.count == 1 && cut[0].peers == nil && cut[0].kind == .partition)
    let five = NemesisPlan.View(layout: StoreLayout(nodes: 5, groups: 1), leaders: [:], running: [], keyGroups: [0])
    guard case .inject(let sides, nil) = NemesisPlan.resolve(NemesisSpec(fault: .partition, target: .majority, everyMs: 1000, forMs: 300),
                                                             view: five, rng: &rng) else { Issue.record("no partition"); return }
    let majority = Set(sides.map(\.node)), minority = Set(sides[0].peers ?? [])
    #expect(majority.count == 3 && minority.count == 2 && majority.isDisjoint(with: minority) && sides.allSatisfy { Set($0.peers ?? []) == minority })
    // Nothing to strike: said why.
    #expect(NemesisPlan.resolve(NemesisSpec(fault: .kill, target: .leader, everyMs: 1000), view: five, rng: &rng) == .skip("no leader is known"))
    #expect(NemesisPlan.resolve(NemesisSpec(fault: .kill, target: .random, everyMs: 1000), view: five, rng: &rng) == .skip("no node is running"))
    // The same seed, the same choices.
    var a = SplitMix64(seed: 7), b = SplitMix64(seed: 7)
    let n = NemesisSpec(fault: .kill, target: .random, everyMs: 1000)
    #expect((0..<20).map { _ in NemesisPlan.resolve(n, view: view, rng: &a) } == (0..<20).map { _ in NemesisPlan.resolve(n, view: view, rng: &b) })
    // And the seed matters: another one chooses otherwise somewhere in 20 strikes.
    var c = SplitMix64(seed: 8), d = SplitMix64(seed: 7)
    #expect((0..<20).map { _ in NemesisPlan.resolve(n, view: view, rng: &c) } != (0..<20).map { _ in NemesisPlan.resolve(n, view: view, rng: &d) })
}

@Test func aClientsOperationsFollowTheMixWriteValuesNoOneElseWritesAndKeepAnMputInOneGroup() {
    var spec = LinearizabilitySpec(layout: StoreLayout(groups: 3), keys: 12)
    spec.mix.mput = 2
    var w = Workload(client: 3, spec: spec)
    var again = Workload(client: 3, spec: spec)
    var values: [String] = []
    var kinds: [String: Int] = [:]
    for _ in 0..<2000 {
        let op = w.next()
        #expect(op == again.next())
        switch op {
        case .get: kinds["get", default: 0] += 1
        case .put(_, let v): values.append(v); kinds["put", default: 0] += 1
        case .cas(_, _, let v): values.append(v); kinds["cas", default: 0] += 1
        case .delete: kinds["delete", default: 0] += 1
        case .mput(let pairs):
            values += pairs.map(\.value); kinds["mput", default: 0] += 1
            #expect(Set(pairs.map { KeyGroups.group(of: $0.key, groups: 3) }).count == 1)
        }
    }
    #expect(Set(values).count == values.count && values.allSatisfy { $0.hasPrefix("3-") })
    // Weights 4:4:1:1:2 of 2000: each within a wide margin of its share.
    for (k, share) in [("get", 4.0), ("put", 4.0), ("cas", 1.0), ("delete", 1.0), ("mput", 2.0)] {
        let expected = 2000 * share / 12
        #expect(abs(Double(kinds[k] ?? 0) - expected) < expected * 0.3, "\(k): \(kinds[k] ?? 0) vs \(expected)")
    }
    // A cas expects what the client last saw of its key.
    w.saw("k1", "9-9")
    var sawCas = false
    for _ in 0..<5000 where !sawCas {
        if case .cas("k1", let e, _) = w.next() { #expect(e == "9-9"); sawCas = true }
    }
    #expect(sawCas)
}

@Test func aOneWayPartitionIsReadAndGoesToEveryFaultItMakes() throws {
    let s = try parse("[experiment]\nkind = \"linearizability\"\nnemesis = [{ fault = \"partition\", target = \"majority\", every_ms = 2000, direction = \"in\" }]\n")
    #expect(s.nemesis[0].direction == .in)
    let view = NemesisPlan.View(layout: StoreLayout(nodes: 5, groups: 1), leaders: [:], running: [], keyGroups: [0])
    var rng = SplitMix64(seed: 3)
    guard case .inject(let faults, nil) = NemesisPlan.resolve(s.nemesis[0], view: view, rng: &rng) else { Issue.record("no partition"); return }
    #expect(faults.count == 3 && faults.allSatisfy { $0.direction == .in && $0.problem(knownNodes: Set(view.layout.allNodes)) == nil })
    #expect(refusal("nemesis = [{ fault = \"kill\", every_ms = 2000, direction = \"out\" }]\n")?.problem.contains("partition and delay") == true)
    #expect(refusal("nemesis = [{ fault = \"partition\", every_ms = 2000, direction = \"up\" }]\n")?.problem.contains("\"out\"") == true)
    #expect(FaultSpec(kind: .stop, node: "A", direction: .out).problem(knownNodes: ["A"]) == "direction only applies to partition and delay")
    // Primary-backup's HTTP carries answers back on the requester's connection: no message direction there.
    #expect(refusal("mode = \"primary-backup\"\nnemesis = [{ fault = \"partition\", every_ms = 2000, direction = \"out\" }]\n")?
        .problem.contains("needs mode = \"raft\"") == true)
}
