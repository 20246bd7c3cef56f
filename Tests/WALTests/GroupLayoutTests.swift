import Foundation
import Testing
@testable import RaftStorage

private func tempDir() -> String {
    var template = Array("/tmp/kv-groups-XXXXXX".utf8CString)
    return String(cString: mkdtemp(&template)!)
}

private func refusal(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return "\(error)" }
}

/// The data directory's group count: recorded once, never rewritten; another count, an
/// unreadable record, or a group directory the count would leave out is refused.
@Test func aDataDirectoryKeepsItsGroupCount() throws {
    let dir = tempDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    // Data from before groups (group 0 only, no GROUPS): it holds 1 group.
    #expect(refusal { try GroupLayout.claim(dir, groups: 3, groupZeroHasData: true) }?.contains("holds 1 Raft group and this node was started with 3") == true)
    try GroupLayout.claim(dir, groups: 1, groupZeroHasData: true)
    #expect(try String(contentsOfFile: dir + "/GROUPS", encoding: .utf8) == "1\n")
    // Recorded: another count is refused and the record stays.
    #expect(refusal { try GroupLayout.claim(dir, groups: 2, groupZeroHasData: true) }?.contains("--groups 1") == true)
    #expect(try String(contentsOfFile: dir + "/GROUPS", encoding: .utf8) == "1\n")
    // A record that does not hold a number is not taken for an absent one.
    try "three\n".write(toFile: dir + "/GROUPS", atomically: true, encoding: .utf8)
    #expect(refusal { try GroupLayout.claim(dir, groups: 1, groupZeroHasData: true) }?.contains("cannot read") == true)
    // With the record gone, a group directory still says more groups were here.
    try FileManager.default.removeItem(atPath: dir + "/GROUPS")
    try FileManager.default.createDirectory(atPath: dir + "/group-2", withIntermediateDirectories: false)
    #expect(refusal { try GroupLayout.claim(dir, groups: 2, groupZeroHasData: false) }?.contains("group-2") == true)
    #expect(refusal { try GroupLayout.claim(dir, groups: 3, groupZeroHasData: false) } == nil)
    #expect(try String(contentsOfFile: dir + "/GROUPS", encoding: .utf8) == "3\n")
}
