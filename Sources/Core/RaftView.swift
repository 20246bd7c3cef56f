#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A raft-mode node's view of its group, as it reports it on NOTIFY_SOCKET (`KV_RAFT=<json>`):
/// at once when role, term or leader change, and every 100 ms or so while indexes move.
public struct RaftView: Sendable, Equatable, Codable {
    public var role: String
    public var term: UInt64
    public var leader: String?
    public var commitIndex: UInt64
    public var appliedIndex: UInt64

    public init(role: String, term: UInt64, leader: String?, commitIndex: UInt64, appliedIndex: UInt64) {
        self.role = role; self.term = term; self.leader = leader; self.commitIndex = commitIndex; self.appliedIndex = appliedIndex
    }

    enum CodingKeys: String, CodingKey {
        case role, term, leader, commitIndex = "commit_index", appliedIndex = "applied_index"
    }

    public static let notifyPrefix = "KV_RAFT="

    public func jsonLine() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return (try? e.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    public static func decode(jsonLine: some StringProtocol) -> RaftView? {
        try? JSONDecoder().decode(RaftView.self, from: Data(jsonLine.utf8))
    }
}
