import Core
import CLinux
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// Heartbeat failure detection, the part both runtimes run: a listener on the node's (peer) port,
/// the sender and the timing thread. Raft mode passes its protocol as the port's guest.
public enum HeartbeatDetection {
    /// Starts listening, sending and watching; returns once the detector is armed (every peer
    /// heard once, or one timeout plus one interval passed), with what READY's STATUS= says of it.
    /// `onVerdict` hears each verdict, dead or alive again (raft mode passes them to Raft).
    public static func start(_ options: NodeOptions, output: EventOutput, guest: PeerPortGuest? = nil,
                             onVerdict: (@Sendable (NodeID, _ alive: Bool) -> Void)? = nil) throws -> String {
        let node = HeartbeatNode(options: options, output: output, onVerdict: onVerdict)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        // The seed's monitored node only answers connections with beats: its listener belongs to
        // the sender. Every other role reads heartbeats on an event-loop listener.
        let monitoredListener: Int32? = options.role == .monitored ? try Self.listenForBeats(options) : nil
        let listening: EventLoopFuture<Void> = options.role == .monitored
            ? loop.makeSucceededVoidFuture()
            : loop.flatSubmit { HeartbeatNetwork(node: node, loop: loop, guest: guest).start().map { _ in } }
        let startup: EventLoopFuture<Bool> = listening.flatMap {
            NodeClock.start(node: node, sender: options.role == .detector ? nil
                : HeartbeatSender(dialing: options.role == .peer ? options.peers : [], listenFD: monitoredListener))
            let armed = loop.makePromise(of: Bool.self)  // true: every peer heard
            let giveUp = loop.scheduleTask(in: .milliseconds(Int64(options.hbTimeoutMs + options.hbIntervalMs))) {
                node.fireArmed()
            }
            node.whenArmed {
                giveUp.cancel()
                armed.succeed(node.isArmed)
            }
            return armed.futureResult
        }
        let allPeersHeard: Bool
        do {
            allPeersHeard = try startup.wait()
        } catch {
            throw NodeError.cannotListen(host: options.host, port: options.port, reason: "\(error)")
        }
        return "listening on \(options.host):\(options.port), "
            + (allPeersHeard ? "all \(options.peers.count) peer(s) heard" : "not every peer heard yet")
    }

    private static func listenForBeats(_ options: NodeOptions) throws -> Int32 {
        let fd = kv_tcp_listen(options.host, Int32(options.port))
        guard fd >= 0 else {
            throw NodeError.cannotListen(host: options.host, port: options.port, reason: String(cString: strerror(-fd)))
        }
        return fd
    }
}

/// Heartbeat mode: the detection part alone.
public enum HeartbeatNodeMain {
    public static func run(_ options: NodeOptions) -> Never {
        let output = NodeProcess.begin(options)
        let status: String
        do { status = try HeartbeatDetection.start(options, output: output) } catch { NodeProcess.fail(options, "\(error)") }
        NodeProcess.serve(status: status)
    }
}
