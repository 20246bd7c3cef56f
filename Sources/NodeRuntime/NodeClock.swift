import Core
import Timing

/// The node's timing thread. It sends each heartbeat at its slot, and the slots are at a fixed
/// rate: a late beat does not push later ones back, so the gap between beats stays I. It also
/// declares peers dead at their deadlines. It sleeps until `timerSpinUs` before the next thing
/// due, plans again (a heartbeat may have moved a deadline meanwhile), and spins only when that
/// thing is still due within the spin window, so each action is on time.
enum NodeClock {
    static func start(node: HeartbeatNode, sender: HeartbeatSender?) {
        // The sender moves to the timing thread and is used only there.
        nonisolated(unsafe) let sender = sender
        startDetachedThread {
            PreciseClock.tightenTimerSlack()
            run(node: node, sender: sender)
        }
    }

    private static func run(node: HeartbeatNode, sender: HeartbeatSender?) {
        let interval = Int64(node.options.hbIntervalMs) * 1_000_000
        // Never spin for more than half an interval: the thread would spin all the time.
        let spinNs = min(Int64(node.options.timerSpinUs) * 1000, interval / 2)
        var beats = FixedRateSlots(start: monotonicNow(), intervalNs: interval)
        var retryAt = MonotonicNanos.max  // a beat owed to a connection still being set up
        var retryDelay: Int64 = 1_000_000
        // A node with a log file records there how many beats it sent each second.
        var statsAt = node.options.logPath != nil && sender != nil ? monotonicNow() + 1_000_000_000 : MonotonicNanos.max
        while true {
            let deadline = node.earliestDeadline ?? .max
            let due = min(sender == nil ? .max : beats.next, deadline, retryAt, statsAt)
            if due - spinNs > monotonicNow() {
                node.waiter.sleep(until: due - spinNs)
                continue
            }
            PreciseClock.spin(until: due)
            let now = monotonicNow()
            if now >= deadline { node.expireDue(at: now) }
            if let sender, now >= statsAt {
                node.recordHeartbeatsSent(sender.takeSentCount())
                statsAt += 1_000_000_000
            }
            if let sender, now >= retryAt {
                sender.retry()
                retryAt = .max
            }
            if let sender, now >= beats.next {
                sender.beat(node.nextHeartbeatLine())
                beats.served(at: now)
                retryDelay = 1_000_000
            }
            // Loopback connects finish in microseconds: look again after 1, 2, 4, 8, 16 ms, then
            // leave it to the next beat (a host that drops SYNs must not keep the thread busy).
            if let sender, retryAt == .max, sender.owesBeats, retryDelay <= 16_000_000, now + retryDelay < beats.next {
                retryAt = now + retryDelay
                retryDelay *= 2
            }
        }
    }
}
