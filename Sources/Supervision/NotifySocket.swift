import Core
#if canImport(Glibc)
import Glibc
#endif

/// A per-child sd_notify socket: an AF_UNIX datagram socket the child finds in NOTIFY_SOCKET.
/// Knowing which socket a message came in on tells whose message it is.
public final class NotifySocket: Sendable {
    public let path: String
    public let fd: Int32
    /// The bound file's identity: deinit unlinks the path only while it is still this socket, so
    /// a successor bound to the same path (the next experiment cell's node) keeps its socket.
    private let identity: (dev: UInt64, ino: UInt64)?

    public init(path: String) throws(SupervisionError) {
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw .system("socket(AF_UNIX, SOCK_DGRAM)", errno) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw .pathTooLong(path)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw .system("bind \(path)", e)
        }
        self.path = path
        self.fd = fd
        identity = Self.identity(of: path)
    }

    private static func identity(of path: String) -> (dev: UInt64, ino: UInt64)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    /// Reads every queued datagram without blocking.
    func drain() -> [String] {
        var messages: [String] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while messages.count < 1024 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            messages.append(String(decoding: buffer[0..<n], as: UTF8.self))
        }
        return messages
    }

    /// Unlinks the socket's file while it is still this socket. For the end of the process, where
    /// no deinit runs; the descriptor stays open (a late datagram is simply not read).
    public func removeFile() {
        if let mine = identity, let now = Self.identity(of: path), mine == now { unlink(path) }
    }

    deinit {
        close(fd)
        removeFile()
    }
}

public enum SupervisionError: Error, CustomStringConvertible, Equatable {
    case system(String, Int32)
    case pathTooLong(String)
    case spawnFailed(String, Int32)
    case noSuchNode(NodeID)
    case notRunning(NodeID)
    case alreadyRunning(NodeID)
    /// pidfd_open failed for a child just spawned (it was killed and reaped).
    case pidfdUnavailable(pid: Int32, errno: Int32)

    public var description: String {
        switch self {
        case .system(let what, let e): return "\(what): \(String(cString: strerror(e)))"
        case .pathTooLong(let p): return "socket path too long (over 107 bytes): \(p)"
        case .spawnFailed(let exe, let e): return "cannot start \(exe): \(String(cString: strerror(e)))"
        case .noSuchNode(let id): return "no node '\(id)'"
        case .notRunning(let id): return "node '\(id)' is not running"
        case .alreadyRunning(let id): return "node '\(id)' is already running"
        case .pidfdUnavailable(let pid, let e):
            return "pidfd_open for child \(pid) failed (\(String(cString: strerror(e)))), so its exit could not be "
                + "watched; it was killed. Too many open files? Raise LimitNOFILE="
        }
    }
}
