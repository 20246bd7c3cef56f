import NIOCore

/// Closes a connection whose client does not complete a message in time: the first message must
/// end (its NUL byte) within `limit` of connecting, and any later one within `limit` of its first
/// byte. A client idle between complete calls (waiting on a reply or a subscription) is left
/// alone; the per-uid connection limit bounds how many of those one user may hold. Sits before
/// the frame decoder and sees raw bytes.
final class MessageDeadlineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let limit: TimeAmount
    private let farewell: ByteBuffer?
    private var timer: Scheduled<Void>?

    /// `farewell` is written before the close (a Varlink error saying why).
    init(limit: TimeAmount, farewell: ByteBuffer?) {
        self.limit = limit
        self.farewell = farewell
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if timer == nil { arm(context) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if let lastNUL = bytes.readableBytesView.lastIndex(of: 0) {
            // A message ended; a deadline runs again only if bytes of the next one follow.
            cancel()
            if lastNUL + 1 < bytes.readableBytesView.endIndex { arm(context) }
        } else if timer == nil, bytes.readableBytes > 0 {
            arm(context)
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancel()
        context.fireChannelInactive()
    }

    private func arm(_ context: ChannelHandlerContext) {
        cancel()
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let farewell = self.farewell
        timer = context.eventLoop.scheduleTask(in: limit) {
            let context = loopBound.value
            if let farewell {
                context.writeAndFlush(NIOAny(farewell)).whenComplete { _ in loopBound.value.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        }
    }

    private func cancel() {
        timer?.cancel()
        timer = nil
    }
}
