import Testing
@testable import Core

@Test(arguments: [("150ms", 150.0), ("2s", 2000.0), ("1.5s", 1500.0), ("500us", 0.5), ("1m", 60000.0), ("1h", 3_600_000.0)])
func durationsParse(text: String, ms: Double) {
    #expect(DurationText.milliseconds(text) == ms)
}

@Test(arguments: ["", "-5ms", "abc", "5 parsecs", "ms", "nan", "75"])
func badDurationsAreRefused(text: String) {
    #expect(DurationText.milliseconds(text) == nil)
}

/// Each wrong duration is told apart, in the terms of the flag the user typed.
@Test(arguments: [
    ("150", "--after '150' has no unit; write 150ms or 150s"),
    ("-5ms", "--after '-5ms' is negative; a duration is 0 or more, e.g. 50ms"),
    ("-5", "--after '-5' is negative; a duration is 0 or more, e.g. 50ms"),
    ("2h", "--after '2h' is over the limit of 1h"),
    ("soon", "--after 'soon' is not a duration; write e.g. 50ms, 2s, 1.5s or 1m"),
])
func durationErrorsSayWhatIsWrong(text: String, message: String) {
    #expect(throws: DurationError.self) { try DurationText.wholeMilliseconds(text, flag: "--after", max: 3_600_000) }
    do { _ = try DurationText.wholeMilliseconds(text, flag: "--after", max: 3_600_000) } catch {
        #expect(error.description == message)
    }
    #expect((try? DurationText.wholeMilliseconds("1h", flag: "--after", max: 3_600_000)) == 3_600_000)
}

@Test func nodeIDsAreValidated() {
    #expect(NodeID(validating: "node-1_A") != nil)
    #expect(NodeID(validating: "") == nil)
    #expect(NodeID(validating: "a/b") == nil)
    #expect(NodeID(validating: String(repeating: "x", count: 33)) == nil)
}

@Test func eventRoundTripsThroughJSONL() throws {
    var e = Event(kind: .declaredDead, runID: "r1", node: "A", peer: "B", at: Stamp(wallMs: 5, monoNs: 7))
    e.detectionLatencyMs = 203.4
    e.label = .trueDetection
    let line = e.jsonLine()
    #expect(line.contains("\"v\":1"))
    #expect(line.contains("\"event\":\"declared_dead\""))
    #expect(!line.contains("null"), "absent fields are omitted, not null")
    #expect(try Event.decode(jsonLine: line) == e)
}

@Test func faultSpecProblemsAreNamed() {
    let nodes: Set<NodeID> = ["A", "B", "C"]
    #expect(FaultSpec(kind: .kill, node: "B").problem(knownNodes: nodes) == nil)
    #expect(FaultSpec(kind: .kill, node: "Z").problem(knownNodes: nodes)?.contains("no node") == true)
    #expect(FaultSpec(kind: .delay, node: "B").problem(knownNodes: nodes)?.contains("delay_ms") == true)
    #expect(FaultSpec(kind: .kill, node: "B", forMs: 10).problem(knownNodes: nodes) != nil)
    #expect(FaultSpec(kind: .partition, node: "B", peers: ["B"]).problem(knownNodes: nodes) != nil)
    #expect(FaultSpec(kind: .delay, node: "B", delayMs: 10, jitterMs: 20).problem(knownNodes: nodes) != nil)
}

/// A reload once missed a node's data_dir or peer_port change ("no setting changed"): the node
/// list is one setting, and its text carries every field of each node.
@Test func aNodesDataDirOrPeerPortIsAChangedSetting() {
    let old = ClusterConfig.default
    var moved = old
    moved.nodes[1].dataDir = "/srv/b"
    #expect(old.changedSettings(in: moved).map(\.setting.key) == ["node"])
    var repeered = old
    repeered.nodes[0].peerPort = 9999
    #expect(old.changedSettings(in: repeered).map(\.setting.key) == ["node"])
    #expect(old.changedSettings(in: old).isEmpty)
    var graced = old
    graced.stopGraceMs = 1
    #expect(old.changedSettings(in: graced).map { "\($0.setting.key) \($0.old) -> \($0.new)" } == ["supervisor.stop_grace_ms 3000 -> 1"])
    #expect(old.taking(["supervisor.stop_grace_ms"], from: moved) == old, "only the accepted keys are taken")
}

/// The daemon's phase, driven through a life: each line is a change and the phase it leaves
/// (or "-" where the change does not apply and the phase stays).
@Test func theDaemonPhaseMovesOnlyByItsRules() {
    let script: [(DaemonPhase.Change, String)] = [
        (.reloadBegan, "-"),                        // a reload while starting changes no phase
        (.nodesUp(allReady: false), "degraded"),
        (.nodesUp(allReady: true), "-"),            // the start ends once
        (.reloadBegan, "reloading"),
        (.reloadBegan, "-"),
        (.reloadEnded(was: .degraded), "degraded"),
        (.reloadBegan, "reloading"),
        (.stopBegan, "stopping"),
        (.reloadEnded(was: .degraded), "-"),        // a reload that ends during the stop leaves it stopping
        (.nodesUp(allReady: true), "-"),
        (.stopBegan, "-"),
    ]
    var phase = DaemonPhase.starting
    var trace: [String] = []
    for (change, _) in script {
        if let next = phase.after(change) { phase = next; trace.append(next.rawValue) } else { trace.append("-") }
    }
    #expect(trace == script.map(\.1))
    #expect(phase == .stopping)
}
