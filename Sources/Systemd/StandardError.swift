#if canImport(Glibc)
import Glibc
#endif

/// Writes a line to standard error with one write(2): safe from any thread, no shared FILE*.
public func writeStderr(_ line: String) {
    let bytes = Array((line.hasSuffix("\n") ? line : line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
