import Core
import NIOCore
import NIOPosix

/// Hands each received line to the node.
final class LineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let node: NIOLoopBound<HeartbeatNode>
    private let onActive: ((Channel) -> Void)?
    private let onInactive: ((Channel) -> Void)?

    init(node: NIOLoopBound<HeartbeatNode>, onActive: ((Channel) -> Void)? = nil, onInactive: ((Channel) -> Void)? = nil) {
        self.node = node
        self.onActive = onActive
        self.onInactive = onInactive
    }

    func channelActive(context: ChannelHandlerContext) {
        onActive?(context.channel)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        onInactive?(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        node.value.received(line: String(buffer: buffer))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Connections of one node: a listener for peers' heartbeats, one outbound connection per peer
/// (re-dialled every interval while down), and one send timer that writes a beat to every channel
/// this node sends on. All on one event loop.
final class HeartbeatNetwork {
    private let node: HeartbeatNode
    private let loop: any EventLoop
    private var sendChannels: [ObjectIdentifier: Channel] = [:]
    private var sendTask: RepeatedTask?
    private var isStopping = false
    static let maxLineBytes = 512

    init(node: HeartbeatNode) {
        self.node = node
        self.loop = node.loop
    }

    private var bound: NIOLoopBound<HeartbeatNetwork> { NIOLoopBound(self, eventLoop: loop) }
    private var boundNode: NIOLoopBound<HeartbeatNode> { NIOLoopBound(node, eventLoop: loop) }

    /// Binds the listener; the returned future completes once the node accepts connections.
    func start() -> EventLoopFuture<Channel> {
        let options = node.options
        let net = bound
        let nodeBox = boundNode
        let sendsOnInbound = options.role == .monitored
        let server = ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                HeartbeatNetwork.addLineHandlers(channel, node: nodeBox,
                    onActive: sendsOnInbound ? { net.value.addSendChannel($0) } : nil,
                    onInactive: sendsOnInbound ? { net.value.removeSendChannel($0) } : nil)
            }
            .bind(host: options.host, port: options.port)

        return server.map { channel in
            let net = net.value
            for peer in options.peers where options.role != .monitored { net.dial(peer) }
            if options.role != .detector { net.startSending() }
            return channel
        }
    }

    /// Line framing plus the node's handler, on either side of a connection.
    private static func addLineHandlers(_ channel: Channel, node: NIOLoopBound<HeartbeatNode>,
                                        onActive: ((Channel) -> Void)?, onInactive: ((Channel) -> Void)?) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: maxLineBytes)))
            try channel.pipeline.syncOperations.addHandler(LineHandler(node: node, onActive: onActive, onInactive: onInactive))
        }
    }

    private func addSendChannel(_ channel: Channel) { sendChannels[ObjectIdentifier(channel)] = channel }
    private func removeSendChannel(_ channel: Channel) { sendChannels[ObjectIdentifier(channel)] = nil }

    private func startSending() {
        let interval = TimeAmount.milliseconds(Int64(node.options.hbIntervalMs))
        let net = bound
        sendTask = loop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { _ in
            net.value.beat()
        }
    }

    private func beat() {
        guard !sendChannels.isEmpty else { return }
        let line = node.nextHeartbeatLine()
        for channel in sendChannels.values where channel.isActive {
            channel.writeAndFlush(ByteBuffer(string: line), promise: nil)
        }
    }

    /// Connects to a peer and keeps trying every interval while it is unreachable.
    private func dial(_ peer: PeerAddress) {
        guard !isStopping else { return }
        let net = bound
        let nodeBox = boundNode
        let interval = TimeAmount.milliseconds(Int64(node.options.hbIntervalMs))
        let sends = node.options.role == .peer
        ClientBootstrap(group: loop)
            .connectTimeout(max(interval, .milliseconds(50)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                HeartbeatNetwork.addLineHandlers(channel, node: nodeBox,
                    onActive: sends ? { net.value.addSendChannel($0) } : nil,
                    onInactive: { channel in
                        net.value.removeSendChannel(channel)
                        net.value.redial(peer, after: interval)
                    })
            }
            .connect(host: peer.host, port: peer.port)
            .whenFailure { _ in net.value.redial(peer, after: interval) }
    }

    private func redial(_ peer: PeerAddress, after delay: TimeAmount) {
        let net = bound
        loop.scheduleTask(in: delay) { net.value.dial(peer) }
    }

    func stop() {
        isStopping = true
        sendTask?.cancel()
        for channel in sendChannels.values { channel.close(promise: nil) }
    }
}
