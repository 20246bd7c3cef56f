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

/// A reply whose parameters were decoded as `R`, or an error with its parameters.
public enum TypedReply<R> {
    case reply(R, continues: Bool)
    case error(String, JSONValue?)
}

private struct TypedCallEnvelope<P: Encodable>: Encodable { var method: String; var parameters: P; var more: Bool? }
private struct TypedReplyEnvelope<R: Decodable>: Decodable { var parameters: R }

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
        try send(bytes: Array(try JSONEncoder().encode(call)))
    }

    private func send(bytes message: [UInt8]) throws {
        var bytes = message
        bytes.append(0)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw VarlinkClientError.io(String(cString: strerror(errno))) }
            offset += n
        }
    }

    public func nextReply() throws -> VarlinkReply {
        let frame = try nextFrame()
        do { return try JSONDecoder().decode(VarlinkReply.self, from: Data(frame)) }
        catch { throw VarlinkClientError.protocolViolation("not a Varlink reply: \(String(decoding: frame.prefix(200), as: UTF8.self))") }
    }

    /// The next reply with its parameters decoded as `R`, or the error the service answered.
    public func nextReply<R: Decodable>(as type: R.Type) throws -> TypedReply<R> {
        let frame = try nextFrame()
        let reply: VarlinkReply
        do { reply = try JSONDecoder().decode(VarlinkReply.self, from: Data(frame)) }
        catch { throw VarlinkClientError.protocolViolation("not a Varlink reply: \(String(decoding: frame.prefix(200), as: UTF8.self))") }
        if let error = reply.error { return .error(error, reply.parameters) }
        do {
            let typed = try JSONDecoder().decode(TypedReplyEnvelope<R>.self, from: Data(frame))
            return .reply(typed.parameters, continues: reply.continues == true)
        } catch {
            throw VarlinkClientError.protocolViolation("reply does not match the interface (\(error)): "
                + String(decoding: frame.prefix(200), as: UTF8.self))
        }
    }

    /// Sends a call with typed parameters and returns its first reply, typed.
    public func call<P: Encodable, R: Decodable>(_ method: String, _ parameters: P, more: Bool = false,
                                                 replying type: R.Type) throws -> TypedReply<R> {
        let message = Array(try JSONEncoder().encode(TypedCallEnvelope(method: method, parameters: parameters,
                                                                        more: more ? true : nil)))
        do {
            try send(bytes: message)
        } catch {
            if let reply = try? nextReply(as: type) { return reply }
            throw error
        }
        return try nextReply(as: type)
    }

    private func nextFrame() throws -> [UInt8] {
        while true {
            if let nul = buffer.firstIndex(of: 0) {
                let frame = Array(buffer[..<nul])
                buffer.removeSubrange(...nul)
                return frame
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
