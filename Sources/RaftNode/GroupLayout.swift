import RaftStorage
#if canImport(Glibc)
import Glibc
#endif

/// Where each Raft group keeps its WAL and snapshots: group 0 in the data directory itself (so a
/// one-group store is laid out as before groups existed), group g in `group-g` inside it. The data
/// directory says how many groups it holds in `GROUPS`: keys are spread over the groups by their
/// count, so a node started with another count would not find them, and is refused.
enum GroupLayout {
    static func directory(_ dataDir: String, group: Int) -> String { group == 0 ? dataDir : dataDir + "/group-\(group)" }

    struct Mismatch: Error, CustomStringConvertible {
        var description: String
    }

    /// Checks `groups` against what `dataDir` holds (its GROUPS file; without one, a directory with
    /// data holds 1 group), then records it. Call with the data directory locked (group 0 open).
    static func claim(_ dataDir: String, groups: Int, groupZeroHasData: Bool) throws {
        let path = dataDir + "/GROUPS"
        let recorded = readCount(path) ?? (groupZeroHasData ? 1 : nil)
        if let recorded, recorded != groups {
            throw Mismatch(description: "\(dataDir) holds \(recorded) Raft group\(recorded == 1 ? "" : "s") and this node was started "
                           + "with \(groups): keys map to groups by their count, so the data would not be found. Start it with "
                           + "--groups \(recorded) (or [cluster] groups = \(recorded)), or give it an empty data directory")
        }
        guard readCount(path) == nil else { return }
        try writeCount(groups, to: path)
    }

    private static func readCount(_ path: String) -> Int? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = read(fd, &buffer, buffer.count)
        guard n > 0 else { return nil }
        return Int(String(decoding: buffer[0..<n], as: UTF8.self).trimmingWhitespace)
    }

    /// Written to a temp file, synced, renamed, and the directory synced: a crash leaves the old
    /// state or the new, never a torn count.
    private static func writeCount(_ groups: Int, to path: String) throws {
        let temp = path + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Mismatch(description: "cannot create \(temp): \(String(cString: strerror(errno)))") }
        let bytes = Array("\(groups)\n".utf8)
        let ok = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count && fsync(fd) == 0
        close(fd)
        guard ok, rename(temp, path) == 0 else { throw Mismatch(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
        let dir = open(String(path[..<path.lastIndex(of: "/")!]), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 { fsync(dir); close(dir) }
    }
}

private extension String {
    var trimmingWhitespace: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
