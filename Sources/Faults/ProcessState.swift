#if canImport(Glibc)
import Glibc
#endif

/// Process state letter from /proc/PID/stat ("R", "S", "T", "Z", ...), nil if gone.
func processState(_ pid: Int32) -> Character? {
    guard let f = fopen("/proc/\(pid)/stat", "r") else { return nil }
    defer { fclose(f) }
    var buffer = [CChar](repeating: 0, count: 512)
    guard fgets(&buffer, Int32(buffer.count), f) != nil else { return nil }
    let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    // The command name is in parentheses and may contain spaces: the state follows the last ')'.
    guard let close = line.lastIndex(of: ")") else { return nil }
    return line[line.index(after: close)...].first { $0 != " " }
}
