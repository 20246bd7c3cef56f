import CLinux
import NIOCore
import NIOPosix
import Synchronization
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Who is on the other end of a Unix socket (SO_PEERCRED).
public struct PeerCredentials: Sendable, Equatable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
}

/// What a method handler answers: one reply, an error, or a stream of replies (for `"more": true`).
public enum VarlinkResponse: Sendable {
    /// Typed parameters (a Codable struct), encoded as they are: integers stay exact.
    case reply(any Encodable & Sendable)
    case error(String, JSONValue)
    /// Encoded reply frames (`VarlinkReply.frame`), sent as they come; the last without `continues`.
    case stream(AsyncStream<[UInt8]>)
}

public struct VarlinkServerConfig: Sendable {
    public var socketPath: String
    /// An already-bound listening socket from systemd (LISTEN_FDS); `socketPath` is then informational.
    public var listenFD: Int32?
    public var socketMode: mode_t = 0o660
    public var socketGroupID: gid_t?
    public var maxMessageBytes = 1 << 20
    public var limits = ConnectionLimits()
    /// A client must complete each message (the first one counted from connecting) within this.
    public var messageDeadline: TimeAmount = .seconds(5)
    /// Uids that keep a way in when the connection limits are reached (root, the daemon's own).
    public var isPrivileged: @Sendable (UInt32) -> Bool = { $0 == 0 }
    public var vendor = "kvsupervisor"
    public var product = "kvsupervisor"
    public var version = "0"
    public var url = ""
    /// Interface name -> its Varlink IDL text, returned by GetInterfaceDescription.
    public var interfaces: [String: String] = [:]
    public var isAllowed: @Sendable (PeerCredentials) -> Bool = { _ in true }
    public var permissionDeniedError = "org.varlink.service.PermissionDenied"

    public init(socketPath: String) { self.socketPath = socketPath }
}

/// A Varlink server on a Unix stream socket: NUL-framed JSON, org.varlink.service built in,
/// peer-credential check per connection, bounded message size and connection count. Each
/// connection runs in its own task, so a slow or silent client holds only its own connection.
public final class VarlinkServer: Sendable {
    public typealias Handler = @Sendable (VarlinkCall, PeerCredentials) async -> VarlinkResponse
    /// Answers a call without suspending, or returns nil to leave it to `Handler`. It runs on the
    /// event loop, so a read-only call costs no thread hop: it must only read snapshots.
    public typealias ImmediateHandler = @Sendable (VarlinkCall, PeerCredentials) -> VarlinkResponse?

    private typealias Connection = NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private struct Accepted: Sendable {
        var channel: Connection
        var peer: PeerCredentials?
        /// Why the connection was not counted in; it is told so and closed.
        var refusal: ConnectionCounts.Refusal?
    }

    public let config: VarlinkServerConfig
    private let counts: Mutex<ConnectionCounts>
    private let bound = Mutex<SocketFileIdentity?>(nil)

    /// The socket file this server bound (device and inode), nil with a socket from systemd.
    public var boundSocket: SocketFileIdentity? { bound.withLock { $0 } }

    /// Removes the socket path only while it is still the one this server bound: another
    /// process may have replaced it since.
    public func removeOwnSocket() {
        guard let mine = boundSocket, SocketFileIdentity(path: config.socketPath) == mine else { return }
        unlink(config.socketPath)
    }

    public init(config: VarlinkServerConfig) {
        self.config = config
        counts = Mutex(ConnectionCounts(limits: config.limits, isPrivileged: config.isPrivileged))
    }

    /// Open connections counted in (for tests and status).
    public var connectionCount: Int { counts.withLock { $0.total } }

