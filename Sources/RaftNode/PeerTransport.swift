import BinaryCodec
import Core
import NIOCore
import NIOPosix
import NodeRuntime
import Raft
import RaftStorage
import Synchronization

/// One persistent outbound TCP connection per peer, carrying this node's messages to it (the
/// peer's answers come back on its own connection to us). Reconnects with backoff. A message with
/// no connection to go on, or that would grow the queue past `maxQueuedBytes`, is dropped (Raft
/// resends what a follower did not acknowledge), counted, and reported: at once the first time,
/// then at most once a second per peer, never silently.
final class PeerTransport: Sendable {
    struct Peer: Sendable {
        var replica: ReplicaID
        var host: String
        var port: Int
    }

    static let maxQueuedBytes = 64 << 20
    static let backoffStartMs: Int64 = 10
    static let backoffMaxMs: Int64 = 500

    private let links: [ReplicaID: PeerLink]
    private let report: @Sendable (String) -> Void

    /// `cluster` and `me` go into the hello each connection opens with.
    init(peers: [Peer], cluster: String, me: ReplicaID, group: any EventLoopGroup,
         report: @escaping @Sendable (String) -> Void = { _ in }) {
        var links: [ReplicaID: PeerLink] = [:]
        for p in peers {
            let hello = PeerFrame.hello(.init(cluster: cluster, from: me, to: p.replica)).encoded()
            links[p.replica] = PeerLink(peer: p, loop: group.next(), hello: hello, report: report)
        }
        self.links = links
        self.report = report
    }

    func start() { for link in links.values { link.loop.execute { link.connect() } } }

    /// Sends each peer's frames (of any groups) on its connection: written and flushed once per
    /// peer on the link's event loop.
    func send(_ byPeer: [ReplicaID: [[UInt8]]]) {
        for (to, frames) in byPeer {
            guard let link = links[to] else { continue }
            if link.loop.inEventLoop { link.write(frames) } else { link.loop.execute { link.write(frames) } }
        }
    }

    /// Streams the snapshot file at `path` to `m.to` on a worker of `pool`, one chunk in flight
    /// (read, written, flushed, then the next), and then `m` itself, the InstallSnapshot message
    /// that tells the peer the chunks are complete. One stream per peer at a time; a stream cut by
    /// a lost connection is abandoned, and Raft sends the snapshot again after its wait.
    func sendSnapshot(group: Int, _ m: Message, path: String, pool: NIOThreadPool, failed: @escaping @Sendable () -> Void) {
        guard case .snapshot(let s) = m.kind, let link = links[m.to] else { return }
        // One stream per peer: while one runs, Raft is told at once, and asks again after it.
        guard link.beginStream() else { return failed() }
        let report = self.report
        pool.submit { state in
            defer { link.endStream() }
            guard case .active = state else { return }
            let started = monotonicNow()
            do {
                let channel = try link.currentChannel()
                var seq: UInt64 = 0
                let meta = try SnapshotFile.read(path) { chunk in
                    let frame = PeerFrame.snapshotChunk(.init(from: m.from, group: group, index: s.index, term: s.term, seq: seq,
                                                              bytes: chunk))
                    try link.writeAndWait(frame.encoded(), on: channel)
                    seq += 1
                }
                try link.writeAndWait(PeerFrame.message(group: group, m).encoded(), on: channel)
                report("sent snapshot \(s.term)/\(s.index) of group \(group) to replica \(m.to): \(meta.chunks) chunks, \(meta.bytes) bytes in "
                       + "\((monotonicNow() - started) / 1_000_000) ms")
            } catch {
                report("snapshot \(s.term)/\(s.index) of group \(group) to replica \(m.to) abandoned: \(error); it will be sent again")
                failed()
            }
        }
    }

    var dropped: Int { links.values.reduce(0) { $0 + $1.dropped.load(ordering: .relaxed) } }
}

struct PeerLinkError: Error, CustomStringConvertible {
    var description: String
}

/// The connection to one peer. Its state lives on `loop`.
final class PeerLink: @unchecked Sendable {
    let peer: PeerTransport.Peer
    let loop: any EventLoop
    let dropped = Atomic<Int>(0)
    private let report: @Sendable (String) -> Void
    private var reportedDrops = 0
    private var reportedAt: NIODeadline = .distantPast
    // Touched on `loop` only.
    private var channel: (any Channel)?
    private var connecting = false
    private var backoffMs = PeerTransport.backoffStartMs
    private var queuedBytes = 0

    private let hello: [UInt8]
    private let streaming = Atomic<Bool>(false)

    init(peer: PeerTransport.Peer, loop: any EventLoop, hello: [UInt8], report: @escaping @Sendable (String) -> Void) {
        self.peer = peer
        self.loop = loop
        self.hello = hello
        self.report = report
    }

