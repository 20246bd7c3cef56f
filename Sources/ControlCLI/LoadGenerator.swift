import Core
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// A closed-loop HTTP load generator: `clients` keep-alive connections, each sending its next
/// request when the previous answer arrives, for `durationMs`. Speaks kvnode's API and etcd's
/// v3 JSON gateway alike, so both stores are driven the same way (the benchmark's peer).
struct LoadGenerator {
    enum API: String, CaseIterable, Sendable { case kvnode, etcd }
    enum Operation: String, CaseIterable, Sendable { case put, get }

    struct Config: Sendable {
        var host = "127.0.0.1"
        var port: Int
        var api: API
        var operation: Operation
        /// Closed loop: each client sends its next request when its previous answer arrives.
        var clients: Int
        var durationMs: Int
        var valueBytes: Int
        /// Puts and gets spread over this many keys.
        var keys: Int
        /// Event-loop threads the clients share.
        var threads: Int
        /// kvnode with several Raft groups: the port of each group's leader. Client c then talks to
        /// group c mod G's leader and writes only that group's keys, as a multi-Raft client does
        /// (rather than being redirected on 2 requests in 3).
        var groupPorts: [Int]? = nil
        /// Makes client ids unique per run, so a second run on the same cluster starts fresh sessions.
        var runToken = "\(getpid())-\(monotonicNow() % 1_000_000_007)"
    }

    struct Result: Sendable {
        var ok = 0
        var failed = 0
        var failures: [String: Int] = [:]
        /// Latency of every acknowledged request, ns.
        var latencies: [Int64] = []
        var elapsedNs: Int64 = 0
    }

    /// The keys each group holds among "k0", "k1", ...: `keys` in all, spread as KeyGroups spreads them.
    static func keysByGroup(_ config: Config) -> [[String]] {
        let groups = config.groupPorts?.count ?? 1
        var out = [[String]](repeating: [], count: groups)
        for i in 0..<max(config.keys, groups) {
            let key = "k\(i)"
            out[KeyGroups.group(of: key, groups: groups)].append(key)
        }
        // A group that drew none of the first keys (few keys, many groups) gets the next one it holds.
        var i = max(config.keys, groups)
        for g in out.indices where out[g].isEmpty {
            while KeyGroups.group(of: "k\(i)", groups: groups) != g { i += 1 }
            out[g].append("k\(i)")
        }
        return out
    }

    /// The port client `c` talks to.
    static func port(_ config: Config, client c: Int) -> Int {
        config.groupPorts.map { $0[c % $0.count] } ?? config.port
    }

    /// Builds request `n` of client `c`: method, path, body.
    static func request(_ config: Config, keys: [[String]], client c: Int, n: Int, value: String) -> (HTTPMethod, String, [UInt8]) {
        let mine = keys[c % keys.count]
        let key = mine[(c * 7919 + n) % mine.count]
        switch (config.api, config.operation) {
        case (.kvnode, .put):
            return (.PUT, "/kv/\(key)", Array("{\"client_id\":\"load-\(config.runToken)-\(c)\",\"seq\":\(n + 1),\"value\":\"\(value)\"}".utf8))
        case (.kvnode, .get):
            return (.GET, "/kv/\(key)", [])
        case (.etcd, .put):
            return (.POST, "/v3/kv/put", Array("{\"key\":\"\(base64(key))\",\"value\":\"\(base64(value))\"}".utf8))
        case (.etcd, .get):
            // serializable=false (the default): a linearizable range read through the leader.
            return (.POST, "/v3/kv/range", Array("{\"key\":\"\(base64(key))\"}".utf8))
        }
    }

    static func run(_ config: Config) throws -> Result {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: config.threads)
        defer { try? group.syncShutdownGracefully() }
        let value = String(repeating: "v", count: config.valueBytes)
        let keys = keysByGroup(config)
        let deadline = monotonicNow() + Int64(config.durationMs) * 1_000_000
        let start = monotonicNow()
        var done: [EventLoopFuture<Result>] = []
        for c in 0..<config.clients {
            let loop = group.next()
            let promise = loop.makePromise(of: Result.self)
            ClientBootstrap(group: loop)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(2))
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        // Made on the channel's loop, where it lives: a handler is not Sendable.
                        let driver = ClientDriver(config: config, keys: keys, client: c, value: value, deadline: deadline,
                                                  promise: promise)
                        try ch.pipeline.syncOperations.addHTTPClientHandlers()
                        try ch.pipeline.syncOperations.addHandler(driver)
                    }
                }
                .connect(host: config.host, port: port(config, client: c))
                .whenFailure { error in promise.fail(error) }
            done.append(promise.futureResult)
        }
        var total = Result()
        for f in done {
            let r = try f.wait()
            total.ok += r.ok
            total.failed += r.failed
            total.latencies += r.latencies
            for (k, v) in r.failures { total.failures[k, default: 0] += v }
        }
        total.elapsedNs = monotonicNow() - start
        return total
    }

    static func base64(_ s: String) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        let bytes = Array(s.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            let b0 = UInt32(bytes[i]), b1 = n > 1 ? UInt32(bytes[i + 1]) : 0, b2 = n > 2 ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(table[Int(v >> 18 & 63)])
            out.append(table[Int(v >> 12 & 63)])
            out.append(n > 1 ? table[Int(v >> 6 & 63)] : UInt8(ascii: "="))
            out.append(n > 2 ? table[Int(v & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// One client: sends a request, waits for its whole answer, records, sends the next.
private final class ClientDriver: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart
    private let config: LoadGenerator.Config
    private let keys: [[String]]
    private let client: Int
    private let value: String
    private let deadline: MonotonicNanos
    private let promise: EventLoopPromise<LoadGenerator.Result>
    private var result = LoadGenerator.Result()
    private var n = 0
    private var sentAt: MonotonicNanos = 0
    private var status: UInt = 0

    init(config: LoadGenerator.Config, keys: [[String]], client: Int, value: String, deadline: MonotonicNanos,
         promise: EventLoopPromise<LoadGenerator.Result>) {
        self.config = config; self.keys = keys; self.client = client; self.value = value; self.deadline = deadline; self.promise = promise
        result.latencies.reserveCapacity(50_000)
    }

    func channelActive(context: ChannelHandlerContext) {
        send(context)
        context.fireChannelActive()
    }

    private func send(_ context: ChannelHandlerContext) {
        guard monotonicNow() < deadline else {
            promise.succeed(result)
            context.close(promise: nil)
            return
        }
        let (method, path, body) = LoadGenerator.request(config, keys: keys, client: client, n: n, value: value)
        n += 1
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: "\(config.host):\(LoadGenerator.port(config, client: client))")
        head.headers.add(name: "Content-Length", value: String(body.count))
        if !body.isEmpty { head.headers.add(name: "Content-Type", value: "application/json") }
        sentAt = monotonicNow()
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !body.isEmpty { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): status = h.status.code
        case .body: break
        case .end:
            // A get of a key never written is a 404 from kvnode: still a served read.
            if status == 200 || (config.operation == .get && status == 404) {
                result.ok += 1
                result.latencies.append(monotonicNow() - sentAt)
            } else {
                result.failed += 1
                result.failures["HTTP \(status)", default: 0] += 1
            }
            send(context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.succeed(result)  // a no-op if already done
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        result.failures["\(error)", default: 0] += 1
        promise.succeed(result)
        context.close(promise: nil)
    }
}