    /// Serves until the task is cancelled.
    public func run(group: any EventLoopGroup, handler: @escaping Handler, immediate: ImmediateHandler? = nil) async throws {
        let maxBytes = config.maxMessageBytes
        let initializer: @Sendable (any Channel) -> EventLoopFuture<Accepted> = { channel in
            let credentials: EventLoopFuture<PeerCredentials?>
            if let provider = channel as? any SocketOptionProvider {
                credentials = provider.unsafeGetSocketOption(level: .socket, name: .init(rawValue: SO_PEERCRED))
                    .map { (cred: UCred) in PeerCredentials(pid: cred.pid, uid: cred.uid, gid: cred.gid) }
                    .recover { _ in nil }
            } else {
                credentials = channel.eventLoop.makeSucceededFuture(nil)
            }
            return credentials.flatMapThrowing { peer in
                // Counted here, not in serve(), so the fast path below knows the verdict; serve() un-counts.
                let refusal: ConnectionCounts.Refusal? = peer.flatMap { p in self.counts.withLock { $0.admit(uid: p.uid) } }
                let counted = peer != nil && refusal == nil
                do {
                    let farewell = ByteBuffer(bytes: VarlinkReply.failure(VarlinkError.invalidParameter, [
                        "parameter": "message",
                        "reason": .string("no complete message within \(self.config.messageDeadline.nanoseconds / 1_000_000) ms; closing"),
                    ]).encoded())
                    try channel.pipeline.syncOperations.addHandler(
                        MessageDeadlineHandler(limit: self.config.messageDeadline, farewell: farewell))
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(NULFrameDecoder(maxLength: maxBytes)))
                    if let immediate, let peer, counted, self.config.isAllowed(peer) {
                        try channel.pipeline.syncOperations.addHandler(ImmediateReplies { frame in
                            self.answerAtOnce(frame, peer: peer, immediate: immediate)
                        })
                    }
                    return Accepted(channel: try Connection(wrappingChannelSynchronously: channel), peer: peer, refusal: refusal)
                } catch {
                    if counted, let peer { self.counts.withLock { $0.release(uid: peer.uid) } }
                    throw error
                }
            }
        }
        let bootstrap = ServerBootstrap(group: group).serverChannelOption(.backlog, value: 128)
        let server: NIOAsyncChannel<Accepted, Never>
        if let fd = config.listenFD {
            server = try await bootstrap.bind(fd, childChannelInitializer: initializer)
        } else {
            server = try await bootstrap.bind(unixDomainSocketPath: config.socketPath, cleanupExistingSocketFile: true,
                                              childChannelInitializer: initializer)
            chmod(config.socketPath, config.socketMode)
            if let gid = config.socketGroupID { _ = chown(config.socketPath, uid_t.max, gid) }
            let identity = SocketFileIdentity(path: config.socketPath)
            bound.withLock { $0 = identity }
        }
        try await withThrowingDiscardingTaskGroup { group in
            try await server.executeThenClose { inbound in
                for try await accepted in inbound {
                    group.addTask { await self.serve(accepted, handler: handler) }
                }
            }
        }
    }

    private func serve(_ accepted: Accepted, handler: Handler) async {
        defer {
            if let peer = accepted.peer, accepted.refusal == nil { counts.withLock { $0.release(uid: peer.uid) } }
        }
        try? await accepted.channel.executeThenClose { inbound, outbound in
            func send(_ reply: VarlinkReply) async throws {
                try await outbound.write(ByteBuffer(bytes: reply.encoded()))
            }
            if let refusal = accepted.refusal {
                try await send(.failure(VarlinkError.invalidParameter,
                    ["parameter": "connection", "reason": .string("too many connections: \(refusal)")]))
                return
            }
            guard let peer = accepted.peer, config.isAllowed(peer) else {
                // Answer the first call (Varlink is request/response), then close; nothing else is served.
                for try await _ in inbound {
                    try await send(.failure(config.permissionDeniedError,
                        ["reason": .string("uid \(accepted.peer.map { String($0.uid) } ?? "?") may not use this socket: "
                            + "only root and members of the socket's group may")]))
                    break
                }
                return
            }
            do {
                for try await frame in inbound {
                    guard var call = try? JSONDecoder().decode(VarlinkCall.self, from: Data(frame.readableBytesView)) else {
                        // Not a Varlink call: say so, then close: the stream cannot be trusted to be framed.
                        try await send(.failure(VarlinkError.invalidParameter,
                            ["parameter": "message", "reason": "not a JSON object with a string 'method'"]))
                        return
                    }
                    call.frame = Array(frame.readableBytesView)
                    let response = await dispatch(call, peer: peer, handler: handler)
                    if call.oneway == true { continue }
                    switch response {
                    case .reply(let params): try await outbound.write(ByteBuffer(bytes: VarlinkReply.frame(params)))
                    case .error(let name, let params): try await send(.failure(name, params))
                    case .stream(let frames):
                        for await bytes in frames { try await outbound.write(ByteBuffer(bytes: bytes)) }
                    }
                }
            } catch is NULFrameDecoder.TooLong {
                try? await send(.failure(VarlinkError.invalidParameter,
                    ["parameter": "message", "reason": .string("message larger than \(config.maxMessageBytes) bytes")]))
            }
        }
    }

    private func dispatch(_ call: VarlinkCall, peer: PeerCredentials, handler: Handler) async -> VarlinkResponse {
        if let answer = dispatchAtOnce(call, peer: peer, immediate: nil) { return answer }
        return await handler(call, peer)
    }

    /// The encoded reply to a frame that can be answered on the event loop, or nil to pass it on.
    /// `more` and `oneway` calls, and anything that does not parse, take the ordinary path.
    private func answerAtOnce(_ frame: ByteBuffer, peer: PeerCredentials, immediate: @escaping ImmediateHandler) -> ByteBuffer? {
        guard var call = try? JSONDecoder().decode(VarlinkCall.self, from: Data(frame.readableBytesView)),
              call.more != true, call.oneway != true else { return nil }
        call.frame = Array(frame.readableBytesView)
        guard let response = dispatchAtOnce(call, peer: peer, immediate: immediate) else { return nil }
        switch response {
        case .reply(let params): return ByteBuffer(bytes: VarlinkReply.frame(params))
        case .error(let name, let params): return ByteBuffer(bytes: VarlinkReply.failure(name, params).encoded())
        case .stream: return nil
        }
    }

    /// The built-in org.varlink.service methods and parameter checks, then `immediate`; nil when
    /// the call needs the async handler.
    private func dispatchAtOnce(_ call: VarlinkCall, peer: PeerCredentials, immediate: ImmediateHandler?) -> VarlinkResponse? {
        if call.parameters != nil, call.parameters?.objectValue == nil {
            return .error(VarlinkError.invalidParameter, ["parameter": "parameters"])
        }
        switch call.method {
        case "org.varlink.service.GetInfo":
            return .reply(ServiceInfo(vendor: config.vendor, product: config.product, version: config.version, url: config.url,
                                      interfaces: ["org.varlink.service"] + config.interfaces.keys.sorted()))
        case "org.varlink.service.GetInterfaceDescription":
            guard let name = call.parameters?["interface"]?.stringValue else {
                return .error(VarlinkError.invalidParameter, ["parameter": "interface"])
            }
            if name == "org.varlink.service" { return .reply(InterfaceDescriptionReply(description: Self.serviceIDL)) }
            guard let text = config.interfaces[name] else {
                return .error(VarlinkError.interfaceNotFound, ["interface": .string(name)])
            }
            return .reply(InterfaceDescriptionReply(description: text))
        default:
            guard config.interfaces[call.interface] != nil else {
                return .error(VarlinkError.interfaceNotFound, ["interface": .string(call.interface)])
            }
            return immediate?(call, peer)
        }
    }

    static let serviceIDL = """
        # The Varlink Service Interface is provided by every varlink service.
        interface org.varlink.service

        # Get a list of all the interfaces a service provides and information about the implementation.
        method GetInfo() -> (vendor: string, product: string, version: string, url: string, interfaces: []string)

        # Get the description of an interface that is implemented by this service.
        method GetInterfaceDescription(interface: string) -> (description: string)

        error InterfaceNotFound (interface: string)
        error MethodNotFound (method: string)
        error MethodNotImplemented (method: string)
        error InvalidParameter (parameter: string)
        error PermissionDenied ()
        error ExpectedMore ()

        """
}