    func beginStream() -> Bool { !streaming.exchange(true, ordering: .acquiringAndReleasing) }
    func endStream() { streaming.store(false, ordering: .releasing) }

    /// From a worker thread: the connection as it is now (a stream stays on it).
    func currentChannel() throws -> any Channel {
        try loop.submit { () throws -> any Channel in
            guard let ch = self.channel else { throw PeerLinkError(description: "no connection to replica \(self.peer.replica)") }
            return ch
        }.wait()
    }

    /// A snapshot chunk the peer does not take within this long (stopped, or a half-open
    /// connection) ends the stream: the connection is closed, and the worker is free again.
    static let chunkDeadline = TimeAmount.seconds(10)

    /// From a worker thread: writes `frame` on `channel` and waits until the kernel took it.
    func writeAndWait(_ frame: [UInt8], on channel: any Channel) throws {
        try loop.flatSubmit { () -> EventLoopFuture<Void> in
            guard self.channel === channel else {
                return self.loop.makeFailedFuture(PeerLinkError(description: "the connection to replica \(self.peer.replica) was replaced"))
            }
            var buf = channel.allocator.buffer(capacity: frame.count)
            buf.writeBytes(frame)
            let written = channel.writeAndFlush(buf)
            let deadline = self.loop.scheduleTask(in: Self.chunkDeadline) { channel.close(promise: nil) }
            written.whenComplete { _ in deadline.cancel() }
            return written
        }.wait()
    }

    private func drop(_ count: Int, _ why: String) {
        let total = dropped.add(count, ordering: .relaxed).newValue
        let now = NIODeadline.now()
        guard reportedDrops == 0 || now - reportedAt >= .seconds(1) else { return }
        report("dropped \(total - reportedDrops) message(s) to replica \(peer.replica) at \(peer.host):\(peer.port): \(why) "
               + "(\(total) since start; Raft resends what the peer does not acknowledge)")
        reportedDrops = total
        reportedAt = now
    }

    func connect() {
        loop.preconditionInEventLoop()
        guard channel == nil, !connecting else { return }
        connecting = true
        ClientBootstrap(group: loop)
            .connectTimeout(.milliseconds(500))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 1 << 20, high: 8 << 20))
            .connect(host: peer.host, port: peer.port)
            .hop(to: loop)
            .whenComplete { result in
                self.connecting = false
                switch result {
                case .success(let ch):
                    self.channel = ch
                    self.backoffMs = PeerTransport.backoffStartMs
                    var hello = ch.allocator.buffer(capacity: MessageCodec.magic.count + self.hello.count)
                    hello.writeBytes(MessageCodec.magic)
                    hello.writeBytes(self.hello)
                    ch.writeAndFlush(hello, promise: nil)
                    ch.closeFuture.hop(to: self.loop).whenComplete { _ in
                        if self.channel === ch { self.channel = nil; self.reconnectLater() }
                    }
                case .failure:
                    self.reconnectLater()
                }
            }
    }

    private func reconnectLater() {
        let delay = backoffMs
        backoffMs = min(backoffMs * 2, PeerTransport.backoffMaxMs)
        loop.scheduleTask(in: .milliseconds(delay)) { self.connect() }
    }

    func write(_ frames: [[UInt8]]) {
        guard let ch = channel else {
            drop(frames.count, connecting ? "still connecting" : "not connected")
            return
        }
        var wrote = false
        for f in frames {
            // Not writable: the peer (or the link to it) stopped reading, and 8 MiB already wait.
            // Raft resends what matters; a backlog of stale heartbeats would only arrive late.
            guard ch.isWritable else {
                drop(1, "the connection is not taking bytes (\(queuedBytes) queued; a cut link, or a stopped peer)")
                continue
            }
            guard queuedBytes + f.count <= PeerTransport.maxQueuedBytes else {
                drop(1, "\(queuedBytes) bytes already queued for a slow peer (limit \(PeerTransport.maxQueuedBytes))")
                continue
            }
            var buf = ch.allocator.buffer(capacity: f.count)
            buf.writeBytes(f)
            let size = buf.readableBytes
            queuedBytes += size
            let promise = loop.makePromise(of: Void.self)
            promise.futureResult.whenComplete { _ in self.queuedBytes -= size }
            ch.write(buf, promise: promise)
            wrote = true
        }
        if wrote { ch.flush() }
    }
}

/// What an inbound peer connection needs to know and whom it tells.
struct PeerInbound: Sendable {
    var cluster: String
    var me: ReplicaID
    var voters: Set<ReplicaID>
    /// Groups 0..<groups exist; a frame for another is refused.
    var groups: Int
    var deliver: @Sendable (_ group: Int, Message) -> Void
    var disconnected: @Sendable (ReplicaID) -> Void
    var reject: @Sendable (String) -> Void
    /// Where group's snapshot of (index, term) goes once installed (received files wait beside it).
    var snapshotPath: @Sendable (_ group: Int, LogIndex, Term) -> String
    /// A received snapshot's writer, every chunk in it, with the InstallSnapshot message that ended
    /// it: to be finished (synced), checked and turned into a store off the event loop.
    var snapshotReceived: @Sendable (_ group: Int, _ message: Message, _ writer: SnapshotFile.Writer) -> Void
}

