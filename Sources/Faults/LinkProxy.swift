import Core
import NIOCore
import NIOPosix

/// A TCP proxy for one directed link between nodes (`from` dials `to` through it), Toxiproxy-style:
/// it adds delay (FIFO, optional jitter) or drops bytes in both directions, without privileges.
public final class LinkProxy: Sendable {
    public let from: NodeID
    public let to: NodeID
    public let port: Int
    private let serverChannel: any Channel

    /// Binds 127.0.0.1 on an ephemeral port that forwards to `target`.
    public static func start(from: NodeID, to: NodeID, target: NodeConfig, group: any EventLoopGroup) async throws -> LinkProxy {
        let control = LinkControl()
        let targetHost = target.host, targetPort = target.port
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { inbound in
                inbound.eventLoop.makeCompletedFuture {
                    try inbound.pipeline.syncOperations.addHandler(ConnectUpstream(
                        host: targetHost, port: targetPort, control: control))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return LinkProxy(from: from, to: to, port: channel.localAddress?.port ?? 0, control: control, channel: channel)
    }

    private init(from: NodeID, to: NodeID, port: Int, control: LinkControl, channel: any Channel) {
        self.from = from; self.to = to; self.port = port; self.serverChannel = channel
        // `control` is created before the bootstrap so handlers can share it.
        self.controlRef = control
    }
    private let controlRef: LinkControl

    public func setFault(_ fault: LinkFault, onFirstEffect: (@Sendable (Stamp) -> Void)? = nil) {
        controlRef.set(fault, onFirstEffect: onFirstEffect)
    }

    public var fault: LinkFault { controlRef.current }

    public func close() async {
        try? await serverChannel.close()
    }
}

/// On accept: dial the real target, then glue the two channels with fault-aware forwarders.
private final class ConnectUpstream: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let host: String, port: Int, control: LinkControl

    init(host: String, port: Int, control: LinkControl) { self.host = host; self.port = port; self.control = control }

    func channelActive(context: ChannelHandlerContext) {
        let inbound = context.channel
        let control = self.control
        ClientBootstrap(group: context.eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(1))
            .connect(host: host, port: port)
            .whenComplete { result in
                switch result {
                case .failure:
                    inbound.close(promise: nil)
                case .success(let upstream):
                    do {
                        try inbound.pipeline.syncOperations.addHandler(Forwarder(peer: upstream, control: control))
                        try upstream.pipeline.syncOperations.addHandler(Forwarder(peer: inbound, control: control))
                        inbound.setOption(.autoRead, value: true).whenComplete { _ in inbound.read() }
                    } catch {
                        inbound.close(promise: nil)
                        upstream.close(promise: nil)
                    }
                }
            }
        context.fireChannelActive()
    }
}

/// Forwards bytes to `peer`, delayed or held as the link's fault says. Delayed chunks keep their
/// order: each is released no earlier than the one before it. A partition holds the bytes, as a
/// real one does: the proxy stops reading, the sender's socket buffers fill as TCP's would while it
/// retransmits into the void, and at the heal everything flows on in order. (Dropping chunks of a
/// live stream, as it once did, cut holes in it that no network makes: the receiver read garbage.)
private final class Forwarder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let peer: any Channel
    let control: LinkControl
    private var lastReleaseNs: Int64 = 0
    /// Chunks read before the proxy stopped reading, while the link is cut.
    private var held: [ByteBuffer] = []
    private var holding = false
    /// The sender closed while the link was cut: its close follows the held bytes at the heal.
    private var closeAfterHeal = false
    static let healPoll = TimeAmount.milliseconds(2)

    init(peer: any Channel, control: LinkControl) { self.peer = peer; self.control = control }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let chunk = unwrapInboundIn(data)
        if holding { held.append(chunk); return }
        let fault = control.faultForChunk()
        if fault.dropping {
            holding = true
            held.append(chunk)
            _ = context.channel.setOption(.autoRead, value: false)
            waitForHeal(channel: context.channel)
            return
        }
        forward(chunk, fault, loop: context.eventLoop)
    }

    private func waitForHeal(channel: any Channel) {
        channel.eventLoop.scheduleTask(in: Self.healPoll) { [self] in
            if control.current.dropping && (channel.isActive || closeAfterHeal) {
                waitForHeal(channel: channel)
                return
            }
            holding = false
            let chunks = held
            held = []
            for c in chunks { forward(c, control.faultForChunk(), loop: channel.eventLoop) }
            if closeAfterHeal {
                closePeerAfterWrites()
            } else {
                _ = channel.setOption(.autoRead, value: true)
                channel.read()
            }
        }
    }

    private func forward(_ chunk: ByteBuffer, _ fault: LinkFault, loop: any EventLoop) {
        let now = monotonicNow()
        var release = now
        if fault.delayNs > 0 {
            let jitter = fault.jitterNs > 0 ? Int64.random(in: -fault.jitterNs...fault.jitterNs) : 0
            release = now + max(0, fault.delayNs + jitter)
        }
        release = max(release, lastReleaseNs)
        lastReleaseNs = release
        let peer = self.peer
        let written = loop.makePromise(of: Void.self)
        lastWrite = written.futureResult
        if release <= now {
            peer.writeAndFlush(chunk, promise: written)
        } else {
            let scheduled = loop.scheduleTask(in: .nanoseconds(release - now)) {
                peer.writeAndFlush(chunk, promise: written)
            }
            // A loop shut down before the release cancels the task: the promise must still end.
            scheduled.futureResult.whenFailure { written.fail($0) }
        }
    }

    /// The last chunk's write, done or to come: the close waits for it.
    private var lastWrite: EventLoopFuture<Void>?

    /// The close travels like the bytes before it: chunks a delay still holds are delivered first,
    /// as packets already in flight are when a sender dies, and the other side sees the close after
    /// them; while the link is cut, not before the heal. (Closing at once dropped them, so a kill
    /// under delay looked detected early; closing at the last release time raced the write
    /// scheduled for that same moment.)
    func channelInactive(context: ChannelHandlerContext) {
        if holding {
            closeAfterHeal = true
        } else {
            closePeerAfterWrites()
        }
        context.fireChannelInactive()
    }

    private func closePeerAfterWrites() {
        let peer = self.peer
        if let lastWrite {
            lastWrite.whenComplete { _ in peer.close(promise: nil) }
        } else {
            peer.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
