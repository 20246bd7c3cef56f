import NIOCore

/// Bounds the connections one server holds, so that clients that connect and go quiet (half-sent
/// requests, silent peers) cannot take every file descriptor from the node: past `limit`, each new
/// connection closes the one unidentified connection that has been quiet longest (or, if every one
/// is identified, the quietest of all): the stalled ones go before the busy ones. A connection that a protocol handler has not vouched for by `identifyWithin` (sent as an
/// outbound user event `ConnectionIdentified`, e.g. once a peer's hello checked out) is closed too.
/// All of a server's connections live on one event loop (the servers run one thread each).
public final class ConnectionGuard: @unchecked Sendable {
    public let limit: Int
    public let identifyWithin: TimeAmount?
    private let loop: any EventLoop
    private let onEvict: @Sendable (String) -> Void
    // On `loop` only.
    private var open: [ObjectIdentifier: Tracked] = [:]
    private var evicted = 0

    final class Tracked {
        let channel: any Channel
        var lastActive: NIODeadline
        var identified = false
        init(_ channel: any Channel) { self.channel = channel; lastActive = .now() }
    }

    public init(limit: Int, identifyWithin: TimeAmount? = nil, loop: any EventLoop,
                onEvict: @escaping @Sendable (String) -> Void = { _ in }) {
        self.limit = limit
        self.identifyWithin = identifyWithin
        self.loop = loop
        self.onEvict = onEvict
    }

    /// The handler to put first in each connection's pipeline.
    public func handler() -> some ChannelDuplexHandler & RemovableChannelHandler { Handler(self) }

    var count: Int { open.count }

    fileprivate func added(_ channel: any Channel) {
        loop.preconditionInEventLoop()
        let t = Tracked(channel)
        open[ObjectIdentifier(channel)] = t
        // Connections nobody vouched for go first: a flood of them cannot push out a real peer.
        // (Looked for only past the limit: below it, an accept costs no walk of the table.)
        if open.count > limit,
           let quietest = quietest(excluding: t, unidentifiedOnly: true) ?? quietest(excluding: t, unidentifiedOnly: false) {
            evicted += 1
            if evicted == 1 || evicted % 1000 == 0 {
                onEvict("\(open.count - 1) connections open (limit \(limit)): closed the one quiet longest; \(evicted) closed so far")
            }
            open[ObjectIdentifier(quietest.channel)] = nil
            quietest.channel.close(promise: nil)
        }
        if let wait = identifyWithin {
            loop.scheduleTask(in: wait) { [weak t] in
                guard let t, !t.identified else { return }
                t.channel.close(promise: nil)
            }
        }
    }

    private func quietest(excluding new: Tracked, unidentifiedOnly: Bool) -> Tracked? {
        open.values.filter { $0 !== new && !(unidentifiedOnly && $0.identified) }.min { $0.lastActive < $1.lastActive }
    }

    fileprivate func active(_ channel: any Channel) {
        open[ObjectIdentifier(channel)]?.lastActive = .now()
    }

    fileprivate func identified(_ channel: any Channel) {
        open[ObjectIdentifier(channel)]?.identified = true
    }

    fileprivate func removed(_ channel: any Channel) { open[ObjectIdentifier(channel)] = nil }

    final class Handler: ChannelDuplexHandler, RemovableChannelHandler {
        // Passed on as they are: this handler never looks inside.
        typealias InboundIn = NIOAny
        typealias OutboundIn = NIOAny
        private let guardian: ConnectionGuard

        init(_ guardian: ConnectionGuard) { self.guardian = guardian }

        func handlerAdded(context: ChannelHandlerContext) { guardian.added(context.channel) }
        func handlerRemoved(context: ChannelHandlerContext) { guardian.removed(context.channel) }

        func channelInactive(context: ChannelHandlerContext) {
            guardian.removed(context.channel)
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guardian.active(context.channel)
            context.fireChannelRead(data)
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            guardian.active(context.channel)
            context.write(data, promise: promise)
        }

        func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
            guard event is ConnectionIdentified else { return context.triggerUserOutboundEvent(event, promise: promise) }
            guardian.identified(context.channel)
            promise?.succeed(())
        }
    }
}

/// Sent by a protocol handler (as an outbound user event) once its connection proved to be what it
/// claims: the `ConnectionGuard` then lets it stay past `identifyWithin`.
public struct ConnectionIdentified: Sendable { public init() {} }
