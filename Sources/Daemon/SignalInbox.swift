import CLinux
import Timing
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's signals, caught from the first instant of `main`: a handler writes each signal's
/// number to a pipe, so a signal that arrives while the nodes are starting waits there instead of
/// killing the process by its default action (SIGHUP's is to terminate).
public final class SignalInbox: Sendable {
    /// SIGUSR2 is taken too, so that it never kills the daemon; it does something only with
    /// KVSUPERVISOR_TEST_HOOKS=1 (see `SignalRouter`).
    public static let handled: [Int32] = [SIGHUP, SIGTERM, SIGINT, SIGUSR2]
    private let readFD: Int32

    private init(readFD: Int32) { self.readFD = readFD }

    /// Installs the handlers; nil if that failed (the caller says so and goes on with the defaults).
    public static func install() -> SignalInbox? {
        let fd = handled.withUnsafeBufferPointer { kv_signal_pipe($0.baseAddress, Int32($0.count)) }
        return fd >= 0 ? SignalInbox(readFD: fd) : nil
    }

    /// The signals in arrival order, from a thread that blocks on the pipe. Bounded: the pipe
    /// holds what the stream has not taken (64 KiB, and the handler drops bytes past that).
    public func signals() -> AsyncStream<Int32> {
        let (stream, sink) = AsyncStream.makeStream(of: Int32.self, bufferingPolicy: .bufferingOldest(64))
        let fd = readFD
        startDetachedThread {
            var byte: UInt8 = 0
            while true {
                let n = read(fd, &byte, 1)
                if n == 1 { sink.yield(Int32(byte)); continue }
                if n < 0 && errno == EINTR { continue }
                sink.finish()
                return
            }
        }
        return stream
    }
}
