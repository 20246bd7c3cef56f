import BinaryCodec
import NIOCore
import Raft
import WAL

/// Raft messages in BinaryCodec (LEB128 integers): compact and strict, a message that does not
/// decode is an error, never a guess. `PeerFrame` puts them on the wire.
enum MessageCodec {
    /// Also how the peer port tells a Raft connection from a heartbeat one ("HB ..." lines).
    static let magic: [UInt8] = Array("KVRAFT03".utf8)

    static func encode(_ m: Message) -> [UInt8] {
        var w = ByteWriter()
        w.uint(UInt64(m.from))
        w.uint(UInt64(m.to))
        w.uint(m.term.value)
        switch m.kind {
        case .preVote(let i, let t):
            w.byte(1); w.uint(i.value); w.uint(t.value)
        case .preVoteResponse(let g):
            w.byte(2); w.bool(g)
        case .vote(let i, let t, let transfer):
            w.byte(3); w.uint(i.value); w.uint(t.value); w.bool(transfer)
        case .voteResponse(let g):
            w.byte(4); w.bool(g)
        case .append(let pi, let pt, let entries, let commit, let round):
            w.byte(5); w.uint(pi.value); w.uint(pt.value); w.uint(commit.value); w.uint(round)
            w.uint(UInt64(entries.count))
            for e in entries { w.uint(e.term.value); w.uint(e.index.value); w.data(e.data) }
        case .appendResponse(let ok, let match, let ci, let ct, let round):
            w.byte(6); w.bool(ok); w.uint(match.value); w.uint(ci.value); w.uint(ct.map { $0.value + 1 } ?? 0); w.uint(round)
        case .snapshot(let s):
            w.byte(7); w.uint(s.index.value); w.uint(s.term.value); w.data(s.data)
        case .timeoutNow:
            w.byte(8)
        }
        return w.bytes
    }

    /// Terms and indexes a correct peer can send; larger ones (forged, or damage with a good
    /// checksum) would overflow the arithmetic on them.
    static let maxValue: UInt64 = 1 << 62

    static func decode(_ bytes: [UInt8]) throws -> Message {
        var r = ByteReader(bytes)
        let from = try replica(&r), to = try replica(&r)
        let term = Term(try bounded(&r))
        let kind: Message.Kind
        switch try r.byte() {
        case 1: kind = .preVote(lastIndex: LogIndex(try bounded(&r)), lastTerm: Term(try bounded(&r)))
        case 2: kind = .preVoteResponse(granted: try r.bool())
        case 3: kind = .vote(lastIndex: LogIndex(try bounded(&r)), lastTerm: Term(try bounded(&r)), transfer: try r.bool())
        case 4: kind = .voteResponse(granted: try r.bool())
        case 5:
            let pi = LogIndex(try bounded(&r)), pt = Term(try bounded(&r)), commit = LogIndex(try bounded(&r)), round = try r.uint()
            // Each entry takes at least 3 bytes: a count beyond that is a lie, not a reason to allocate.
            let n = try r.count(max: bytes.count / 3)
            var entries: [Entry] = []
            entries.reserveCapacity(n)
            for _ in 0..<n { entries.append(Entry(term: Term(try bounded(&r)), index: LogIndex(try bounded(&r)), data: try r.data())) }
            kind = .append(prevIndex: pi, prevTerm: pt, entries: entries, commit: commit, round: round)
        case 6:
            let ok = try r.bool(), match = LogIndex(try bounded(&r)), ci = LogIndex(try bounded(&r)), ct = try bounded(&r)
            kind = .appendResponse(success: ok, matchIndex: match, conflictIndex: ci, conflictTerm: ct == 0 ? nil : Term(ct - 1),
                                   round: try r.uint())
        case 7: kind = .snapshot(Snapshot(index: LogIndex(try bounded(&r)), term: Term(try bounded(&r)), data: try r.data()))
        case 8: kind = .timeoutNow
        case let t: throw DecodeError("unknown message type \(t)")
        }
        try r.expectEnd()
        return Message(from: from, to: to, term: term, kind: kind)
    }

    private static func replica(_ r: inout ByteReader) throws -> ReplicaID {
        let v = try r.uint()
        guard v <= 1 << 20 else { throw DecodeError("replica id \(v) out of range") }
        return ReplicaID(v)
    }

    private static func bounded(_ r: inout ByteReader) throws -> UInt64 {
        let v = try r.uint()
        guard v <= maxValue else { throw DecodeError("a term or index of \(v), past 2^62") }
        return v
    }
}

