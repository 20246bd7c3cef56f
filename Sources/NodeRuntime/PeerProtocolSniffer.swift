import NIOCore

/// A second protocol on the node's peer port (raft mode's transport), told from heartbeat lines
/// by the magic its connections open with. Both pass the same link proxy, so delay and partition
/// faults apply to both.
public struct PeerPortGuest: Sendable {
    public var magic: [UInt8]
    /// Adds the guest's handlers to a connection that opened with `magic` (which they receive too).
    public var install: @Sendable (any Channel) throws -> Void
    public init(magic: [UInt8], install: @escaping @Sendable (any Channel) throws -> Void) {
        self.magic = magic; self.install = install
    }
}

/// Holds the first bytes of a connection until they show which protocol it speaks, then puts
/// that protocol's handlers in its place and hands them everything read so far.
final class PeerProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private let magic: [UInt8]
    private let guest: @Sendable (any Channel) throws -> Void
    private let lines: (any Channel) throws -> Void
    private var held: ByteBuffer?

    init(magic: [UInt8], guest: @escaping @Sendable (any Channel) throws -> Void, lines: @escaping (any Channel) throws -> Void) {
        self.magic = magic; self.guest = guest; self.lines = lines
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if var h = held {
            h.writeBuffer(&buffer)
            buffer = h
        }
        let n = min(buffer.readableBytes, magic.count)
        let head = buffer.getBytes(at: buffer.readerIndex, length: n) ?? []
        let install: (any Channel) throws -> Void
        if head != Array(magic.prefix(n)) {
            install = lines
        } else if n == magic.count {
            install = guest
        } else {
            held = buffer
            return
        }
        held = nil
        do {
            // The sniffer is the pipeline's only handler, so the new ones follow it.
            try install(context.channel)
            context.fireChannelRead(wrapInboundOut(buffer))
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } catch {
            context.close(promise: nil)
        }
    }
}
