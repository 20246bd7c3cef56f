import Core
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The HTTP contract's types are Core's `KVHTTP` (kvctl reads and writes the same ones); the
/// server's names for them:
typealias SeqField = KVHTTP.Seq
typealias PutBody = KVHTTP.PutRequest
typealias MPutBody = KVHTTP.MPutRequest
typealias CASBody = KVHTTP.CASRequest
typealias DeleteBody = KVHTTP.DeleteRequest
typealias ErrorBody = KVHTTP.ErrorReply
typealias WriteReplyBody = KVHTTP.WriteReply
typealias ValueBody = KVHTTP.ValueReply

/// GET /status: this replica's view of the store.
struct StatusBody: Encodable {
    struct Peer: Encodable {
        var id: String
        var addr: String
    }
    /// The WAL's group commit since start: `syncs` fdatasyncs for `batches` writes of `entries` entries.
    struct WAL: Encodable {
        /// fdatasync or none.
        var sync: String
        var syncs: Int
        var batches: Int
        var entries: Int
    }
    var id: String
    /// Group 0's replica, whose fields stand at the top level as before groups existed.
    var groupZero: Group
    /// Snapshots installed from a leader since start (it had fallen behind the leader's log).
    var snapshots_received: Int
    /// Over every group.
    var keys: Int
    /// What a GET without `?consistency=` gets: linearizable or stale.
    var read_policy: String
    var peers: [Peer]
    /// The node's WAL, which every group shares.
    var wal: WAL
    /// Every Raft group's replica on this node.
    var groups: [Group]

    /// One group's replica on this node.
    struct Group: Encodable {
        var id: Int
        /// follower, precandidate, candidate or leader.
        var role: String
        var term: UInt64
        /// The leader of `term` as this replica knows it; null while it knows none.
        var leader: String?
        var leader_addr: String?
        /// The highest index this replica knows to be committed.
        var commit_index: UInt64
        /// The highest index applied to its store: a stale read sees this far.
        var applied_index: UInt64
        /// The last index in its log, committed or not.
        var last_index: UInt64
        /// Its latest snapshot's index; the log up to it is compacted away.
        var snapshot_index: UInt64
        var keys: Int

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Field.self)
            try c.encode(id, forKey: .id)
            try encodeReplica(into: &c)
            try c.encode(keys, forKey: .keys)
        }

        /// The replica's fields, written the same at the top level (group 0) and in `groups`; an
        /// unknown leader is `null` rather than left out.
        func encodeReplica(into c: inout KeyedEncodingContainer<Field>) throws {
            try c.encode(role, forKey: .role)
            try c.encode(term, forKey: .term)
            try c.encode(leader, forKey: .leader)
            try c.encode(leader_addr, forKey: .leader_addr)
            try c.encode(commit_index, forKey: .commit_index)
            try c.encode(applied_index, forKey: .applied_index)
            try c.encode(last_index, forKey: .last_index)
            try c.encode(snapshot_index, forKey: .snapshot_index)
        }
    }

    enum Field: String, CodingKey {
        case id, role, term, leader, leader_addr, commit_index, applied_index, last_index, snapshot_index
        case snapshots_received, keys, read_policy, peers, wal, groups
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Field.self)
        try c.encode(id, forKey: .id)
        try groupZero.encodeReplica(into: &c)
        try c.encode(snapshots_received, forKey: .snapshots_received)
        try c.encode(keys, forKey: .keys)
        try c.encode(read_policy, forKey: .read_policy)
        try c.encode(peers, forKey: .peers)
        try c.encode(wal, forKey: .wal)
        try c.encode(groups, forKey: .groups)
    }
}

package enum Decoded<T> {
    case success(T)
    /// What was wrong, in one line.
    case failure(String)
}

package enum JSON {
    package static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(value)) ?? Data("{}".utf8)) + [0x0A]
    }

    /// Decodes `bytes` as `T`, or says in one line which field was wrong and how.
    package static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) -> Decoded<T> {
        do {
            return .success(try JSONDecoder().decode(type, from: Data(bytes)))
        } catch let DecodingError.keyNotFound(key, _) {
            return .failure("missing field '\(key.stringValue)'" + (key.stringValue == "expected" ? " (null: only if the key is absent)" : ""))
        } catch let DecodingError.typeMismatch(expected, ctx) {
            if ctx.codingPath.isEmpty { return .failure("the body must be a JSON object") }
            return .failure("field '\(path(ctx))': expected \(describe(expected, field: ctx.codingPath.last?.stringValue))")
        } catch let DecodingError.valueNotFound(expected, ctx) {
            return .failure("field '\(path(ctx))' is null: expected \(describe(expected, field: ctx.codingPath.last?.stringValue))")
        } catch DecodingError.dataCorrupted(let ctx) {
            // A number that does not fit the field (-1 or 1.5 for a seq): say what fits, not Swift's words.
            guard let field = ctx.codingPath.last?.stringValue else { return .failure("the body is not valid JSON") }
            return .failure("field '\(path(ctx))': expected \(describe(UInt64.self, field: field))")
        } catch {
            return .failure("the body is not valid JSON")
        }
    }

    private static func path(_ ctx: DecodingError.Context) -> String {
        ctx.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    private static func describe(_ type: Any.Type, field: String?) -> String {
        if field == "seq" { return "a whole number, 1 or more" }
        switch type {
        case is String.Type: return "a string"
        case is UInt64.Type: return "a whole number, 0 or more"
        default: return type is any Collection.Type ? "an array" : "an object"
        }
    }
}
