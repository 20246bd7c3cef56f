import Core
import Foundation
import Testing
@testable import Events

/// `journalctl -x` can explain an event only if the installed catalog has its MESSAGE_ID.
@Test func catalogHasAnEntryForEveryMessageID() throws {
    let catalog = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("packaging/systemd/kvsupervisor.catalog")
    let text = try String(contentsOf: catalog, encoding: .utf8)
    let entries = text.split(separator: "\n").filter { $0.hasPrefix("-- ") }.map { String($0.dropFirst(3)) }
    #expect(Set(entries).count == entries.count, "an id appears twice")
    for kind in EventKind.allCases {
        #expect(entries.contains(MessageIDs.id(for: kind)), "no catalog entry for \(kind.rawValue)")
    }
    #expect(entries.count == EventKind.allCases.count, "the catalog explains ids the daemon never sends")
}
