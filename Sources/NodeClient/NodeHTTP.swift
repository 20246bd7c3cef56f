import Core
import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP/1.1 request to a kvnode on a connection of its own. NIOHTTP1 does the protocol; this
/// only sends one request and gathers one response, stamped on the event loop when its last byte
/// arrives (the failover experiment's acknowledgement instant). kvctl waits on it (`request`);
/// the supervisor awaits it (`send`).
public enum NodeHTTP {
    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: [UInt8]
        /// When the whole response had arrived (monotonic ns, taken on the event loop).
        public var receivedMonoNs: MonotonicNanos
        public var text: String { String(decoding: body, as: UTF8.self) }
        public init(status: Int, headers: HTTPHeaders, body: [UInt8], receivedMonoNs: MonotonicNanos = monotonicNow()) {
            self.status = status; self.headers = headers; self.body = body; self.receivedMonoNs = receivedMonoNs
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        case unreachable(String, Int, String)
        case timedOut(String, Int)
        public var description: String {
            switch self {
            case .unreachable(let h, let p, let why): return "cannot reach \(h):\(p): \(why)"
            case .timedOut(let h, let p): return "no answer from \(h):\(p) in time"
            }
        }
    }

    /// Blocking: for a command line tool, never on an event loop.
    public static func request(host: String, port: Int, method: String, path: String, body: [UInt8]? = nil,
                               timeoutMs: Int64 = 3000) throws -> Response {
        let (future, _) = start(host: host, port: port, method: method, path: path, body: body, timeoutMs: timeoutMs,
                                group: MultiThreadedEventLoopGroup.singleton)
        do { return try future.wait() } catch { throw failure(error, host, port) }
    }

    /// A request under way: its answer, and the instant its bytes were handed to the socket (after
    /// the connection was made: a write's "send" stamp).
    public struct Call: Sendable {
        public let host: String
        public let port: Int
        public let response: EventLoopFuture<Response>
        public let sent: EventLoopFuture<MonotonicNanos>

        public func sentMonoNs() async throws(Failure) -> MonotonicNanos {
            do { return try await sent.get() } catch { throw NodeHTTP.failure(error, host, port) }
        }
        public func answer() async throws(Failure) -> Response {
            do { return try await response.get() } catch { throw NodeHTTP.failure(error, host, port) }
        }
    }

    public static func begin(host: String, port: Int, method: String, path: String, body: [UInt8]? = nil, timeoutMs: Int64,
                             group: any EventLoopGroup) -> Call {
        let (response, sent) = start(host: host, port: port, method: method, path: path, body: body, timeoutMs: timeoutMs, group: group)
        return Call(host: host, port: port, response: response, sent: sent)
    }

    /// Awaits the answer.
    public static func send(host: String, port: Int, method: String, path: String, body: [UInt8]? = nil, timeoutMs: Int64,
                            group: any EventLoopGroup) async throws(Failure) -> Response {
        try await begin(host: host, port: port, method: method, path: path, body: body, timeoutMs: timeoutMs, group: group).answer()
    }

    static func failure(_ error: any Error, _ host: String, _ port: Int) -> Failure {
        (error as? Failure) ?? .unreachable(host, port, "\(error)")
    }

    private static func start(host: String, port: Int, method: String, path: String, body: [UInt8]?, timeoutMs: Int64,
                              group: any EventLoopGroup) -> (EventLoopFuture<Response>, EventLoopFuture<MonotonicNanos>) {
        let loop = group.next()
        let promise = loop.makePromise(of: Response.self)
        let sent = loop.makePromise(of: MonotonicNanos.self)
        promise.futureResult.whenFailure { sent.fail($0) }
        let timeout = loop.scheduleTask(in: .milliseconds(timeoutMs)) { promise.fail(Failure.timedOut(host, port)) }
        promise.futureResult.whenComplete { _ in timeout.cancel() }
        ClientBootstrap(group: loop)
            .connectTimeout(.milliseconds(timeoutMs))
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHTTPClientHandlers()
                    try ch.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
                }
            }
            .connect(host: host, port: port)
            .whenComplete { result in
                switch result {
                case .failure(let error): promise.fail(Failure.unreachable(host, port, "\(error)"))
                case .success(let channel):
                    promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                    var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path)
                    head.headers.add(name: "Host", value: "\(host):\(port)")
                    head.headers.add(name: "Connection", value: "close")
                    head.headers.add(name: "Content-Length", value: String(body?.count ?? 0))
                    if body != nil { head.headers.add(name: "Content-Type", value: "application/json") }
                    channel.write(HTTPClientRequestPart.head(head), promise: nil)
                    if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
                    // Stamped once the request's last bytes were written to the socket.
                    let flushed = channel.eventLoop.makePromise(of: Void.self)
                    flushed.futureResult.whenComplete { result in
                        switch result {
                        case .success: sent.succeed(monotonicNow())
                        case .failure(let error): sent.fail(error)
                        }
                    }
                    channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: flushed)
                }
            }
        return (promise.futureResult, sent.futureResult)
    }
}

private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    private let promise: EventLoopPromise<NodeHTTP.Response>
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<NodeHTTP.Response>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body(var b): body += b.readBytes(length: b.readableBytes) ?? []
        case .end:
            guard let head else { return }
            promise.succeed(.init(status: Int(head.status.code), headers: head.headers, body: body, receivedMonoNs: monotonicNow()))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(NodeHTTP.Failure.unreachable("node", 0, "the connection closed before a whole response"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
