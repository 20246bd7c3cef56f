#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A raft-mode node's view of its Raft groups, as it reports it on NOTIFY_SOCKET (`KV_RAFT=<json>`):
/// at once when a role, term or leader changes, and every 100 ms or so while indexes move. The
/// top-level fields are group 0's; `groups` lists every group when the node runs more than one.
public struct RaftView: Sendable, Equatable, Codable {
    public var role: String
    public var term: UInt64
    public var leader: String?
    public var commitIndex: UInt64
    public var appliedIndex: UInt64
    public var groups: [Group]?

    /// One group's replica on the node.
    public struct Group: Sendable, Equatable, Codable {
        public var id: Int
        public var role: String
        public var term: UInt64
        public var leader: String?
        public var commitIndex: UInt64
        public var appliedIndex: UInt64
        public init(id: Int, role: String, term: UInt64, leader: String?, commitIndex: UInt64, appliedIndex: UInt64) {
            self.id = id; self.role = role; self.term = term; self.leader = leader; self.commitIndex = commitIndex
            self.appliedIndex = appliedIndex
        }
        enum CodingKeys: String, CodingKey {
            case id, role, term, leader, commitIndex = "commit_index", appliedIndex = "applied_index"
        }
    }

    public init(role: String, term: UInt64, leader: String?, commitIndex: UInt64, appliedIndex: UInt64, groups: [Group]? = nil) {
        self.role = role; self.term = term; self.leader = leader; self.commitIndex = commitIndex; self.appliedIndex = appliedIndex
        self.groups = groups
    }

    /// Every group's view: `groups`, or group 0 alone from the top-level fields.
    public var allGroups: [Group] {
        groups ?? [Group(id: 0, role: role, term: term, leader: leader, commitIndex: commitIndex, appliedIndex: appliedIndex)]
    }

    enum CodingKeys: String, CodingKey {
        case role, term, leader, commitIndex = "commit_index", appliedIndex = "applied_index", groups
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
