import NIOCore
import NIOPosix
import Raft
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

    init(peers: [Peer], group: any EventLoopGroup, report: @escaping @Sendable (String) -> Void = { _ in }) {
        var links: [ReplicaID: PeerLink] = [:]
        for p in peers { links[p.replica] = PeerLink(peer: p, loop: group.next(), report: report) }
        self.links = links
    }

    func start() { for link in links.values { link.loop.execute { link.connect() } } }

    /// Sends each message on its destination's connection: encoded here, written and flushed
    /// once per destination on the link's event loop.
    func send(_ messages: [Message]) {
        var byPeer: [ReplicaID: [[UInt8]]] = [:]
        for m in messages { byPeer[m.to, default: []].append(MessageCodec.encode(m)) }
        for (to, frames) in byPeer {
            guard let link = links[to] else { continue }
            if link.loop.inEventLoop { link.write(frames) } else { link.loop.execute { link.write(frames) } }
        }
    }

    var dropped: Int { links.values.reduce(0) { $0 + $1.dropped.load(ordering: .relaxed) } }
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

    init(peer: PeerTransport.Peer, loop: any EventLoop, report: @escaping @Sendable (String) -> Void) {
        self.peer = peer
        self.loop = loop
        self.report = report
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
                    var hello = ch.allocator.buffer(capacity: MessageCodec.magic.count)
                    hello.writeBytes(MessageCodec.magic)
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
            guard queuedBytes + f.count + 4 <= PeerTransport.maxQueuedBytes else {
                drop(1, "\(queuedBytes) bytes already queued for a slow peer (limit \(PeerTransport.maxQueuedBytes))")
                continue
            }
            var buf = ch.allocator.buffer(capacity: 4 + f.count)
            buf.writeInteger(UInt32(f.count), endianness: .little)
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

/// Inbound side: each frame decoded and handed to `deliver`; a frame that does not decode closes
/// that connection (the sender reconnects), never the node. When a connection that carried a
/// peer's messages closes, `disconnected` hears which peer it was: a crashed process's sockets
/// close at once, long before an election timeout.
final class RaftInboundHandler: ChannelInboundHandler {
    typealias InboundIn = [UInt8]
    private let deliver: @Sendable (Message) -> Void
    private let disconnected: @Sendable (ReplicaID) -> Void
    private let reject: @Sendable (String) -> Void
    private var sender: ReplicaID?

    init(deliver: @escaping @Sendable (Message) -> Void, disconnected: @escaping @Sendable (ReplicaID) -> Void,
         reject: @escaping @Sendable (String) -> Void) {
        self.deliver = deliver
        self.disconnected = disconnected
        self.reject = reject
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let sender { disconnected(sender) }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            let m = try MessageCodec.decode(unwrapInboundIn(data))
            sender = m.from
            deliver(m)
        } catch {
            reject("peer connection from \(context.remoteAddress.map { "\($0)" } ?? "?") closed: \(error)")
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        reject("peer connection from \(context.remoteAddress.map { "\($0)" } ?? "?") closed: \(error)")
        context.close(promise: nil)
    }
}
