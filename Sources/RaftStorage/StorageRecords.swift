import Core
import BinaryCodec
import Raft
import WAL

/// What the node's WAL holds, one `WALRecord` each. Replay order decides: a later hard state
/// replaces an earlier one; an entry at index i replaces every entry at i and after (a follower's
/// log was overwritten by its leader); a snapshot marker drops the entries it covers, or all of
/// them when the snapshot came from the leader (the log was replaced, Raft §7).
enum StorageRecord: Equatable {
    case hardState(HardState)
    case entry(Entry)
    case snapshotMarker(index: LogIndex, term: Term, replacesLog: Bool)

    enum Tag: UInt8 { case hardState = 1, entry = 2, snapshotMarker = 3, snapshotFile = 4 }

    var walRecord: WALRecord {
        var w = ByteWriter()
        switch self {
        case .hardState(let hs):
            w.uint(hs.term.value)
            w.uint(hs.vote.map { UInt64($0) + 1 } ?? 0)
            w.uint(hs.commit.value)
            return WALRecord(type: Tag.hardState.rawValue, payload: w.bytes)
        case .entry(let e):
            w.uint(e.term.value)
            w.uint(e.index.value)
            w.data(e.data)
            return WALRecord(type: Tag.entry.rawValue, payload: w.bytes)
        case .snapshotMarker(let index, let term, let replaces):
            w.uint(index.value)
            w.uint(term.value)
            w.bool(replaces)
            return WALRecord(type: Tag.snapshotMarker.rawValue, payload: w.bytes)
        }
    }

    init(_ record: WALRecord) throws {
        var r = ByteReader(record.payload)
        switch Tag(rawValue: record.type) {
        case .hardState:
            let term = Term(try r.uint())
            let vote = try r.uint()
            let commit = LogIndex(try r.uint())
            self = .hardState(HardState(term: term, vote: vote == 0 ? nil : ReplicaID(truncatingIfNeeded: vote - 1), commit: commit))
        case .entry:
            let term = Term(try r.uint())
            let index = LogIndex(try r.uint())
            self = .entry(Entry(term: term, index: index, data: try r.data()))
        case .snapshotMarker:
            self = .snapshotMarker(index: LogIndex(try r.uint()), term: Term(try r.uint()), replacesLog: try r.bool())
        case .snapshotFile, nil:
            throw DecodeError("record type \(record.type) does not belong in a WAL segment")
        }
        try r.expectEnd()
    }
}


/// A record of one Raft group in the node's WAL, which every group shares (one write and one
/// fdatasync per loop pass, whatever the number of groups). Group 0's records are written as
/// before groups existed, so a one-group directory reads as it always did; another group's carry
/// `groupFlag` in the type and the group as a uint before the payload.
struct GroupRecord: Equatable {
    static let groupFlag: UInt8 = 0x80
    var group: Int
    var record: StorageRecord

    init(group: Int, _ record: StorageRecord) { self.group = group; self.record = record }

    var walRecord: WALRecord {
        let inner = record.walRecord
        guard group != 0 else { return inner }
        var w = ByteWriter()
        w.uint(UInt64(group))
        return WALRecord(type: inner.type | Self.groupFlag, payload: w.bytes + inner.payload)
    }

    init(_ w: WALRecord) throws {
        guard w.type & Self.groupFlag != 0 else {
            self.init(group: 0, try StorageRecord(w))
            return
        }
        var r = ByteReader(w.payload)
        let group = try r.uint()
        guard group > 0, group <= UInt64(KeyGroups.maxGroups) else { throw DecodeError("a record of group \(group)") }
        let inner = WALRecord(type: w.type & ~Self.groupFlag, payload: Array(w.payload[r.position...]))
        self.init(group: Int(group), try StorageRecord(inner))
    }
}
