import CLinux
import Core
import Events
import Systemd
import Varlink
#if canImport(Glibc)
import Glibc
#endif

/// Who may use the control socket, and how many at once: root and the daemon's own uid always
/// (with connections of their own past the cap), members of `socket_group` besides. Building the
/// rules also raises the open-file limit the connection cap needs, and logs if it cannot.
enum ControlSocketRules {
    static func serverConfig(_ config: ClusterConfig, socket: String, hub: EventHub) -> VarlinkServerConfig {
        var serverConfig = VarlinkServerConfig(socketPath: socket)
        serverConfig.listenFD = ListenFDs.take().first
        serverConfig.version = kvsupervisorVersion
        serverConfig.url = "https://github.com/kvsupervisor/kvsupervisor"
        serverConfig.interfaces = [InterfaceDescription.name: InterfaceDescription.text]
        serverConfig.permissionDeniedError = "io.kvsupervisor.PermissionDenied"
        let allowedGroup: gid_t? = config.socketGroup.flatMap { name in getgrnam(name).map { $0.pointee.gr_gid } }
        if let name = config.socketGroup, allowedGroup == nil {
            hub.log("socket_group '\(name)' does not exist: only root and uid \(geteuid()) may connect", priority: 4)
        }
        serverConfig.socketGroupID = allowedGroup
        let ownUID = geteuid()
        serverConfig.isPrivileged = { $0 == 0 || $0 == ownUID }
        // 4096 connections plus node pipes, notify sockets and proxies need more than the usual soft 1024.
        let nofile = kv_raise_nofile(65536)
        if nofile >= 0, nofile < serverConfig.limits.maxTotal + 512 {
            hub.log("open-file limit is \(nofile): the control socket's \(serverConfig.limits.maxTotal) connections may "
                    + "not all fit; raise LimitNOFILE=", priority: 4)
        }
        serverConfig.isAllowed = { peer in
            if peer.uid == 0 || peer.uid == ownUID { return true }
            guard let gid = allowedGroup else { return false }
            return peer.gid == gid || kv_user_in_group(peer.uid, gid) == 1
        }
        return serverConfig
    }
}
