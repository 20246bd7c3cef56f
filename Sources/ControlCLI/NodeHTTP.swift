import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP/1.1 request to a kvnode, blocking (kvctl is a command, not a server). NIOHTTP1 does
/// the protocol; this only sends one request and gathers one response.
enum NodeHTTP {
    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    enum Failure: Error, CustomStringConvertible {
        case unreachable(String, Int, String)
        case timedOut(String, Int)
        var description: String {
            switch self {
            case .unreachable(let h, let p, let why): return "cannot reach \(h):\(p): \(why)"
            case .timedOut(let h, let p): return "no answer from \(h):\(p) in time"
            }
        }
    }

    static func request(host: String, port: Int, method: String, path: String, body: [UInt8]? = nil,
                        timeoutMs: Int64 = 3000) throws -> Response {
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: Response.self)
        let channel: any Channel
        do {
            channel = try ClientBootstrap(group: group)
                .connectTimeout(.milliseconds(timeoutMs))
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHTTPClientHandlers()
                        try ch.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
                    }
                }
                .connect(host: host, port: port).wait()
        } catch {
            promise.fail(error)
            throw Failure.unreachable(host, port, "\(error)")
        }
        defer { channel.close(promise: nil) }
        let timeout = channel.eventLoop.scheduleTask(in: .milliseconds(timeoutMs)) { promise.fail(Failure.timedOut(host, port)) }
        defer { timeout.cancel() }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path)
        head.headers.add(name: "Host", value: "\(host):\(port)")
        head.headers.add(name: "Connection", value: "close")
        head.headers.add(name: "Content-Length", value: String(body?.count ?? 0))
        if body != nil { head.headers.add(name: "Content-Type", value: "application/json") }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        do { return try promise.futureResult.wait() } catch let f as Failure { throw f } catch {
            throw Failure.unreachable(host, port, "\(error)")
        }
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
            promise.succeed(.init(status: Int(head.status.code), headers: head.headers, body: body))
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
