import CSystemd

/// Sockets passed by systemd socket activation (LISTEN_FDS), as sd_listen_fds(3) reports them.
public enum ListenFDs {
    /// File descriptors starting at SD_LISTEN_FDS_START; empty when not socket-activated.
    /// Unsets the LISTEN_* variables so children do not inherit them.
    public static func take() -> [Int32] {
        let n = sd_listen_fds(1)
        guard n > 0 else { return [] }
        return (0..<n).map { 3 + $0 }
    }

    public static func isUnixStreamSocket(_ fd: Int32) -> Bool {
        sd_is_socket_unix(fd, 1 /* SOCK_STREAM */, 1, nil, 0) > 0
    }
}
