import SplitMix
import Dispatch
import Synchronization

/// The answer for a history (or one key of it).
public enum Verdict: String, Sendable, Equatable, Codable {
    case linearizable
    case notLinearizable = "not-linearizable"
    /// A limit (time, cache memory) was reached before an answer: never a guess.
    case unknown
}

/// Bounds on one check. Past either, the verdict is `unknown`.
public struct CheckLimits: Sendable {
    /// Wall-clock budget for the whole history, in nanoseconds of the monotonic clock.
    public var timeoutNs: Int64
    /// Bytes the state caches of all keys may hold together (each entry: the set of linearized
    /// operations plus the model state).
    public var cacheBytes: Int
    public init(timeoutNs: Int64 = 30_000_000_000, cacheBytes: Int = 2 << 30) {
        self.timeoutNs = timeoutNs; self.cacheBytes = cacheBytes
    }
}

/// What the search found for one key.
public struct KeyResult: Sendable {
    public var key: String
    public var verdict: Verdict
    public var operations: Int
    /// Why the verdict is unknown, if it is.
    public var limitReached: String?
    /// For a key that is not linearizable: the longest prefix of operations (indices into the
    /// key's operations, in linearization order) that the search could place, and the operation
    /// that could not follow it: its completion came before any order could place it.
    public var longestPrefix: [Int] = []
    public var unplaceable: [Int] = []
}

public struct CheckResult: Sendable {
    public var verdict: Verdict
    public var keys: [KeyResult]
    public var elapsedNs: Int64
}

/// Wing and Gong's search with Lowe's cache of (linearized set, state), as Porcupine does, one
/// key at a time (P-compositionality), keys in parallel. Pure: only the monotonic clock is read,
/// for the time limit.
public enum Checker {
    // Specialized for the models this package ships: unspecialized generic code pays a witness
    // table call and boxing per step (6x slower on etcd_002).
    @_specialize(where M == RegisterModel)
    @_specialize(where M == KVModel)
    public static func check<M: SequentialModel>(_ model: M, _ history: [Operation<M.Input, M.Output>],
                                                 limits: CheckLimits = .init(),
                                                 clock: @escaping @Sendable () -> Int64 = monotonicNanos) -> CheckResult {
        let start = clock()
        var grouped: [String: [Operation<M.Input, M.Output>]] = [:]
        for op in history { grouped[op.key, default: []].append(op) }
        let byKey = grouped
        let keys = byKey.keys.sorted()
        let results = Mutex([KeyResult?](repeating: nil, count: keys.count))
        let budget = SharedBudget(deadline: start + limits.timeoutNs, cacheBytes: limits.cacheBytes, clock: clock)
        // Largest first, so that one big key does not start last.
        let order = keys.indices.sorted { byKey[keys[$0]]!.count > byKey[keys[$1]]!.count }
        DispatchQueue.concurrentPerform(iterations: order.count) { i in
            let k = order[i]
            let r = checkKey(model, keys[k], byKey[keys[k]]!, budget: budget)
            results.withLock { $0[k] = r }
        }
        let all = results.withLock { $0.compactMap { $0 } }
        let verdict: Verdict = all.contains { $0.verdict == .notLinearizable } ? .notLinearizable
            : all.contains { $0.verdict == .unknown } ? .unknown : .linearizable
        return CheckResult(verdict: verdict, keys: all, elapsedNs: clock() - start)
    }

    // MARK: One key

    /// A call or return event in the doubly linked list the search lifts operations out of.
    private struct Event {
        var op: Int
        var isCall: Bool
        var time: Int64
        var prev: Int
        var next: Int
        /// For a call: the index of its return event.
        var match: Int
    }

