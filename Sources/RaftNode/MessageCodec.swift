import BinaryCodec
import NIOCore
import Raft

/// Raft messages on the wire between kvnodes: a connection opens with `magic`, then carries
/// frames of `length: UInt32 LE` + one message in BinaryCodec (LEB128 integers). Compact and
/// strict: a frame that does not decode closes the connection, never the node.
enum MessageCodec {
    /// Also how the peer port tells a Raft connection from a heartbeat one ("HB ..." lines).
    static let magic: [UInt8] = Array("KVRAFT01".utf8)
    /// A snapshot of 100,000 keys of 100 bytes is about 12 MB; room for ten times that.
    static let maxFrameBytes = 256 << 20

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

    static func decode(_ bytes: [UInt8]) throws -> Message {
        var r = ByteReader(bytes)
        let from = try replica(&r), to = try replica(&r)
        let term = Term(try r.uint())
        let kind: Message.Kind
        switch try r.byte() {
        case 1: kind = .preVote(lastIndex: LogIndex(try r.uint()), lastTerm: Term(try r.uint()))
        case 2: kind = .preVoteResponse(granted: try r.bool())
        case 3: kind = .vote(lastIndex: LogIndex(try r.uint()), lastTerm: Term(try r.uint()), transfer: try r.bool())
        case 4: kind = .voteResponse(granted: try r.bool())
        case 5:
            let pi = LogIndex(try r.uint()), pt = Term(try r.uint()), commit = LogIndex(try r.uint()), round = try r.uint()
            let n = try r.count(max: bytes.count)
            var entries: [Entry] = []
            entries.reserveCapacity(n)
            for _ in 0..<n { entries.append(Entry(term: Term(try r.uint()), index: LogIndex(try r.uint()), data: try r.data())) }
            kind = .append(prevIndex: pi, prevTerm: pt, entries: entries, commit: commit, round: round)
        case 6:
            let ok = try r.bool(), match = LogIndex(try r.uint()), ci = LogIndex(try r.uint()), ct = try r.uint()
            kind = .appendResponse(success: ok, matchIndex: match, conflictIndex: ci, conflictTerm: ct == 0 ? nil : Term(ct - 1),
                                   round: try r.uint())
        case 7: kind = .snapshot(Snapshot(index: LogIndex(try r.uint()), term: Term(try r.uint()), data: try r.data()))
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
}

/// Splits the byte stream after the magic into frames; a wrong magic or an oversized frame is an
/// error (the channel closes).
struct RaftFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = [UInt8]
    private var sawMagic = false

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if !sawMagic {
            guard let head = buffer.readBytes(length: MessageCodec.magic.count) else { return .needMoreData }
            guard head == MessageCodec.magic else { throw DecodeError("not a kvnode raft connection (bad magic)") }
            sawMagic = true
        }
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= MessageCodec.maxFrameBytes else {
            throw DecodeError("a frame of \(length) bytes exceeds \(MessageCodec.maxFrameBytes)")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readBytes(length: Int(length))!))
        return .continue
    }
}
