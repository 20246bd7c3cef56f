import CSystemd
#if canImport(Glibc)
import Glibc
#endif

/// Structured journal entries through sd_journal_sendv (the variadic sd_journal_send does not import).
public enum Journal {
    /// True when the journal's socket exists: otherwise callers log to stderr.
    public static var isAvailable: Bool {
        access("/run/systemd/journal/socket", F_OK) == 0
    }

    /// Sends one entry. `fields` are (NAME, value) pairs; names must be uppercase journal field names.
    @discardableResult
    public static func send(message: String, priority: Int, fields: [(String, String)]) -> Bool {
        var all: [String] = ["MESSAGE=\(message)", "PRIORITY=\(priority)"]
        for (name, value) in fields { all.append("\(name)=\(value)") }
        // Keep each field's bytes alive while sd_journal_sendv reads them.
        let buffers = all.map { Array($0.utf8) }
        var iovecs: [iovec] = []
        iovecs.reserveCapacity(buffers.count)
        return withPinned(buffers, index: 0, iovecs: &iovecs)
    }

    private static func withPinned(_ buffers: [[UInt8]], index: Int, iovecs: inout [iovec]) -> Bool {
        if index == buffers.count {
            return iovecs.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) } == 0
        }
        return buffers[index].withUnsafeBytes { raw in
            iovecs.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress), iov_len: raw.count))
            return withPinned(buffers, index: index + 1, iovecs: &iovecs)
        }
    }
}
