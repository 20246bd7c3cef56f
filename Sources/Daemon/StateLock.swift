#if canImport(Glibc)
import Glibc
#endif

/// One supervisor per runtime and state directory: an exclusive flock on `kvsupervisor.lock` in
/// each, taken before the supervisor binds, spawns or writes anything, and held until it exits
/// (the kernel drops it however the process ends). A second supervisor on the same directories
/// would take over the first's socket, fail to bind its nodes' ports and append to its event log.
enum StateLock {
    static let fileName = "kvsupervisor.lock"

    /// Locks every directory (once each) and writes this pid into each lock file; the descriptors
    /// stay open for the life of the process. On failure, what holds the lock and what to do.
    static func acquire(_ directories: [String]) throws(Daemon.StartError) {
        var seen = Set<String>()
        for dir in directories where seen.insert(dir).inserted {
            let path = dir + "/" + fileName
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw .setup("cannot open \(path): \(String(cString: strerror(errno)))") }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                let e = errno
                let holder = e == EWOULDBLOCK ? readPID(fd) : nil
                close(fd)
                guard e == EWOULDBLOCK else { throw .setup("cannot lock \(path): \(String(cString: strerror(e)))") }
                throw .setup("another kvsupervisor (\(holder.map { "pid \($0)" } ?? "pid unknown")) already runs with \(dir): "
                             + "stop it first (systemctl stop kvsupervisor, or kill \(holder ?? "its pid")), or give this one "
                             + "its own runtime_dir and state_dir")
            }
            let pid = Array("\(getpid())\n".utf8)
            _ = ftruncate(fd, 0)
            _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            // Deliberately never closed: the lock lives as long as this process.
        }
    }

    private static func readPID(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        let text = String(decoding: buffer.prefix(n), as: UTF8.self).split(separator: "\n").first.map(String.init)
        return text.flatMap { Int32($0) }.map(String.init)
    }
}