/// What a peer connection carries after `MessageCodec.magic`, each frame as
///
///     length: UInt32 LE (of the body) · crc: UInt32 LE (CRC-32C of the body) · body: type byte + payload
///
/// The first frame is a hello naming the cluster and both ends; a connection from another
/// cluster, for another replica, or whose bytes only look like frames is refused and closed.
enum PeerFrame: Equatable {
    struct Hello: Equatable { var cluster: String; var from: ReplicaID; var to: ReplicaID }
    /// One chunk of the sender's snapshot (index, term), `seq` from 0; the `.snapshot` Raft
    /// message follows the last one.
    struct SnapshotChunk: Equatable {
        var from: ReplicaID; var group: Int; var index: LogIndex; var term: Term; var seq: UInt64; var bytes: [UInt8]
    }

    case hello(Hello)
    /// A Raft message of one group (each group is a Raft instance of its own on the same peers).
    case message(group: Int, Message)
    case snapshotChunk(SnapshotChunk)

    /// More groups than any node runs: a larger number is damage or forgery.
    static let maxGroup = 1 << 10

    /// Appends carry at most 1 MiB of entries or one larger entry (an mput of up to 4 MiB);
    /// snapshot chunks about 1 MiB plus one pair. Anything larger is not a frame of ours.
    static let maxBodyBytes = 16 << 20

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        switch self {
        case .hello(let h):
            w.byte(1); w.string(h.cluster); w.uint(UInt64(h.from)); w.uint(UInt64(h.to))
        case .message(let group, let m):
            w.byte(2); w.uint(UInt64(group))
            let body = MessageCodec.encode(m)
            return Self.framed(w.bytes + body)
        case .snapshotChunk(let c):
            w.byte(3); w.uint(UInt64(c.from)); w.uint(UInt64(c.group)); w.uint(c.index.value); w.uint(c.term.value); w.uint(c.seq); w.data(c.bytes)
        }
        return Self.framed(w.bytes)
    }

    static func framed(_ body: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8 + body.count)
        WALRecord.appendLE(UInt32(body.count), to: &out)
        WALRecord.appendLE(CRC32C.checksum(body), to: &out)
        return out + body
    }

    static func decode(body: [UInt8]) throws -> PeerFrame {
        guard let type = body.first else { throw DecodeError("an empty frame") }
        switch type {
        case 1:
            var r = ByteReader(Array(body.dropFirst()))
            let h = Hello(cluster: try r.string(), from: try replica(&r), to: try replica(&r))
            try r.expectEnd()
            return .hello(h)
        case 2:
            var r = ByteReader(Array(body.dropFirst()))
            let group = try Self.group(&r)
            return .message(group: group, try MessageCodec.decode(Array(body.dropFirst(1 + r.position))))
        case 3:
            var r = ByteReader(Array(body.dropFirst()))
            let c = SnapshotChunk(from: try replica(&r), group: try Self.group(&r), index: LogIndex(try r.uint()), term: Term(try r.uint()), seq: try r.uint(), bytes: try r.data())
            guard c.index.value <= MessageCodec.maxValue, c.term.value <= MessageCodec.maxValue else { throw DecodeError("a snapshot chunk past 2^62") }
            try r.expectEnd()
            return .snapshotChunk(c)
        default:
            throw DecodeError("unknown frame type \(type)")
        }
    }

    private static func replica(_ r: inout ByteReader) throws -> ReplicaID {
        let v = try r.uint()
        guard v <= 1 << 20 else { throw DecodeError("replica id \(v) out of range") }
        return ReplicaID(v)
    }

    private static func group(_ r: inout ByteReader) throws -> Int {
        let v = try r.uint()
        guard v < UInt64(maxGroup) else { throw DecodeError("group \(v) out of range") }
        return Int(v)
    }
}

/// Splits the byte stream after the magic into frame bodies whose checksum holds; a wrong magic,
/// an oversized frame or a checksum mismatch is an error (the channel closes).
struct RaftFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = [UInt8]
    private var sawMagic = false

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if !sawMagic {
            guard let head = buffer.readBytes(length: MessageCodec.magic.count) else { return .needMoreData }
            guard head == MessageCodec.magic else { throw DecodeError("not a kvnode raft connection of this version (bad magic)") }
            sawMagic = true
        }
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self),
              let crc = buffer.getInteger(at: buffer.readerIndex + 4, endianness: .little, as: UInt32.self) else { return .needMoreData }
        guard length >= 1, Int(length) <= PeerFrame.maxBodyBytes else {
            throw DecodeError("a frame of \(length) bytes (limit \(PeerFrame.maxBodyBytes))")
        }
        guard buffer.readableBytes >= 8 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 8)
        let body = buffer.readBytes(length: Int(length))!
        guard CRC32C.checksum(body) == crc else { throw DecodeError("a frame of \(length) bytes fails its checksum") }
        context.fireChannelRead(wrapInboundOut(body))
        return .continue
    }
}
