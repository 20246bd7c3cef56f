#if canImport(Glibc)
import Glibc
#endif

/// A data directory's small records beside the WAL (kvnode's GROUPS), with the WAL's own file
/// calls: read whole, and replaced so that a crash leaves the old contents or the new.
public enum SmallFile {
    /// The file's bytes; nil when it does not exist. Any other failure throws, naming the path.
    public static func read(_ path: String) throws(StorageError) -> [UInt8]? {
        do { return try FileIO.readAll(path) } catch {
            if case .io(_, "open", ENOENT) = error { return nil }
            throw error
        }
    }

    /// Temp file, fsync, rename, directory fsync.
    public static func replace(_ path: String, with bytes: [UInt8], mode: mode_t = 0o644) throws(StorageError) {
        let temp = path + ".tmp"
        let fd = try FileIO.open(temp, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
        do {
            try FileIO.pwriteAll(fd, bytes, at: 0, path: temp)
            try FileIO.fsync(fd, path: temp)
        } catch { close(fd); throw error }
        close(fd)
        try FileIO.rename(temp, path)
        try FileIO.syncDirectory(FileIO.parentDirectory(path))
    }

    /// The names in a directory, sorted.
    public static func list(_ dir: String) throws(StorageError) -> [String] { try FileIO.list(dir) }
}
