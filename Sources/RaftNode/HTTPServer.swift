import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOPosix

/// The HTTP API on Hummingbird 2: reads the body (bounded), hands the request to `KVAPI`.
struct KVResponder: HTTPResponder {
    typealias Context = BasicRequestContext
    let api: KVAPI

    func respond(to request: Request, context: Context) async throws -> Response {
        var request = request
        let body: [UInt8]
        do {
            body = Array(buffer: try await request.collectBody(upTo: api.limits.bodyBytes))
        } catch is NIOTooManyBytesError {
            return Self.response(api.error(413, "the body exceeds the limit of \(api.limits.bodyBytes) bytes", "body_too_large"))
        } catch {
            return Self.response(api.error(400, "could not read the body: \(error)", "bad_body"))
        }
        return Self.response(await api.handle(method: request.method.rawValue, path: request.uri.path,
                                              query: request.uri.query, body: body))
    }

    static func response(_ reply: APIReply) -> Response {
        var headers = HTTPFields()
        for (name, value) in reply.headers {
            if let n = HTTPField.Name(name) { headers.append(HTTPField(name: n, value: value)) }
        }
        return Response(status: HTTPResponse.Status(code: reply.status), headers: headers,
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: reply.body)))
    }
}

enum HTTPServer {
    /// Starts serving; returns once the port accepts connections, or throws why it cannot.
    static func start(api: KVAPI, host: String, port: Int, group: any EventLoopGroup) throws {
        var logger = Logger(label: "kvnode-http")
        logger.logLevel = .error
        let running = group.next().makePromise(of: Void.self)
        let app = Application(
            responder: KVResponder(api: api),
            configuration: .init(address: .hostname(host, port: port), serverName: nil, reuseAddress: true),
            onServerRunning: { _ in running.succeed(()) },
            eventLoopGroupProvider: .shared(group),
            logger: logger)
        Task {
            do { try await app.runService(gracefulShutdownSignals: []) } catch { running.fail(error) }
        }
        try running.futureResult.wait()
    }
}
