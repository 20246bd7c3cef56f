import Core
import Foundation
import Testing
@testable import ConfigFile
import TOML

private func parse(_ text: String) throws(ConfigError) -> ClusterConfig {
    try ConfigLoader.parse(text: text, file: "pb.toml")
}

/// The original's layout: a name manager and two servers with a dedicated backup each.
private let layout = """
    [cluster]
    mode = "primary-backup"
    [[node]]
    id = "NM"
    port = 7100
    role = "coordinator"
    [[node]]
    id = "A"
    port = 7101
    [[node]]
    id = "A2"
    port = 7102
    backup_of = "A"
    [[node]]
    id = "B"
    port = 7103
    [[node]]
    id = "B2"
    port = 7104
    backup_of = "B"

    """

@Test func aPrimaryBackupClusterHasOneCoordinatorAndPairs() throws {
    let c = try parse(layout)
    #expect(c.mode == .primaryBackup && c.coordinator?.id == "NM")
    #expect(c.pairs.map { "\($0.primary)->\($0.backup)" } == ["A->A2", "B->B2"])
    // The lab's defaults, and the original's timing as a documented value.
    #expect(c.primaryBackup == PrimaryBackupSettings(checkIntervalMs: 100, failAfterMs: 300, replicationPath: .coordinator))
    #expect(PrimaryBackupSettings.original.checkIntervalMs == 5000 && PrimaryBackupSettings.original.failAfterMs == 15_000)
    let timed = try parse(layout.replacingOccurrences(of: "mode = \"primary-backup\"", with: """
        mode = "primary-backup"
        pb_check_interval_ms = 5000
        pb_fail_after_ms = 15000
        replication_path = "direct"
        """))
    #expect(timed.primaryBackup == PrimaryBackupSettings(checkIntervalMs: 5000, failAfterMs: 15_000, replicationPath: .direct))
}

@Test func thePairsShorthandSaysTheSameAsBackupOf() throws {
    let short = layout.replacingOccurrences(of: "backup_of = \"A\"\n", with: "").replacingOccurrences(of: "backup_of = \"B\"\n", with: "")
        .replacingOccurrences(of: "mode = \"primary-backup\"", with: "mode = \"primary-backup\"\npairs = [[\"A\", \"A2\"], [\"B\", \"B2\"]]")
    #expect(try parse(short).nodes == (try parse(layout)).nodes)
}

@Test(arguments: [
    // Each names the key and says what is wrong.
    ("no_coordinator", "role = \"coordinator\"\n", "", "node", "needs one [[node]] with role = \"coordinator\""),
    ("two_coordinators", "id = \"B2\"\nport = 7104\n", "id = \"B2\"\nport = 7104\nrole = \"coordinator\"\n", "node.role", "only one node"),
    ("unknown_primary", "backup_of = \"A\"", "backup_of = \"Q\"", "node.backup_of", "'Q' is not a [[node]] id"),
    ("own_backup", "id = \"A2\"\nport = 7102\nbackup_of = \"A\"", "id = \"A2\"\nport = 7102\nbackup_of = \"A2\"", "node.backup_of",
     "cannot be its own backup"),
    ("backup_of_backup", "backup_of = \"B\"", "backup_of = \"A2\"", "node.backup_of", "A2 is itself a backup"),
    ("two_backups", "backup_of = \"B\"", "backup_of = \"A\"", "node.backup_of", "A has backups A2 and B2"),
    ("bad_role", "role = \"coordinator\"", "role = \"leader\"", "node.role", "'leader': use coordinator"),
    ("check_above_fail", "mode = \"primary-backup\"", "mode = \"primary-backup\"\npb_check_interval_ms = 500\npb_fail_after_ms = 400",
     "cluster.pb_fail_after_ms", "must be greater than pb_check_interval_ms"),
    ("bad_path", "mode = \"primary-backup\"", "mode = \"primary-backup\"\nreplication_path = \"carrier pigeon\"",
     "cluster.replication_path", "use coordinator or direct"),
    ("pb_key_in_raft", "mode = \"primary-backup\"", "mode = \"raft\"\npb_fail_after_ms = 400", "cluster.pb_fail_after_ms",
     "only applies with mode = \"primary-backup\""),
])
func primaryBackupLayoutsThatCannotWorkAreRefused(name: String, old: String, new: String, key: String, words: String) {
    let text = layout.replacingOccurrences(of: old, with: new)
    #expect(text != layout, "\(name): the replacement did not apply")
    do {
        _ = try parse(text)
        Issue.record("\(name): accepted")
    } catch {
        #expect(error.key == key && error.description.contains(words), "\(name): \(error)")
    }
}

@Test func aStorageNodeWithoutABackupOrNodesMissingAreNamed() {
    do {
        _ = try parse(layout + "[[node]]\nid = \"C\"\nport = 7105\n")
        Issue.record("accepted a primary without a backup")
    } catch {
        #expect(error.key == "node.id" && error.description.contains("storage node C has no backup"), "\(error)")
    }
    do {
        _ = try parse("[cluster]\nmode = \"primary-backup\"\n")
        Issue.record("accepted primary-backup without nodes")
    } catch {
        #expect(error.key == "node" && error.description.contains("needs [[node]] tables"), "\(error)")
    }
    do {
        _ = try parse("[[node]]\nid = \"A\"\nport = 9000\nbackup_of = \"B\"\n[[node]]\nid = \"B\"\nport = 9001\n")
        Issue.record("accepted backup_of in raft mode")
    } catch {
        #expect(error.key == "node.backup_of" && error.description.contains("only applies with [cluster] mode"), "\(error)")
    }
}
