#if canImport(Glibc)
import Glibc
#endif

/// Thin, checked wrappers over the file syscalls the WAL needs. Every failure names the path.
enum FileIO {
    static func open(_ path: String, flags: Int32, mode: mode_t = 0o600) throws(StorageError) -> Int32 {
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .io(path: path, operation: "open", errno: errno) }
        return fd
    }

    static func readAll(_ path: String) throws(StorageError) -> [UInt8] {
        let fd = try open(path, flags: O_RDONLY)
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io(path: path, operation: "stat", errno: errno) }
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var done = 0
        while done < out.count {
            let n = out.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress! + done, $0.count - done, off_t(done)) }
            if n < 0 { if errno == EINTR { continue }; throw .io(path: path, operation: "read", errno: errno) }
            if n == 0 { break }
            done += n
        }
        return Array(out.prefix(done))
    }

    /// Up to `count` bytes at `offset`; fewer only at the end of the file.
    static func pread(_ fd: Int32, count: Int, at offset: Int, path: String) throws(StorageError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if n < 0 { if errno == EINTR { continue }; throw .io(path: path, operation: "read", errno: errno) }
            if n == 0 { break }
            done += n
        }
        if done < count { out.removeLast(count - done) }
        return out
    }

    static func pwriteAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int, path: String) throws(StorageError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, $0.count - done, off_t(offset + done)) }
            if n < 0 { if errno == EINTR { continue }; throw .io(path: path, operation: "write", errno: errno) }
            done += n
        }
    }

    static func fdatasync(_ fd: Int32, path: String) throws(StorageError) {
        guard Glibc.fdatasync(fd) == 0 else { throw .io(path: path, operation: "fdatasync", errno: errno) }
    }

    static func fsync(_ fd: Int32, path: String) throws(StorageError) {
        guard Glibc.fsync(fd) == 0 else { throw .io(path: path, operation: "fsync", errno: errno) }
    }

    /// A rename or a new file is durable only once its directory is synced.
    static func syncDirectory(_ path: String) throws(StorageError) {
        let fd = try open(path, flags: O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try fsync(fd, path: path)
    }

    /// Allocates the blocks up front, so that later fdatasyncs need not update the file's size.
    static func preallocate(_ fd: Int32, bytes: Int, path: String) throws(StorageError) {
        let rc = posix_fallocate(fd, 0, off_t(bytes))
        // Some filesystems (tmpfs before 3.5, some overlays) cannot; the WAL works without it.
        guard rc == 0 || rc == EOPNOTSUPP || rc == EINVAL else { throw .io(path: path, operation: "fallocate", errno: rc) }
    }

    static func truncate(_ fd: Int32, to length: Int, path: String) throws(StorageError) {
        guard ftruncate(fd, off_t(length)) == 0 else { throw .io(path: path, operation: "truncate", errno: errno) }
    }

    static func makeDirectory(_ path: String) throws(StorageError) {
        var st = stat()
        if stat(path, &st) == 0 { return }
        // Parents first, as mkdir -p.
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try makeDirectory(String(path[..<slash]))
        }
        guard mkdir(path, 0o700) == 0 else {
            if errno == EEXIST { return }
            throw .io(path: path, operation: "mkdir", errno: errno)
        }
        // The new directory's entry is durable only once its parent is synced.
        try syncDirectory(parentDirectory(path))
    }

    static func parentDirectory(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// An exclusive flock on `path` (created if absent), held as long as the returned descriptor is
    /// open: the kernel drops it when the process dies, however it dies. The holder's pid is
    /// written into the file so that a second process can name it.
    static func lockExclusive(_ path: String, directory: String) throws(StorageError) -> Int32 {
        let fd = try open(path, flags: O_RDWR | O_CREAT, mode: 0o600)
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let e = errno
            defer { close(fd) }
            guard e == EWOULDBLOCK else { throw .io(path: path, operation: "flock", errno: e) }
            let text = (try? readAll(path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            let pid = text.split(separator: "\n").first.map(String.init) ?? ""
            throw .locked(directory: directory, holder: pid.isEmpty ? "pid unknown" : "pid \(pid)")
        }
        do {
            try truncate(fd, to: 0, path: path)
            try pwriteAll(fd, Array("\(getpid())\n".utf8), at: 0, path: path)
        } catch { close(fd); throw error }
        return fd
    }

    static func list(_ dir: String) throws(StorageError) -> [String] {
        guard let d = opendir(dir) else { throw .io(path: dir, operation: "opendir", errno: errno) }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func remove(_ path: String) throws(StorageError) {
        guard unlink(path) == 0 || errno == ENOENT else { throw .io(path: path, operation: "unlink", errno: errno) }
    }

    static func rename(_ from: String, _ to: String) throws(StorageError) {
        guard Glibc.rename(from, to) == 0 else { throw .io(path: to, operation: "rename \(from) to", errno: errno) }
    }
}
