import CLinux
import Core
#if canImport(Glibc)
import Glibc
#endif

/// Outbound heartbeat connections, owned by the node's timing thread: plain non-blocking sockets,
/// so a beat leaves at its slot instead of when an event loop next wakes up (1–2 ms late at p99 on
/// an idle vCPU). A cluster peer dials every peer and re-dials once per beat while one is down;
/// the seed's monitored role answers every connection accepted on its listener.
/// Nothing here blocks: a connect completes across beats, and a full send buffer skips a beat.
final class HeartbeatSender {
    private enum Link {
        case down
        case connecting(Int32, since: MonotonicNanos)
        case up(Int32)
    }
    /// A connect to a host that drops SYNs would otherwise wait for the kernel's two-minute
    /// timeout; start again so the peer is reached soon after it is back.
    static let connectTimeoutNs: Int64 = 1_000_000_000
    private var dialed: [(peer: PeerAddress, link: Link, owesBeat: Bool)]
    private let listenFD: Int32?
    private var accepted: [Int32] = []
    private var lastBeat: [UInt8] = []
    /// Heartbeat lines written whole, on any connection, since `takeSentCount`.
    private var sent = 0

    init(dialing peers: [PeerAddress], listenFD: Int32?) {
        dialed = peers.map { ($0, .down, false) }
        self.listenFD = listenFD
    }

    /// Sends `line` on every open connection, after bringing connections up to date.
    func beat(_ line: String) {
        lastBeat = Array(line.utf8)
        for i in dialed.indices {
            dialed[i].link = advance(dialed[i].link, to: dialed[i].peer)
            dialed[i].owesBeat = true
            deliver(i)
        }
        acceptWaiting()
        accepted.removeAll { fd in
            let dead = kv_tcp_peer_closed(fd) == 1 || !send(lastBeat, on: fd)
            if dead { close(fd) }
            return dead
        }
    }

    /// How many lines went out since the last call.
    func takeSentCount() -> Int {
        defer { sent = 0 }
        return sent
    }

    /// A connect still in progress when its beat was due: the beat goes out as soon as it
    /// completes (`retry`), instead of a whole interval later. Matters at start and after a restart.
    var owesBeats: Bool { dialed.contains { $0.owesBeat } }

    /// Sends the last beat on connections that have come up since it was due.
    func retry() {
        for i in dialed.indices where dialed[i].owesBeat {
            if case .connecting = dialed[i].link { dialed[i].link = advance(dialed[i].link, to: dialed[i].peer) }
            deliver(i)
        }
    }

    private func deliver(_ i: Int) {
        switch dialed[i].link {
        case .up(let fd):
            dialed[i].owesBeat = false
            if !send(lastBeat, on: fd) {
                close(fd)
                dialed[i].link = .down
            }
        case .connecting:
            break  // still owed
        case .down:
            dialed[i].owesBeat = false  // nobody to owe it to until the next dial
        }
    }

    private func advance(_ link: Link, to peer: PeerAddress) -> Link {
        switch link {
        case .down:
            let fd = kv_tcp_connect_start(peer.host, Int32(peer.port))
            return fd >= 0 ? settle(fd, since: monotonicNow()) : .down
        case .connecting(let fd, let since):
            if monotonicNow() - since > Self.connectTimeoutNs {
                close(fd)
                return advance(.down, to: peer)
            }
            return settle(fd, since: since)
        case .up(let fd):
            if kv_tcp_peer_closed(fd) == 1 {
                close(fd)
                return advance(.down, to: peer)  // the far end went away: dial again now
            }
            return link
        }
    }

    private func settle(_ fd: Int32, since: MonotonicNanos) -> Link {
        switch kv_tcp_connect_result(fd) {
        case 1: return .up(fd)
        case 0: return .connecting(fd, since: since)
        default:
            close(fd)
            return .down
        }
    }

    private func acceptWaiting() {
        guard let listenFD else { return }
        while true {
            let fd = kv_tcp_accept(listenFD)
            guard fd >= 0 else { return }
            accepted.append(fd)
        }
    }

    /// False when the connection must be dropped. A full buffer (the peer is stopped) only skips
    /// this beat; a partial write would split a line, so it drops the connection.
    private func send(_ bytes: [UInt8], on fd: Int32) -> Bool {
        let n = bytes.withUnsafeBytes { kv_tcp_send(fd, $0.baseAddress, $0.count) }
        if n == bytes.count { sent += 1; return true }
        return n == -Int(EAGAIN) || n == -Int(EWOULDBLOCK)
    }
}
