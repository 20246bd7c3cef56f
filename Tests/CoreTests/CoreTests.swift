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

private func hex(_ bytes: [UInt8]) -> String { bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() }

/// FIPS 180-4's examples, and lengths around the padding's edges (55, 56, 63, 64, 65, 119, 120
/// bytes) against Python's hashlib.
@Test func sha256MatchesFIPSAndHashlib() {
    #expect(hex(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    #expect(hex(SHA256.hash([UInt8]())) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    #expect(hex(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    #expect(hex(SHA256.hash([UInt8](repeating: 0x61, count: 1_000_000)))
            == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    let hashlib: [(Int, String)] = [
        (55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"),
        (56, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"),
        (63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2"),
        (64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"),
        (65, "9537c5fdf120482f7d58d25e9ed583f52c02b4e304ea814db1633ad565aed7e9"),
        (119, "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c"),
        (120, "13f05a0b594787f5ecd315edc96141bd3243203d1b7d4f0836f37308b276ba98"),
    ]
    for (n, digest) in hashlib { #expect(hex(SHA256.hash([UInt8](repeating: 0x78, count: n))) == digest, "\(n) bytes") }
}

/// `sha256(key)[0] % groups`, as Python's hashlib computes it for the same UTF-8 keys.
@Test func keysMapToGroupsAsTheOriginalLabsFunction() {
    let expected: [(String, firstByte: Int, of3: Int)] = [
        ("k", 130, 1), ("key-1", 190, 1), ("user:42", 234, 0), ("wrk-0", 200, 2), ("wrk-999", 32, 2), ("é", 74, 2),
        ("a/b c", 10, 1), (String(repeating: "x", count: 300), 13, 1),
    ]
    for (key, firstByte, of3) in expected {
        #expect(KeyGroups.group(of: key, groups: 3) == of3, "\(key)")
        #expect(KeyGroups.group(of: key, groups: 256) == firstByte, "\(key)")
        #expect(KeyGroups.group(of: key, groups: 1) == 0)
    }
}
