import Core
import Synchronization

/// What a link proxy currently does to the bytes passing through it.
public struct LinkFault: Sendable, Equatable {
    public var delayNs: Int64 = 0
    public var jitterNs: Int64 = 0
    public var dropping = false
    public static let none = LinkFault()
    public var isActive: Bool { dropping || delayNs > 0 }
}

/// The fault state of one link, shared between the proxy's event loop and the fault executor.
/// `onFirstEffect` fires once, on the first chunk held or dropped after a fault is set.
final class LinkControl: Sendable {
    private struct State {
        var fault = LinkFault.none
        var onFirstEffect: (@Sendable (Stamp) -> Void)?
    }
    private let state = Mutex(State())

    func set(_ fault: LinkFault, onFirstEffect: (@Sendable (Stamp) -> Void)?) {
        state.withLock { $0 = State(fault: fault, onFirstEffect: onFirstEffect) }
    }

    var current: LinkFault { state.withLock { $0.fault } }

    /// Called by the proxy for each chunk: the fault to apply to it, reporting the first effect.
    func faultForChunk() -> LinkFault {
        let (fault, callback) = state.withLock { s -> (LinkFault, (@Sendable (Stamp) -> Void)?) in
            guard s.fault.isActive, let cb = s.onFirstEffect else { return (s.fault, nil) }
            s.onFirstEffect = nil
            return (s.fault, cb)
        }
        callback?(Stamp.now())
        return fault
    }
}