    @_specialize(where M == RegisterModel)
    @_specialize(where M == KVModel)
    static func checkKey<M: SequentialModel>(_ model: M, _ key: String, _ ops: [Operation<M.Input, M.Output>],
                                             budget: SharedBudget) -> KeyResult {
        var result = KeyResult(key: key, verdict: .linearizable, operations: ops.count)
        // Operations that completed without effect and constrain nothing could be dropped here;
        // an unknown outcome never returns, so it may be placed after everything (or nowhere).
        var raw: [(time: Int64, isCall: Bool, op: Int)] = []
        for (i, op) in ops.enumerated() {
            raw.append((op.invoke, true, i))
            raw.append((op.outcome == .unknown ? Int64.max : (op.complete ?? Int64.max), false, i))
        }
        // By time; at equal times calls first, so that touching operations count as concurrent.
        raw.sort { a, b in a.time != b.time ? a.time < b.time : (a.isCall && !b.isCall) }
        // Index 0 is the head sentinel.
        var events = [Event(op: -1, isCall: false, time: 0, prev: -1, next: raw.isEmpty ? -1 : 1, match: -1)]
        var returnOf = [Int](repeating: -1, count: ops.count)
        for (i, r) in raw.enumerated() {
            events.append(Event(op: r.op, isCall: r.isCall, time: r.time, prev: i, next: i + 2 <= raw.count ? i + 2 : -1, match: -1))
            if !r.isCall { returnOf[r.op] = i + 1 }
        }
        for i in 1..<events.count where events[i].isCall { events[i].match = returnOf[events[i].op] }
        // The search walks and relinks this list millions of times: a plain buffer, without the
        // array's bounds and uniqueness checks (indices are built above and stay in range).
        let list = UnsafeMutableBufferPointer<Event>.allocate(capacity: events.count)
        _ = list.initialize(from: events)
        defer { list.deallocate() }
        return search(model, ops, list, result, budget: budget)
    }

    @_specialize(where M == RegisterModel)
    @_specialize(where M == KVModel)
    private static func search<M: SequentialModel>(_ model: M, _ ops: [Operation<M.Input, M.Output>],
                                                   _ events: UnsafeMutableBufferPointer<Event>, _ initial: KeyResult,
                                                   budget: SharedBudget) -> KeyResult {
        var result = initial

        @inline(__always) func lift(_ call: Int) {
            let ret = events[call].match
            events[events[call].prev].next = events[call].next
            if events[call].next >= 0 { events[events[call].next].prev = events[call].prev }
            events[events[ret].prev].next = events[ret].next
            if events[ret].next >= 0 { events[events[ret].next].prev = events[ret].prev }
        }
        @inline(__always) func unlift(_ call: Int) {
            let ret = events[call].match
            events[events[ret].prev].next = ret
            if events[ret].next >= 0 { events[events[ret].next].prev = ret }
            events[events[call].prev].next = call
            if events[call].next >= 0 { events[events[call].next].prev = call }
        }

        let words = (ops.count + 63) / 64
        // Columns, so that a step copies no String (the key) and touches no reference count.
        let inputs = ops.map(\.input), outputs = ops.map(\.output), outcomes = ops.map(\.outcome)
        var linearized = Bitset(count: ops.count)
        var cache = StateCache<M.State>()
        let entryBytes = words * 8 + MemoryLayout<M.State>.stride + 64
        var calls: [(event: Int, state: M.State)] = []
        var state = model.initial
        var entry = events[0].next
        var steps = 0
        var deepestFailure = -1

        while events[0].next >= 0 {
            steps += 1
            if steps & 0x3FF == 0, let why = budget.exhausted() {
                result.verdict = .unknown
                result.limitReached = why
                return result
            }
            if entry >= 0, events[entry].isCall {
                let o = events[entry].op
                if let next = model.step(state, inputs[o], outputs[o], outcome: outcomes[o]) {
                    // Set the bit in place and look up without copying; copy only what is inserted.
                    linearized.set(events[entry].op)
                    if cache.insert(linearized, next) {
                        if !budget.charge(entryBytes) {
                            result.verdict = .unknown
                            result.limitReached = budget.exhausted() ?? "state cache memory bound reached"
                            return result
                        }
                        calls.append((entry, state))
                        state = next
                        lift(entry)
                        entry = events[0].next
                        continue
                    }
                    linearized.clear(events[entry].op)
                }
                entry = events[entry].next
            } else {
                // A return with its call not yet placed: this order fails here; backtrack. The
                // deepest such failure is the counterexample: the order placed so far, and the
                // operation whose completion no extension of it could precede.
                if calls.count > deepestFailure {
                    deepestFailure = calls.count
                    result.longestPrefix = calls.map { events[$0.event].op }
                    result.unplaceable = entry >= 0 ? [events[entry].op] : []
                }
                if calls.isEmpty {
                    result.verdict = .notLinearizable
                    return result
                }
                let (call, previous) = calls.removeLast()
                state = previous
                linearized.clear(events[call].op)
                unlift(call)
                entry = events[call].next
            }
        }
        return result
    }

}

