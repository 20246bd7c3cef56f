import Core
import Systemd
#if canImport(Glibc)
import Glibc
#endif

/// Where a node's events go: appended to `--log_path` as JSONL, sent to the supervisor as
/// `KV_EVENT=<json>` on NOTIFY_SOCKET, and a readable line on stderr.
/// Called from the event loop (recoveries) and the timing thread (deaths): each output is one
/// syscall, so lines never interleave.
public final class EventOutput: Sendable {
    private let logFD: Int32?
    private let viaNotify: Bool

    public init(logPath: String?, viaNotify: Bool) throws {
        if let logPath {
            let fd = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw NodeError.cannotOpenLog(path: logPath, errno: errno) }
            logFD = fd
        } else {
            logFD = nil
        }
        self.viaNotify = viaNotify
    }

    /// Where an event goes besides the log file: everywhere (the supervisor and stderr too), or
    /// only the file (a node's own bookkeeping, once a second: not for the journal).
    public enum Reach: Sendable { case everywhere, logOnly, logAndStderr }

    public func emit(_ event: Event, reach: Reach = .everywhere) {
        let line = event.jsonLine()
        if let logFD {
            // One write(2) per line with O_APPEND: lines never interleave, even with other writers.
            let bytes = Array((line + "\n").utf8)
            _ = bytes.withUnsafeBytes { write(logFD, $0.baseAddress, $0.count) }
        }
        if viaNotify && reach == .everywhere { Notifier.send(["KV_EVENT=\(line)"]) }
        if reach == .logOnly { return }
        var human = "\(event.kind.rawValue)"
        if let peer = event.peer { human += " peer=\(peer)" }
        if let s = event.silenceMs { human += " silence_ms=\(s)" }
        if let l = event.leader { human += " leader=\(l)" }
        if let t = event.term { human += " term=\(t)" }
        if let o = event.offset { human += " offset=\(o)" }
        if let r = event.reason { human += ": \(r)" }
        writeStderr("kvnode \(event.node.map(\.rawValue) ?? "?"): \(human)")
    }
}

public enum NodeError: Error, CustomStringConvertible {
    case cannotOpenLog(path: String, errno: Int32)
    case cannotListen(host: String, port: Int, reason: String)
    case parentGone

    public var description: String {
        switch self {
        case .cannotOpenLog(let p, let e): return "cannot open log file \(p): \(String(cString: strerror(e)))"
        case .cannotListen(let h, let p, let r): return "cannot listen on \(h):\(p): \(r) (is the port in use?)"
        case .parentGone: return "the supervisor that started this node is gone"
        }
    }
}
