import Core
import Systemd
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// Hands each received line to the node.
final class LineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let node: HeartbeatNode
    private let onInactive: ((Channel) -> Void)?

    init(node: HeartbeatNode, onInactive: ((Channel) -> Void)? = nil) {
        self.node = node
        self.onInactive = onInactive
    }

    func channelInactive(context: ChannelHandlerContext) {
        onInactive?(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        context.triggerUserOutboundEvent(ConnectionIdentified(), promise: nil)
        node.received(line: String(buffer: buffer))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Inbound side of one node, on its event loop: a listener that reads peers' heartbeats and, for
/// the seed's detector role, one connection per `--peer_addr` that reads what the monitored node
/// sends back (re-dialled every interval while down). Beats go out from `HeartbeatSender`.
final class HeartbeatNetwork {
    private let node: HeartbeatNode
    private let loop: any EventLoop
    private let guest: PeerPortGuest?
    /// Seed detector: addresses whose failed connect was reported, until one succeeds.
    private var reportedUnreachable: Set<String> = []
    static let maxLineBytes = 512
    static let maxPeerConnections = 1024

    init(node: HeartbeatNode, loop: any EventLoop, guest: PeerPortGuest?) {
        self.node = node
        self.loop = loop
        self.guest = guest
    }

    private var bound: NIOLoopBound<HeartbeatNetwork> { NIOLoopBound(self, eventLoop: loop) }

    /// Binds the listener; the returned future completes once the node accepts connections.
    func start() -> EventLoopFuture<Channel> {
        let options = node.options
        let net = bound
        let node = self.node
        let guest = self.guest
        // A peer says who it is at once (Raft's hello) or within an interval (a heartbeat line): a
        // connection that has not by then is not a peer. At most 1024 at a time: a node has a
        // handful of peers.
        let guardian = ConnectionGuard(limit: connectionCap(preferred: HeartbeatNetwork.maxPeerConnections, share: 0.2),
                                       identifyWithin: .milliseconds(Int64(max(5000, 3 * options.hbIntervalMs))), loop: loop,
                                       onEvict: { writeStderr("kvnode \(options.id): peer port: \($0)") })
        let server = ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                do { try channel.pipeline.syncOperations.addHandler(guardian.handler()) } catch { return channel.eventLoop.makeFailedFuture(error) }
                guard let guest else { return HeartbeatNetwork.addLineHandlers(channel, node: node, onInactive: nil) }
                // Heartbeat lines and the guest protocol share the port: the first bytes decide.
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(PeerProtocolSniffer(
                        magic: guest.magic,
                        guest: guest.install,
                        lines: { ch in
                            try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: HeartbeatNetwork.maxLineBytes)))
                            try ch.pipeline.syncOperations.addHandler(LineHandler(node: node, onInactive: nil))
                        }))
                }
            }
            .bind(host: options.host, port: options.port)

        return server.map { channel in
            if options.role == .detector {
                for peer in options.peers { net.value.dial(peer) }
            }
            return channel
        }
    }

    /// Line framing plus the node's handler.
    private static func addLineHandlers(_ channel: Channel, node: HeartbeatNode,
                                        onInactive: ((Channel) -> Void)?) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: HeartbeatNetwork.maxLineBytes)))
            try channel.pipeline.syncOperations.addHandler(LineHandler(node: node, onInactive: onInactive))
        }
    }

    /// Connects to a monitored node and keeps trying every interval while it is unreachable.
    private func dial(_ peer: PeerAddress) {
        let net = bound
        let node = self.node
        let interval = TimeAmount.milliseconds(Int64(node.options.hbIntervalMs))
        ClientBootstrap(group: loop)
            .connectTimeout(max(interval, .milliseconds(50)))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                HeartbeatNetwork.addLineHandlers(channel, node: node, onInactive: { _ in net.value.redial(peer, after: interval) })
            }
            .connect(host: peer.host, port: peer.port)
            .whenComplete { result in
                let key = "\(peer.host):\(peer.port)"
                switch result {
                case .success:
                    net.value.reportedUnreachable.remove(key)
                case .failure(let error):
                    if net.value.reportedUnreachable.insert(key).inserted {
                        node.reportUnreachable(peer, reason: HeartbeatNetwork.why(error))
                    }
                    net.value.redial(peer, after: interval)
                }
            }
    }

    /// "Connection refused" rather than NIO's nested description.
    static func why(_ error: any Error) -> String {
        if let e = error as? NIOConnectionError, let first = e.connectionErrors.first { return why(first.error) }
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
    }

    private func redial(_ peer: PeerAddress, after delay: TimeAmount) {
        let net = bound
        loop.scheduleTask(in: delay) { net.value.dial(peer) }
    }
}
