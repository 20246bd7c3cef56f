/// Where each Raft group keeps its snapshots (the WAL is the node's, shared by its groups): group
/// 0 in the data directory itself (so a one-group store is laid out as before groups existed),
/// group g in `group-g` inside it. The data directory says how many groups it holds in `GROUPS`:
/// keys are spread over the groups by their count, so a node started with another count would not
/// find them, and is refused.
public enum GroupLayout {
    public static func directory(_ dataDir: String, group: Int) -> String { group == 0 ? dataDir : dataDir + "/group-\(group)" }

    /// Checks `groups` against what `dataDir` holds, then records it if it was not recorded. Call
    /// with the data directory locked, before any group's directory is made. Refused: another recorded count; a GROUPS
    /// that cannot be read or does not hold a number (only its absence means "not recorded": a
    /// directory with data and no GROUPS predates groups, and holds 1); and a `group-N` directory
    /// that this count would leave out. A recorded count is never rewritten.
    public static func claim(_ dataDir: String, groups: Int, groupZeroHasData: Bool) throws(StorageError) {
        let path = dataDir + "/GROUPS"
        let recorded: Int?
        let state = readCount(path)
        switch state {
        case .absent: recorded = groupZeroHasData ? 1 : nil
        case .count(let n): recorded = n
        case .unreadable(let why):
            throw .layout("cannot read \(path) (\(why)): it says how many Raft groups \(dataDir) holds, and keys map "
                          + "to groups by that count. Restore it (one line, the count), or give the node an empty data directory")
        }
        if let recorded, recorded != groups {
            throw .layout("\(dataDir) holds \(recorded) Raft group\(recorded == 1 ? "" : "s") and this node was started "
                          + "with \(groups): keys map to groups by their count, so the data would not be found. Start it with "
                          + "--groups \(recorded) (or [cluster] groups = \(recorded)), or give it an empty data directory")
        }
        if let stray = try groupDirectories(dataDir).filter({ $0 >= groups }).min() {
            throw .layout("\(dataDir) has \(directory(dataDir, group: stray)), data of a group this node would not run "
                          + "with --groups \(groups): start it with the count it was made with, or give it an empty data directory")
        }
        if case .absent = state { try writeCount(groups, to: path) }
    }

    private enum Recorded { case absent, count(Int), unreadable(String) }

    private static func readCount(_ path: String) -> Recorded {
        let bytes: [UInt8]?
        do { bytes = try SmallFile.read(path) } catch { return .unreadable("\(error)") }
        guard let bytes else { return .absent }
        let words = String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isWhitespace)
        guard words.count == 1, let count = Int(words[0]), count >= 1 else {
            return .unreadable("it holds '\(words.prefix(4).joined(separator: " "))', not a count")
        }
        return .count(count)
    }

    /// The N of every `group-N` directory in `dataDir`.
    private static func groupDirectories(_ dataDir: String) throws(StorageError) -> [Int] {
        try SmallFile.list(dataDir).compactMap { $0.hasPrefix("group-") ? Int($0.dropFirst(6)) : nil }
    }

    /// A crash leaves no count or the whole count, never a torn one.
    private static func writeCount(_ groups: Int, to path: String) throws(StorageError) {
        try SmallFile.replace(path, with: Array("\(groups)\n".utf8))
    }
}
