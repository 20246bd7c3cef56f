import Core
import Testing
@testable import ConfigFile
import TOML

private func parse(_ text: String) throws(ConfigError) -> ClusterConfig {
    try ConfigLoader.parse(text: text, file: "test.toml")
}

@Test func aFileWithNoNodesGivesTheDefaultCluster() throws {
    let c = try parse("[cluster]\n")
    #expect(c.nodes.map(\.id) == ["A", "B", "C"])
    #expect(c.hbIntervalMs == 100 && c.hbTimeoutMs == 200 && c.mode == .raft)
    #expect(c.raft == RaftSettings())
    #expect(c.nodes.map(\.effectivePeerPort) == [8101, 8102, 8103])
}

@Test func raftKeysAreRead() throws {
    let c = try parse("""
        [cluster]
        raft_heartbeat_ms = 20
        election_ms = 100
        election_max_ms = 200
        tick_ms = 5
        sync = "none"
        snapshot_entries = 50
        read_policy = "stale"
        [[node]]
        id = "n1"
        port = 9001
        peer_port = 9501
        data_dir = "/tmp/n1"
        [[node]]
        id = "n2"
        port = 9002
        """)
    #expect(c.raft.heartbeatMs == 20 && c.raft.electionMs == 100 && c.raft.electionMaxMs == 200 && c.raft.tickMs == 5)
    #expect(c.raft.sync == .none && c.raft.snapshotEntries == 50 && c.raft.readPolicy == .stale)
    #expect(c.nodes.map(\.effectivePeerPort) == [9501, 10002])
    #expect(c.nodes[0].dataDir == "/tmp/n1" && c.nodes[1].dataDir == nil)
}

@Test func fullFileIsRead() throws {
    let c = try parse("""
        [supervisor]
        socket = "/tmp/x/control"
        event_log = "/tmp/x/events.jsonl"
        sched_priority = 0
        [cluster]
        mode = "heartbeat"
        hb_interval_ms = 50
        hb_timeout_ms = 150
        restart = "on-failure"
        [[node]]
        id = "n1"
        port = 9001
        [[node]]
        id = "n2"
        port = 9002
        """)
    #expect(c.socketPath == "/tmp/x/control")
    #expect(c.schedPriority == 0)
    #expect(c.hbIntervalMs == 50 && c.restart == .onFailure)
    #expect(c.nodes.map(\.port) == [9001, 9002])
}

@Test func unknownKeyIsNamedWithLineAndSuggestion() {
    do {
        _ = try parse("[cluster]\nhb_interval_ms = 100\nhb_intervall_ms = 100\n")
        Issue.record("accepted an unknown key")
    } catch {
        #expect(error.line == 3)
        #expect(error.key == "cluster.hb_intervall_ms")
        #expect(error.description.contains("did you mean 'hb_interval_ms'"))
        #expect(error.description.hasPrefix("test.toml line 3"))
    }
}

@Test(arguments: [
    ("[cluster]\nhb_interval_ms = \"fast\"\n", "cluster.hb_interval_ms", 2),
    ("[cluster]\nmode = \"paxos\"\n", "cluster.mode", 2),
    ("[cluster]\nhb_interval_ms = 300\nhb_timeout_ms = 200\n", "cluster.hb_timeout_ms", 3),
    ("[[node]]\nid = \"A\"\nport = 1\n[[node]]\nid = \"B\"\nport = 1\n", "node.port", 6),
    ("[[node]]\nid = \"a/b\"\nport = 1\n", "node.id", 2),
    ("[cluster]\nrestart = \"sometimes\"\n", "cluster.restart", 2),
    ("[[node]]\nid = \"A\"\nport = 70000\n", "node.port", 3),
    ("[supervisor]\nstop_grace_ms = 10\ntimer_spin_us = 50000\n", "supervisor.timer_spin_us", 3),
    ("[supervisor]\nsched_priority = 100\n", "supervisor.sched_priority", 2),
    // Raft: a peer port (port + 1000) that another node's port takes; timing that cannot work.
    ("[[node]]\nid = \"A\"\nport = 9000\n[[node]]\nid = \"B\"\nport = 10000\n", "node.port", 6),
    ("[[node]]\nid = \"A\"\nport = 65000\n", "node.peer_port", 1),
    ("[cluster]\nraft_heartbeat_ms = 100\nelection_ms = 150\n", "cluster.election_ms", 3),
    ("[cluster]\nelection_ms = 300\nelection_max_ms = 300\n", "cluster.election_max_ms", 3),
    ("[cluster]\nsync = \"sometimes\"\n", "cluster.sync", 2),
    ("[cluster]\nread_policy = \"eventual\"\n", "cluster.read_policy", 2),
    ("[cluster]\nmode = \"heartbeat\"\n[[node]]\nid = \"A\"\nport = 9000\n[[node]]\nid = \"B\"\nport = 10000\n", "", 0),
])
func badValuesAreRefusedWithKeyAndLine(text: String, key: String, line: Int) {
    if key.isEmpty {
        // The control case: heartbeat mode has no peer port to clash.
        #expect(throws: Never.self) { _ = try parse(text) }
        return
    }
    do {
        _ = try parse(text)
        Issue.record("accepted \(text)")
    } catch {
        #expect(error.key == key, "\(error)")
        #expect(error.line == line, "\(error)")
    }
}

@Test func syntaxErrorsCarryTheLine() {
    do {
        _ = try parse("[cluster]\nhb_interval_ms = = 3\n")
        Issue.record("accepted bad syntax")
    } catch {
        #expect(error.line == 2)
        #expect(error.description.contains("TOML syntax"))
    }
}

@Test func missingFileIsNamed() {
    #expect(throws: ConfigError.self) { try ConfigLoader.load(path: "/nonexistent/kv.toml") }
}

/// An empty file and a directory were taken for "the defaults": refused, saying what to do.
@Test func anEmptyFileAndADirectoryAreRefused() {
    #expect { _ = try parse("# only a comment\n\n") } throws: { e in
        "\(e)".contains("has no settings at all") && "\(e)".contains("leave --config out")
    }
    #expect { _ = try ConfigLoader.load(path: "/tmp") } throws: { e in
        "\(e)".contains("/tmp") && "\(e)".contains("is a directory")
    }
}
