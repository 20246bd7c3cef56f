import Core
import Testing
@testable import Experiments
import TOML

private func parse(_ text: String) throws(ConfigError) -> FailoverSpec {
    guard case .failover(let s) = try ExperimentSpecParser.parse(text: text, file: "failover.toml") else { fatalError("not a failover spec") }
    return s
}

private func refusal(_ text: String) -> ConfigError? {
    do { _ = try ExperimentSpecParser.parse(text: text, file: "failover.toml"); return nil } catch { return error }
}

@Test func aFailoverSpecWithNothingButItsKindRunsTheOriginalsSevenDelays() throws {
    let s = try parse("[experiment]\nkind = \"failover\"\n")
    #expect(s == FailoverSpec())
    #expect(s.killAfterMs == [0, 10, 25, 50, 75, 100, 200] && s.groups == 3 && s.nodes == 3 && s.fault == .kill && s.inFlight)
}

@Test func everyKeyOfTheIssueIsRead() throws {
    let s = try parse("""
        [experiment]
        kind = "failover"
        mode = "raft"
        nodes = 5
        groups = 1
        kill_after_ms = [100, 0, 25]
        trials = 30
        in_flight = false
        rapid_sequential = 5
        rapid_gap_ms = 20
        fault = "partition"
        sync = "none"
        election_ms = 300
        raft_heartbeat_ms = 100
        seed = 7
        """)
    #expect(s.nodes == 5 && s.groups == 1 && s.killAfterMs == [0, 25, 100] && s.trials == 30 && !s.inFlight)
    #expect(s.rapidSequential == 5 && s.rapidGapMs == 20 && s.fault == .partition && s.seed == 7)
    // election_max_ms follows election_ms when not given, as kvnode's defaults do.
    #expect(s.raft.sync == .none && s.raft.electionMs == 300 && s.raft.electionMaxMs == 600 && s.raft.heartbeatMs == 100)
}

@Test(arguments: [
    ("nodes = 4", "experiment.nodes", "use 3 or 5"),
    ("nodes = 7", "experiment.nodes", "3...5"),
    ("kill_after_ms = [10, 10]", "experiment.kill_after_ms", "twice"),
    ("kill_after_ms = 90000", "experiment.kill_after_ms", "at most 60000"),
    ("fault = \"delay\"", "experiment.fault", "kill, stop or partition"),
    ("mode = \"paxos\"", "experiment.mode", "\"raft\""),
    ("rapid_gap_ms = 5", "experiment.rapid_gap_ms", "rapid_sequential above 0"),
    ("election_ms = 60", "experiment.election_ms", "twice raft_heartbeat_ms"),
    ("sync = \"sometimes\"", "experiment.sync", "fdatasync"),
    ("in_flight = 1", "experiment.in_flight", "true or false"),
    ("hb_interval_ms = 100", "experiment.hb_interval_ms", "not a key of kind = \"failover\""),
    ("hb_intervall_ms = 100", "experiment.hb_intervall_ms", "did you mean 'hb_interval_ms'"),
])
func aWrongFailoverKeyIsNamedWithItsLine(line: String, key: String, says: String) throws {
    let e = try #require(refusal("[experiment]\nkind = \"failover\"\n\(line)\n"))
    #expect(e.key == key && e.line == 3 && e.description.contains(says), "\(e)")
}

@Test func aSweepKeyInAFailoverSpecAndTheOtherWayRoundAreRefused() throws {
    let e = try #require(refusal("[experiment]\nkind = \"detection-sweep\"\nhb_interval_ms = 50\nhb_timeout_ms = 200\ntrials = 1\nkill_after_ms = 10\n"))
    #expect(e.key == "experiment.kill_after_ms" && e.description.contains("not a key of kind = \"detection-sweep\""), "\(e)")
}
