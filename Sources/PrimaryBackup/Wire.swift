/// The JSON bodies primary-backup mode's processes send each other over HTTP. Storage nodes talk
/// to the coordinator (`/pb/register`, `/pb/beat`, `/pb/synced`, `/pb/relay`, `GET /route/{key}`)
/// and the coordinator to them (`/pb/assign`); nodes of a pair to each other (`/pb/replicate`,
/// `GET /pb/snapshot`). Fields are snake_case, as in the store's API.
public enum PBWire {
    /// A storage node announces itself (at start, and whenever the coordinator says it does not
    /// know it): what it holds, so that a restart is told from a node that merely went silent.
    public struct Register: Codable, Sendable, Equatable {
        public var id: String
        /// This process's own id (a restart has another): a repeated register of the same process
        /// is a beat, not a restart.
        public var incarnation: String
        public var applied_seq: UInt64
        /// The pair's epoch in the last assignment it held (0: none): a new coordinator goes on from the highest.
        public var epoch: UInt64
        public init(id: String, incarnation: String, applied_seq: UInt64, epoch: UInt64) {
            self.id = id; self.incarnation = incarnation; self.applied_seq = applied_seq; self.epoch = epoch
        }
    }

    /// A storage node's heartbeat, with its replication figures (for /status and the coordinator's view).
    public struct Beat: Codable, Sendable, Equatable {
        public var id: String
        public var applied_seq: UInt64
        /// The acting primary's writes not yet confirmed by its standby.
        public var lag_ops: UInt64
        /// The active node's stream to its standby broke off for good (its queue overflowed, or it
        /// wrote while no standby followed): the standby needs a full copy.
        public var needs_full_sync: Bool
        public init(id: String, applied_seq: UInt64, lag_ops: UInt64, needs_full_sync: Bool = false) {
            self.id = id; self.applied_seq = applied_seq; self.lag_ops = lag_ops; self.needs_full_sync = needs_full_sync
        }
    }

    /// The coordinator's answer to a beat or a register: the node's assignment, or that it must register.
    public struct BeatReply: Codable, Sendable, Equatable {
        public var register: Bool
        public var assignment: Assignment?
        public init(register: Bool, assignment: Assignment?) { self.register = register; self.assignment = assignment }
    }

    /// What the coordinator wants of one storage node now. Sent whenever it changes and with every
    /// beat's answer; a node keeps the one of the highest `version` from the coordinator `boot`.
    public struct Assignment: Codable, Sendable, Equatable {
        /// The coordinator process that made it (a restarted coordinator starts its versions over).
        public var boot: String
        public var version: UInt64
        public var pair: Int
        /// The node that serves the pair's keys (nil: nobody).
        public var active: String?
        /// The pair's epoch: one more at each change of its active node.
        public var epoch: UInt64
        /// This node (active) must refuse writes: the coordinator is handing the pair back.
        public var fenced: Bool
        /// This node (active): where its writes go, when it has a standby that follows it.
        public var standby: String?
        /// This node (not active): copy the pair in full from this node, then report `synced`.
        public var sync_from: String?
        /// Numbers the syncs asked of this node: each new one is started once.
        public var sync_id: UInt64
        /// "direct" (to the standby) or "coordinator" (relayed by it, as in the original).
        public var replication_path: String
        /// Each pair's active node, by pair: where to redirect a key of another pair.
        public var routes: [String?]
        public init(boot: String, version: UInt64, pair: Int, active: String?, epoch: UInt64, fenced: Bool, standby: String?,
                    sync_from: String?, sync_id: UInt64, replication_path: String, routes: [String?]) {
            self.boot = boot; self.version = version; self.pair = pair; self.active = active; self.epoch = epoch
            self.fenced = fenced; self.standby = standby; self.sync_from = sync_from; self.sync_id = sync_id; self.replication_path = replication_path
            self.routes = routes
        }
    }

    /// A node's answer to an assignment: where its sequence numbers stand (a fenced node's
    /// `last_seq` is the last write it acknowledged).
    public struct AssignReply: Codable, Sendable, Equatable {
        public var last_seq: UInt64
        public var applied_seq: UInt64
        /// The assignment the node holds after this one (boot and version), and whether it is
        /// fenced under it: a fence's answer counts only from the fence's version on.
        public var boot: String
        public var version: UInt64
        public var fenced: Bool
        public init(last_seq: UInt64, applied_seq: UInt64, boot: String, version: UInt64, fenced: Bool) {
            self.last_seq = last_seq; self.applied_seq = applied_seq; self.boot = boot; self.version = version; self.fenced = fenced
        }
    }

    public struct Op: Codable, Sendable, Equatable {
        public var seq: UInt64
        /// The `KVRequest` bytes, hex.
        public var entry: String
        public var acked_at_ns: Int64
        public init(_ op: ReplicationOp) { seq = op.seq; entry = Hex.encode(op.entry); acked_at_ns = op.ackedAtNs }
        public func decoded() -> ReplicationOp? {
            Hex.decode(entry).map { ReplicationOp(seq: seq, entry: $0, ackedAtNs: acked_at_ns) }
        }
    }

    /// A batch of writes for a pair's standby (`to`: the node it is for; the coordinator relays by it).
    public struct Replicate: Codable, Sendable, Equatable {
        public var pair: Int
        public var from: String
        public var to: String
        public var epoch: UInt64
        public var ops: [Op]
        public init(pair: Int, from: String, to: String, epoch: UInt64, ops: [Op]) {
            self.pair = pair; self.from = from; self.to = to; self.epoch = epoch; self.ops = ops
        }
    }

    /// The standby's answer: everything through `applied_seq` is applied; `missing_from`: a hole
    /// (send again from there; 0 if none).
    public struct ReplicateReply: Codable, Sendable, Equatable {
        public var applied_seq: UInt64
        public var missing_from: UInt64
        public init(applied_seq: UInt64, missing_from: UInt64) { self.applied_seq = applied_seq; self.missing_from = missing_from }
    }

    /// The acting primary's full copy for a returning node (the original's SYNC_ALL): the state
    /// machine's snapshot through `seq`; every later write follows on the replication stream.
    public struct Snapshot: Codable, Sendable, Equatable {
        public var seq: UInt64
        public var state: String
        public init(seq: UInt64, state: String) { self.seq = seq; self.state = state }
    }

    /// A node finished its full copy (or could not).
    public struct Synced: Codable, Sendable, Equatable {
        public var id: String
        public var pair: Int
        /// The assignment's `sync_id` this answers.
        public var sync_id: UInt64
        public var seq: UInt64
        public var ok: Bool
        public init(id: String, pair: Int, sync_id: UInt64, seq: UInt64, ok: Bool) {
            self.id = id; self.pair = pair; self.sync_id = sync_id; self.seq = seq; self.ok = ok
        }
    }

    /// `GET /route/{key}`.
    public struct Route: Codable, Sendable, Equatable {
        public var key: String
        public var pair: Int
        public var active: String?
        public var addr: String?
        public init(key: String, pair: Int, active: String?, addr: String?) { self.key = key; self.pair = pair; self.active = active; self.addr = addr }
    }
}

/// Lower-case hex, for binary entries in JSON bodies.
public enum Hex {
    public static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// nil for an odd length or a character that is not a hex digit.
    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: return c - 48
            case 97...102: return c - 87
            case 65...70: return c - 55
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = value(chars[i]), let lo = value(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