/// The set of linearized operations, as bits, with a Zobrist hash kept as bits change, so that
/// a cache lookup costs no pass over the words.
struct Bitset: Sendable, Equatable {
    private(set) var words: [UInt64]
    private(set) var hash: UInt64 = 0

    init(count: Int) { words = [UInt64](repeating: 0, count: max(1, (count + 63) / 64)) }

    mutating func set(_ i: Int) {
        words[i >> 6] |= 1 << UInt64(i & 63)
        hash ^= Self.zobrist(i)
    }

    mutating func clear(_ i: Int) {
        words[i >> 6] &= ~(1 << UInt64(i & 63))
        hash ^= Self.zobrist(i)
    }

    func contains(_ i: Int) -> Bool { words[i >> 6] & (1 << UInt64(i & 63)) != 0 }

    static func == (a: Bitset, b: Bitset) -> Bool { a.hash == b.hash && a.words == b.words }

    /// A fixed pseudo-random 64-bit value per operation index (SplitMix64 of the index).
    @inline(__always) static func zobrist(_ i: Int) -> UInt64 {
        SplitMix64.mix(UInt64(truncatingIfNeeded: i) &+ 0x9E37_79B9_7F4A_7C15)
    }
}

/// Lowe's cache: every (linearized set, state) the search has reached. An open-addressing table
/// keyed by the set's Zobrist hash (already uniformly random, so no hashing of its own), each
/// slot heading a chain of the entries with that hash; few states share a set.
struct StateCache<State: Hashable> {
    private var slotHash: [UInt64]
    private var slotHead: [Int32]
    private var bits: [Bitset] = []
    private var states: [State] = []
    private var next: [Int32] = []
    private var used = 0

    init() {
        slotHash = [UInt64](repeating: 0, count: 1024)
        slotHead = [Int32](repeating: -1, count: 1024)
    }

    /// Adds the pair; false if it was there already (that branch was explored before).
    mutating func insert(_ set: Bitset, _ state: State) -> Bool {
        let mask = slotHash.count - 1
        var i = Int(truncatingIfNeeded: set.hash) & mask
        while slotHead[i] >= 0 && slotHash[i] != set.hash { i = (i + 1) & mask }
        var e = slotHead[i]
        while e >= 0 {
            if states[Int(e)] == state && bits[Int(e)] == set { return false }
            e = next[Int(e)]
        }
        if slotHead[i] < 0 {
            slotHash[i] = set.hash
            used += 1
        }
        next.append(slotHead[i])
        slotHead[i] = Int32(bits.count)
        bits.append(set)
        states.append(state)
        if used * 2 > slotHash.count { grow() }
        return true
    }

    private mutating func grow() {
        let oldHash = slotHash, oldHead = slotHead
        slotHash = [UInt64](repeating: 0, count: oldHash.count * 2)
        slotHead = [Int32](repeating: -1, count: oldHash.count * 2)
        let mask = slotHash.count - 1
        for j in 0..<oldHash.count where oldHead[j] >= 0 {
            var i = Int(truncatingIfNeeded: oldHash[j]) & mask
            while slotHead[i] >= 0 { i = (i + 1) & mask }
            slotHash[i] = oldHash[j]
            slotHead[i] = oldHead[j]
        }
    }
}

/// The time and memory every key's search draws on, shared across the parallel searches.
final class SharedBudget: Sendable {
    private let deadline: Int64
    private let cacheBytes: Int
    private let used = Atomic<Int>(0)
    private let clock: @Sendable () -> Int64

    init(deadline: Int64, cacheBytes: Int, clock: @escaping @Sendable () -> Int64) {
        self.deadline = deadline; self.cacheBytes = cacheBytes; self.clock = clock
    }

    /// Why the search must stop, or nil.
    func exhausted() -> String? {
        if clock() >= deadline { return "time limit reached" }
        if used.load(ordering: .relaxed) > cacheBytes { return "state cache memory bound (\(cacheBytes >> 20) MiB) reached" }
        return nil
    }

    /// Counts `bytes` more of cache; false once over the bound.
    func charge(_ bytes: Int) -> Bool { used.add(bytes, ordering: .relaxed).newValue <= cacheBytes }
}

/// CLOCK_MONOTONIC in nanoseconds.
@Sendable public func monotonicNanos() -> Int64 {
    Int64(bitPattern: DispatchTime.now().uptimeNanoseconds)
}
