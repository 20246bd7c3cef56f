import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import NodeRuntime

/// The HTTP API on HummingbirdCore 2 (the server without Hummingbird's router, middleware and
/// file serving, which kvnode does not use and which cost 2 MB of binary): reads the body
/// (bounded), hands the request to `KVAPI`, writes its reply.
package enum HTTPServer {
    /// Starts serving; returns once the port accepts connections, or throws why it cannot.
    /// Connections held at once (or half the file descriptors, if fewer); past it, a new one closes
    /// the one that read or wrote nothing for the longest (a stalled or half-sent request first),
    /// so slow clients cannot starve the rest, nor take the descriptors the WAL needs.
    static let maxConnections = 4096
    /// A connection with no request in progress, or a request head not complete, for this long is
    /// closed (Hummingbird's idle timeout).
    static let idleTimeout = TimeAmount.seconds(10)

    /// Starts serving on `group` (one thread: the connection guard lives on it); returns once the
    /// port accepts connections, or throws why it cannot.
    static func start(api: KVAPI, host: String, port: Int, group: MultiThreadedEventLoopGroup,
                      report: @escaping @Sendable (String) -> Void) throws {
        try start(bodyLimit: api.limits.bodyBytes, host: host, port: port, group: group, report: report) {
            await api.handle(method: $0, path: $1, query: $2, body: $3)
        }
    }

    /// A handler of (method, path as received, raw query, body); bodies past `bodyLimit` get a 413.
    package typealias Handler = @Sendable (String, String, String?, [UInt8]) async -> APIReply

    package static func start(bodyLimit: Int, host: String, port: Int, group: MultiThreadedEventLoopGroup,
                              report: @escaping @Sendable (String) -> Void, handler: @escaping Handler) throws {
        var logger = Logger(label: "kvnode-http")
        logger.logLevel = .error
        let loop = group.next()
        let running = loop.makePromise(of: Void.self)
        let guardian = ConnectionGuard(limit: connectionCap(preferred: maxConnections, share: 0.5), loop: loop,
                                       onEvict: { report("HTTP: \($0)") })
        let server = Server(
            childChannelSetup: HTTP1Channel(responder: { request, writer, _ in
                let reply = await respond(request, bodyLimit: bodyLimit, handler)
                // A length, not chunks: every reply is whole before it is written.
                var headers: HTTPFields = [.contentLength: String(reply.body.count)]
                for (name, value) in reply.headers {
                    if let n = HTTPField.Name(name) { headers.append(HTTPField(name: n, value: value)) }
                }
                try await writer.write(response: HTTPResponse(status: .init(code: reply.status), headerFields: headers),
                                       body: ResponseBody(byteBuffer: ByteBuffer(bytes: reply.body)))
            }, configuration: .init(additionalChannelHandlers: [guardian.handler()], idleTimeout: idleTimeout)),
            configuration: ServerConfiguration(address: .hostname(host, port: port), serverName: nil, reuseAddress: true),
            onServerRunning: { _ in running.succeed(()) },
            eventLoopGroup: group,
            logger: logger)
        Task {
            do { try await server.run() } catch { running.fail(error) }
        }
        try running.futureResult.wait()
    }

    private static func respond(_ request: Request, bodyLimit: Int, _ handler: Handler) async -> APIReply {
        var request = request
        let body: [UInt8]
        do {
            body = Array(buffer: try await request.collectBody(upTo: bodyLimit))
        } catch is NIOTooManyBytesError {
            return .error(413, "the body exceeds the limit of \(bodyLimit) bytes", "body_too_large")
        } catch {
            return .error(400, "could not read the body: \(error)", "bad_body")
        }
        return await handler(request.method.rawValue, request.uri.path, request.uri.query, body)
    }
}
