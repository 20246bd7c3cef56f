/// Who may hold how many control connections. A client that opens connections and sends nothing
/// must not lock anyone else out: each uid has its own share, and root and the daemon's own uid
/// keep a reserve past the total (as sd-varlink: 4096 connections, 1024 per uid).
public struct ConnectionLimits: Sendable, Equatable {
    public var maxTotal = 4096
    public var maxPerUID = 1024
    /// Extra connections only privileged uids may use once `maxTotal` is reached.
    public var privilegedReserve = 64

    public init() {}
    public init(maxTotal: Int, maxPerUID: Int, privilegedReserve: Int) {
        self.maxTotal = maxTotal; self.maxPerUID = maxPerUID; self.privilegedReserve = privilegedReserve
    }
}

/// The open connections per uid, and the admission rule. Pure: the server keeps one in a Mutex.
public struct ConnectionCounts: Sendable {
    public enum Refusal: Sendable, Equatable, CustomStringConvertible {
        case tooManyForUID(uid: UInt32, limit: Int)
        case tooManyInTotal(limit: Int)

        public var description: String {
            switch self {
            case .tooManyForUID(let uid, let limit):
                return "uid \(uid) already has \(limit) connections open (the limit per user); close some and retry"
            case .tooManyInTotal(let limit):
                return "the server has \(limit) connections open (its limit); retry later"
            }
        }
    }

    public let limits: ConnectionLimits
    private let isPrivileged: @Sendable (UInt32) -> Bool
    private var byUID: [UInt32: Int] = [:]
    public private(set) var total = 0

    public init(limits: ConnectionLimits, isPrivileged: @escaping @Sendable (UInt32) -> Bool) {
        self.limits = limits
        self.isPrivileged = isPrivileged
    }

    /// Counts the connection in, or says why not. Every admitted connection is `release`d once.
    public mutating func admit(uid: UInt32) -> Refusal? {
        let privileged = isPrivileged(uid)
        let mine = byUID[uid, default: 0]
        if !privileged {
            if mine >= limits.maxPerUID { return .tooManyForUID(uid: uid, limit: limits.maxPerUID) }
            if total >= limits.maxTotal { return .tooManyInTotal(limit: limits.maxTotal) }
        } else if total >= limits.maxTotal + limits.privilegedReserve {
            return .tooManyInTotal(limit: limits.maxTotal + limits.privilegedReserve)
        }
        byUID[uid] = mine + 1
        total += 1
        return nil
    }

    public mutating func release(uid: UInt32) {
        guard let n = byUID[uid] else { return }
        byUID[uid] = n > 1 ? n - 1 : nil
        total -= 1
    }

    public func count(uid: UInt32) -> Int { byUID[uid, default: 0] }
}
