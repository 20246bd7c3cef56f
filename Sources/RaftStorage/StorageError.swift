/// Why the node's storage cannot be used. Each says which file, where, and what to do.
public enum StorageError: Error, CustomStringConvertible, Sendable {
    case io(path: String, operation: String, errno: Int32)
    /// Damage before a WAL's tail, or anything that is not a torn final write: never applied, never
    /// repaired silently.
    case corrupt(path: String, offset: Int, reason: String)
    case gap(reason: String)
    /// Another process holds the data directory's lock.
    case locked(directory: String, holder: String)
    /// The data directory was made for another number of Raft groups, or says so unreadably.
    case layout(String)

    public var description: String {
        switch self {
        case .io(let path, let op, let e):
            return "\(op) \(path): \(String(cString: strerror(e))) (errno \(e))"
        case .corrupt(let path, let offset, let reason):
            return "\(path) is damaged at byte \(offset): \(reason). Refusing to start rather than apply it: "
                + "restore the data directory from a replica or backup, or move it away to rejoin empty"
        case .locked(let directory, let holder):
            return "the data directory \(directory) is in use by another kvnode (\(holder)): two processes on one WAL "
                + "would destroy it. Stop that one first, or give this one its own --data-dir"
        case .layout(let why):
            return why
        case .gap(let reason):
            return "the data directory is incomplete: \(reason). Refusing to start: move it away to rejoin empty"
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
