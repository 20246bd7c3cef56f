import Core
#if canImport(Glibc)
import Glibc
#endif

/// Where the daemon keeps its socket, notify sockets and event log. Under systemd the unit's
/// RuntimeDirectory/StateDirectory; otherwise $XDG_RUNTIME_DIR/kvsupervisor; otherwise ./run.
public struct DaemonPaths: Sendable, Equatable {
    public var runtimeDir: String
    public var socket: String
    public var stateDir: String
    public var eventLog: String

    public static func resolve(config: ClusterConfig, socketOverride: String?,
                               environment: (String) -> String? = { getenv($0).map { String(cString: $0) } }) -> DaemonPaths {
        let runtime = config.runtimeDir
            ?? environment("RUNTIME_DIRECTORY").map { firstPath($0) }
            ?? environment("XDG_RUNTIME_DIR").map { $0 + "/kvsupervisor" }
            ?? "./run"
        let state = config.stateDir ?? environment("STATE_DIRECTORY").map { firstPath($0) } ?? runtime
        return DaemonPaths(runtimeDir: runtime, socket: socketOverride ?? config.socketPath ?? runtime + "/control",
                           stateDir: state, eventLog: config.eventLogPath ?? state + "/events.jsonl")
    }

    /// The same paths made absolute: NOTIFY_SOCKET must be absolute, and children run elsewhere.
    public func absolute() -> DaemonPaths {
        func abs(_ p: String) -> String {
            if p.hasPrefix("/") { return p }
            var buffer = [CChar](repeating: 0, count: 4096)
            guard getcwd(&buffer, buffer.count) != nil else { return p }
            let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return cwd + "/" + (p.hasPrefix("./") ? String(p.dropFirst(2)) : p)
        }
        return DaemonPaths(runtimeDir: abs(runtimeDir), socket: abs(socket), stateDir: abs(stateDir), eventLog: abs(eventLog))
    }

    private static func firstPath(_ list: String) -> String { String(list.split(separator: ":").first ?? Substring(list)) }

    /// mkdir -p, mode 0750 for new directories.
    public static func makeDirectories(_ path: String) -> Bool {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o750) != 0 && errno != EEXIST { return false }
        }
        return true
    }
}