/// Answers read-only calls on the event loop, before they reach the connection's task. Once one
/// call has gone on to the task, every later call does too, so replies keep the order of calls.
final class ImmediateReplies: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let answer: (ByteBuffer) -> ByteBuffer?
    private var passing = false

    init(answer: @escaping (ByteBuffer) -> ByteBuffer?) { self.answer = answer }

    /// NIOAsyncChannel reads only when its task asks; until a call goes to the task, this handler
    /// asks itself, so an immediate call never waits for a task to be scheduled.
    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !passing, let reply = answer(unwrapInboundIn(data)) {
            context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
            return
        }
        passing = true
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
        if !passing { context.read() }
    }
}

/// org.varlink.service.GetInfo's reply.
struct ServiceInfo: Encodable, Sendable {
    var vendor, product, version, url: String
    var interfaces: [String]
}

/// org.varlink.service.GetInterfaceDescription's reply.
struct InterfaceDescriptionReply: Encodable, Sendable { var description: String }

/// Linux's `struct ucred`, which Glibc does not export without _GNU_SOURCE.
struct UCred {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}

/// Which file a path names (device and inode), to tell one's own socket from its replacement.
public struct SocketFileIdentity: Sendable, Equatable {
    public var device: UInt64
    public var inode: UInt64
    public init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }
}
