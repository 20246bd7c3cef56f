#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

public enum VarlinkClientError: Error, CustomStringConvertible {
    case connect(path: String, reason: String)
    /// The socket exists but its permissions keep this user out.
    case notPermitted(path: String)
    case io(String)
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .connect(let path, let reason): return "cannot connect to \(path): \(reason)"
        case .notPermitted(let path): return "cannot connect to \(path): permission denied"
        case .io(let r): return "connection failed: \(r)"
        case .protocolViolation(let r): return "bad reply from the service: \(r)"
        }
    }
}

/// A small blocking Varlink client over a Unix socket, for command-line tools.
public final class VarlinkClient {
    private let fd: Int32
    private var buffer: [UInt8] = []
    public static let maxReplyBytes = 16 << 20

    public init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw VarlinkClientError.connect(path: path, reason: String(cString: strerror(errno))) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw VarlinkClientError.connect(path: path, reason: "path longer than 107 bytes")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            if e == EACCES || e == EPERM { throw VarlinkClientError.notPermitted(path: path) }
            throw VarlinkClientError.connect(path: path, reason: String(cString: strerror(e)))
        }
    }

    deinit { close(fd) }

    private func send(_ call: VarlinkCall) throws {
        var bytes = Array(try JSONEncoder().encode(call))
        bytes.append(0)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw VarlinkClientError.io(String(cString: strerror(errno))) }
            offset += n
        }
    }

    public func nextReply() throws -> VarlinkReply {
        while true {
            if let nul = buffer.firstIndex(of: 0) {
                let frame = Array(buffer[..<nul])
                buffer.removeSubrange(...nul)
                do { return try JSONDecoder().decode(VarlinkReply.self, from: Data(frame)) }
                catch { throw VarlinkClientError.protocolViolation("not a Varlink reply: \(String(decoding: frame.prefix(200), as: UTF8.self))") }
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = read(fd, &chunk, chunk.count)
            if n < 0 { if errno == EINTR { continue }; throw VarlinkClientError.io(String(cString: strerror(errno))) }
            if n == 0 { throw VarlinkClientError.io("the service closed the connection") }
            buffer += chunk[0..<n]
            if buffer.count > Self.maxReplyBytes { throw VarlinkClientError.protocolViolation("reply over \(Self.maxReplyBytes) bytes") }
        }
    }

    /// Sends a call and returns its first reply; read further replies of a `more` call with `nextReply()`.
    public func call(_ call: VarlinkCall) throws -> VarlinkReply {
        do {
            try send(call)
        } catch {
            // The service may have answered (too many connections, permission) and closed before
            // reading the call: that answer is the one to show.
            if let reply = try? nextReply() { return reply }
            throw error
        }
        return try nextReply()
    }

    /// One call, one reply.
    public func call(_ method: String, _ parameters: JSONValue = .object([:])) throws -> VarlinkReply {
        try call(VarlinkCall(method: method, parameters: parameters))
    }
}