/// Inbound side. The first frame must be a hello from a voter of this cluster to this replica;
/// after it, messages from that voter to this replica only. A frame that does not decode, or that
/// breaks these rules, closes the connection (the sender reconnects), never the node. Snapshot
/// chunks are written to a temp file as they come (one in memory), then handed on with the
/// InstallSnapshot message that follows them. When a connection that carried a peer's messages
/// closes, `disconnected` hears which peer it was: a crashed process's sockets close at once, long
/// before an election timeout.
final class RaftInboundHandler: ChannelInboundHandler {
    typealias InboundIn = [UInt8]
    private let inbound: PeerInbound
    private var sender: ReplicaID?
    private struct Receiving { var writer: SnapshotFile.Writer; var group: Int; var index: LogIndex; var term: Term; var next: UInt64 }
    private var receiving: Receiving?
    private static let streams = Atomic<Int>(0)

    init(_ inbound: PeerInbound) { self.inbound = inbound }

    func channelInactive(context: ChannelHandlerContext) {
        receiving?.writer.discard()
        receiving = nil
        if let sender { inbound.disconnected(sender) }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            let frame = try PeerFrame.decode(body: unwrapInboundIn(data))
            guard let sender else {
                guard case .hello(let h) = frame else { throw DecodeError("the first frame is not a hello") }
                guard h.cluster == inbound.cluster else { throw DecodeError("a hello from cluster '\(h.cluster)', this is '\(inbound.cluster)'") }
                guard h.to == inbound.me, inbound.voters.contains(h.from), h.from != inbound.me else {
                    throw DecodeError("a hello from replica \(h.from) to \(h.to); this is replica \(inbound.me)")
                }
                self.sender = h.from
                context.triggerUserOutboundEvent(ConnectionIdentified(), promise: nil)
                return
            }
            switch frame {
            case .hello: throw DecodeError("a second hello")
            case .message(let group, let m):
                guard m.from == sender, m.to == inbound.me else { throw DecodeError("a message from \(m.from) to \(m.to) on replica \(sender)'s connection") }
                guard group < inbound.groups else { throw DecodeError("a message for group \(group); this node has \(inbound.groups)") }
                if case .snapshot(let s) = m.kind { snapshotComplete(group, m, s) } else { inbound.deliver(group, m) }
            case .snapshotChunk(let c):
                guard c.from == sender else { throw DecodeError("a snapshot chunk from \(c.from) on replica \(sender)'s connection") }
                guard c.group < inbound.groups else { throw DecodeError("a snapshot chunk for group \(c.group); this node has \(inbound.groups)") }
                try chunk(c)
            }
        } catch {
            inbound.reject("peer connection from \(context.remoteAddress.map { "\($0)" } ?? "?") closed: \(error)")
            context.close(promise: nil)
        }
    }

    private func chunk(_ c: PeerFrame.SnapshotChunk) throws {
        if c.seq == 0 {
            receiving?.writer.discard()
            // A temp file per stream: the previous one may still be read on a worker.
            let stream = RaftInboundHandler.streams.add(1, ordering: .relaxed).newValue
            let writer = try SnapshotFile.Writer(path: inbound.snapshotPath(c.group, c.index, c.term), index: c.index, term: c.term,
                                                 tempSuffix: ".recv-\(c.from)-\(stream).tmp")
            receiving = Receiving(writer: writer, group: c.group, index: c.index, term: c.term, next: 0)
        }
        guard var r = receiving, r.group == c.group, r.index == c.index, r.term == c.term, r.next == c.seq else {
            receiving?.writer.discard()
            receiving = nil
            throw DecodeError("snapshot chunk \(c.seq) of \(c.term)/\(c.index) out of order")
        }
        try r.writer.append(c.bytes)
        r.next += 1
        receiving = r
    }

    private func snapshotComplete(_ group: Int, _ m: Message, _ s: Snapshot) {
        guard let r = receiving, r.group == group, r.index == s.index, r.term == s.term, r.next > 0 else {
            inbound.reject("snapshot \(s.term)/\(s.index) of group \(group) from replica \(m.from) arrived without its chunks; "
                           + "ignored (the leader sends it again)")
            return
        }
        receiving = nil
        inbound.snapshotReceived(group, m, r.writer)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        inbound.reject("peer connection from \(context.remoteAddress.map { "\($0)" } ?? "?") closed: \(error)")
        context.close(promise: nil)
    }
}
