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

    /// Checks `groups` against what `dataDir` holds, then records it if it was not recorded. Call
    /// with the data directory locked (group 0 open). Refused: another recorded count; a GROUPS
    /// that cannot be read or does not hold a number (only its absence means "not recorded": a
    /// directory with data and no GROUPS predates groups, and holds 1); and a `group-N` directory
    /// that this count would leave out. A recorded count is never rewritten.
    static func claim(_ dataDir: String, groups: Int, groupZeroHasData: Bool) throws {
        let path = dataDir + "/GROUPS"
        let recorded: Int?
        let state = readCount(path)
        switch state {
        case .absent: recorded = groupZeroHasData ? 1 : nil
        case .count(let n): recorded = n
        case .unreadable(let why):
            throw Mismatch(description: "cannot read \(path) (\(why)): it says how many Raft groups \(dataDir) holds, and keys map "
                           + "to groups by that count. Restore it (one line, the count), or give the node an empty data directory")
        }
        if let recorded, recorded != groups {
            throw Mismatch(description: "\(dataDir) holds \(recorded) Raft group\(recorded == 1 ? "" : "s") and this node was started "
                           + "with \(groups): keys map to groups by their count, so the data would not be found. Start it with "
                           + "--groups \(recorded) (or [cluster] groups = \(recorded)), or give it an empty data directory")
        }
        if let stray = groupDirectories(dataDir).filter({ $0 >= groups }).min() {
            throw Mismatch(description: "\(dataDir) has \(directory(dataDir, group: stray)), data of a group this node would not run "
                           + "with --groups \(groups): start it with the count it was made with, or give it an empty data directory")
        }
        if case .absent = state { try writeCount(groups, to: path) }
    }

    private enum Recorded { case absent, count(Int), unreadable(String) }

    private static func readCount(_ path: String) -> Recorded {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno == ENOENT ? .absent : .unreadable(String(cString: strerror(errno))) }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = read(fd, &buffer, buffer.count)
        guard n >= 0 else { return .unreadable(String(cString: strerror(errno))) }
        let text = String(decoding: buffer[0..<n], as: UTF8.self).trimmingWhitespace
        guard let count = Int(text), count >= 1 else { return .unreadable("it holds '\(text)', not a count") }
        return .count(count)
    }

    /// The N of every `group-N` directory in `dataDir`.
    private static func groupDirectories(_ dataDir: String) -> [Int] {
        guard let d = opendir(dataDir) else { return [] }
        defer { closedir(d) }
        var out: [Int] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix("group-"), let n = Int(name.dropFirst(6)) { out.append(n) }
        }
        return out
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
