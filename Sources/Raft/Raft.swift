import SplitMix
/// One replica's consensus state machine, pure: no clock (it counts `tick()`s), no disk, no
/// network, no randomness of its own (a seed in the config). Inputs: `tick`, `step`, `propose`,
/// `campaign`, `readIndex`, `transferLeadership`, `compact`. Output: `ready()` hands back what to
/// persist, send and apply, in that order, and `advance` is told it was done (etcd-io/raft's
/// raft.go and rawnode.go in one value).
/// Parts: leader election with randomized timeouts in [E, 2E), pre-vote, check-quorum and a leader
/// lease; log replication with conflict hints and bounded in-flight appends; the current-term
/// commit rule; ReadIndex; snapshots with compaction and InstallSnapshot; leadership transfer.
public struct Raft: Sendable {
    public struct Config: Sendable {
        public var id: ReplicaID
        /// Every voter, this replica included.
        public var voters: [ReplicaID]
        /// The election timeout: a follower campaigns after a random number of ticks in
        /// [electionTicks, maxElectionTicks) without hearing from a leader; also the leader lease
        /// and the check-quorum period.
        public var electionTicks = 10
        /// nil: 2 x electionTicks, as etcd.
        public var maxElectionTicks: Int?
        public var heartbeatTicks = 1
        public var preVote = true
        public var checkQuorum = true
        /// Appends with entries in flight to one follower at most (flow control).
        public var maxInflight = 64
        public var maxEntriesPerAppend = 64
        /// An append carries at most this many bytes of entries (one larger entry goes alone), so
        /// that a message stays far below any frame or memory limit (etcd's MaxSizePerMsg, 1 MiB).
        public var maxBytesPerAppend = 1 << 20
        /// A leader refuses proposals while its uncommitted entries hold more than this (etcd's
        /// MaxUncommittedEntriesSize): without a quorum, the log would otherwise grow until memory
        /// runs out.
        public var maxUncommittedBytes = 64 << 20
        /// Ticks a leader waits for a follower to answer a snapshot before it sends it again (nil:
        /// an election timeout). A node that streams large snapshots sets it long and reports a
        /// failed stream with `reportSnapshot`, so a slow transfer is not started over and over.
        public var snapshotWaitTicks: Int?
        public var seed: UInt64 = 1
        #if RAFT_PLANTED_BUGS
        /// Only in a test build (-DRAFT_PLANTED_BUGS): a known bug, to show the simulation finds it.
        public var plantedBug: PlantedBug?
        #endif

        public init(id: ReplicaID, voters: [ReplicaID]) { self.id = id; self.voters = voters }
    }

    #if RAFT_PLANTED_BUGS
    public enum PlantedBug: String, Sendable, CaseIterable {
        /// Commit an entry of an earlier term by counting replicas (Raft Figure 8).
        case commitPreviousTerm
        /// Answer a vote before it is persisted: a restart forgets it and may vote twice in a term.
        case voteWithoutPersisting
        /// Accept an append without checking the previous entry's term.
        case appendWithoutPrevCheck
        /// Not in the core but in the node around it (the simulator plays that part): give a write
        /// with no client id the session "~<replica>-<counter>", seq 1, with a counter that restarts
        /// with the process, so that after a restart new writes are taken for retries of old ones.
        case anonymousCounter
        /// A leader that keeps a proposal until its next heartbeat before sending it, while the
        /// node around it answers the write at once (`kvnode` with KV_PLANTED_BUG=ackOnPropose):
        /// the window in which an acknowledged write lives on the leader alone, for the failover
        /// experiment to find.
        case ackOnPropose
    }

    private func planted(_ bug: PlantedBug) -> Bool { config.plantedBug == bug }
    #endif

    /// What the leader knows of one follower (Raft §5.3: nextIndex, matchIndex).
    struct Progress: Sendable {
        var match: LogIndex = 0
        var next: LogIndex
        var inflight = 0
        /// Heard from since the last check-quorum round.
        var recentActive = false
        /// The tick of its latest answer (`ticks`), for `isCaughtUp`: recentActive is cleared
        /// every check-quorum period, so it says "not heard" for a moment after each.
        var heardAtTick: UInt64 = 0
        /// The latest ReadIndex round this follower has answered in this term.
        var ackedRound: UInt64 = 0
        /// A snapshot sent and not yet answered (etcd's StateSnapshot): no entries and no second
        /// copy until the follower answers it or an election timeout passes (`snapshotWait` ticks).
        var snapshotSent: (index: LogIndex, term: Term)?
        var snapshotWait = 0
    }

    /// A ReadIndex request waiting for a quorum to answer a heartbeat of `round` (or a later one).
    struct PendingRead: Sendable { var context: UInt64; var index: LogIndex; var round: UInt64 }

    public let config: Config
    public private(set) var role: Role = .follower
    public private(set) var term: Term = 0
    public private(set) var vote: ReplicaID?
    public private(set) var leader: ReplicaID?
    /// The leader this replica forgot (its connection closed, or the detector suspects it), and in
    /// which term: a vote given to it does not stop `refusedABehindLog` from campaigning.
    private var forgottenLeader: (id: ReplicaID, term: Term)?
    /// A peer the detector declared dead and has not declared alive since: a verdict ignored
    /// because the leader was heard moments before is acted on once two heartbeats pass in silence
    /// (the detector does not repeat it).
    private var suspectedPeer: ReplicaID?
    public private(set) var log = RaftLog()

    private var electionElapsed = 0
    private var heartbeatElapsed = 0
    private var randomizedTimeout = 0
    private var votes: [ReplicaID: Bool] = [:]
    /// Ticks since this value was made, from 1: a `heardAtTick` of 0 means never heard.
    private var ticks: UInt64 = 1
    private var progress: [ReplicaID: Progress] = [:]
    private var outbox: [Message] = []
    private var persisted = HardState()
    private var rng: UInt64
    /// What happened, for traces: role changes and refusals (drained by `takeTrace`).
    private var trace: [String] = []
    /// A leader's snapshot installed here, for the application (next Ready).
    private var pendingSnapshot: Snapshot?
    private var readRound: UInt64 = 0
    private var pendingReads: [PendingRead] = []
    /// Reads that arrived before this leader committed an entry of its term: its commit index may
    /// lag the previous leader's until then (Raft §6.4 step 1).
    private var readsAwaitingCommit: [UInt64] = []
    private var readStates: [ReadState] = []
    private var failedReads: [UInt64] = []
    /// Leadership transfer in progress: to whom, and for how many ticks.
    public private(set) var transferee: ReplicaID?
    private var transferElapsed = 0
    /// A leader's: the data bytes of its entries after the commit index.
    private var uncommittedBytes = 0

    /// A replica starting from what it had persisted (nothing, the first time): its hard state, its
    /// latest snapshot (the application restores its state from it) and the entries after it.
    public init(config: Config, hardState: HardState = .init(), snapshot: Snapshot = .init(), entries: [Entry] = []) {
        precondition(config.voters.contains(config.id), "a replica is one of its group's voters")
        self.config = config
        rng = config.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(config.id)
        term = hardState.term
        vote = hardState.vote
        log = RaftLog(snapshot: snapshot, entries: entries)
        log.committed = max(snapshot.index, min(hardState.commit, log.lastIndex))
        persisted = HardState(term: term, vote: vote, commit: log.committed)
        resetElectionTimer()
    }

    public var hardState: HardState {
        #if RAFT_PLANTED_BUGS
        if planted(.voteWithoutPersisting) { return HardState(term: term, vote: nil, commit: log.committed) }
        #endif
        return HardState(term: term, vote: vote, commit: log.committed)
    }
    var quorum: Int { config.voters.count / 2 + 1 }

    // MARK: Inputs

    public mutating func tick() {
        ticks += 1
        electionElapsed += 1
        switch role {
        case .leader:
            if let target = transferee {
                transferElapsed += 1
                if transferElapsed >= config.electionTicks {
                    note("\(config.id) gave up transferring leadership to \(target): it did not take over within an election timeout")
                    transferee = nil
                }
            }
            if config.checkQuorum && electionElapsed >= config.electionTicks {
                electionElapsed = 0
                // Raft §6.2 / etcd CheckQuorum: a leader that has not heard from a quorum within
                // an election timeout steps down, so that an isolated leader does not linger.
                let active = config.voters.filter { $0 == config.id || progress[$0]?.recentActive == true }.count
                for id in progress.keys { progress[id]?.recentActive = false }
                if active < quorum {
                    note("\(config.id) stepped down at term \(term): heard from \(active) of \(config.voters.count), no quorum")
                    becomeFollower(term, leader: nil)
                    return
                }
            }
            for (id, pr) in progress where pr.snapshotSent != nil {
                progress[id]!.snapshotWait += 1
                // Lost, or the follower could not take it: send it again at the next append.
                if pr.snapshotWait + 1 >= (config.snapshotWaitTicks ?? config.electionTicks) { progress[id]!.snapshotSent = nil }
            }
            heartbeatElapsed += 1
            if heartbeatElapsed >= config.heartbeatTicks {
                heartbeatElapsed = 0
                broadcastAppend()
            }
        case .follower, .preCandidate, .candidate:
            if role == .follower, let s = suspectedPeer, leader == s, electionElapsed >= 2 * config.heartbeatTicks {
                note("\(config.id) suspects its leader \(s) at term \(term) (failure detector, then silence): campaigning soon")
                forget(leader: s)
            }
            if electionElapsed >= randomizedTimeout { campaign() }
        }
    }

    /// The transport saw the connection from `id` close. If `id` is this follower's leader, its
    /// process has most likely died (a crash closes its sockets at once; a pause or a partition
    /// does not, and then the election timeout still applies). The follower stops counting on it:
    /// it forgets the leader, so that its lease no longer refuses the other followers' pre-votes,
    /// and campaigns after a random 1 to `heartbeatTicks` ticks instead of a whole election
    /// timeout. Pre-vote keeps a mistaken suspicion harmless: a leader that still reaches a quorum
    /// keeps its term, and its next append makes this replica a follower again.
    public mutating func peerDisconnected(_ id: ReplicaID) {
        // A leader stops counting a peer whose connection dropped as caught up (a crashed process
        // closes its sockets at once), so no transfer goes to it.
        if role == .leader, id != config.id { progress[id]?.heardAtTick = 0 }
        guard role == .follower, leader == id, id != config.id else { return }
        note("\(config.id) lost its connection from leader \(id) at term \(term): campaigning soon")
        forget(leader: id)
    }

    /// The node's failure detector declared `id` dead: a stopped or cut-off process closes no
    /// connection, and its silence is all there is to go by. A follower whose leader it is, and
    /// which has not heard from it in two heartbeat intervals either, forgets it and campaigns
    /// soon, as on a lost connection. So a leader is replaced after the detector's timeout or the
    /// election timeout, whichever is shorter: a leader that stalls longer than the detector's
    /// timeout (hb_timeout_ms) loses its leadership even if it comes back before the election
    /// timeout. That is the detector's trade-off, speed against mistakes, and the lab's subject.
    /// A verdict that arrives after an append from the leader was handled is ignored, and one
    /// follower's wrong suspicion costs a refused pre-vote while the others still hear the leader.
    public mutating func peerSuspected(_ id: ReplicaID) {
        if role == .leader, id != config.id { progress[id]?.heardAtTick = 0 }
        guard id != config.id else { return }
        suspectedPeer = id
        guard role == .follower, leader == id else { return }
        guard electionElapsed >= 2 * config.heartbeatTicks else {
            note("\(config.id) put off a suspicion of its leader \(id): heard from it \(electionElapsed) ticks ago")
            return
        }
        note("\(config.id) suspects its leader \(id) at term \(term) (failure detector): campaigning soon")
        forget(leader: id)
    }

    /// The detector declared `id` alive again: a suspicion put off is dropped.
    public mutating func peerTrusted(_ id: ReplicaID) {
        if suspectedPeer == id { suspectedPeer = nil }
    }

    private mutating func forget(leader id: ReplicaID) {
        leader = nil
        suspectedPeer = nil  // acted on: the next suspicion needs a verdict of its own
        forgottenLeader = (id, term)
        campaignSoon()
    }

    /// The election timer set to fire within a heartbeat interval, not a whole election timeout.
    private mutating func campaignSoon() {
        electionElapsed = max(electionElapsed, config.electionTicks)
        randomizedTimeout = electionElapsed + 1 + Int(nextRandom() % UInt64(max(1, config.heartbeatTicks)))
    }

    /// A replica with no leader refused a (pre-)vote because the asker's log is behind its own:
    /// only a log like ours can win, so we campaign soon rather than after a whole timeout. The
    /// followers of a crashed leader learn of it one after the other; the one with the longer log
    /// may campaign first, be refused by the other (still in its lease), and then refuse the
    /// other's campaign: without this, both wait out an election timeout.
    /// Not after a vote in this term for another candidate (its first append may be on its way:
    /// campaigning now could depose it), only for ourselves or for the leader we forgot; and only
    /// with pre-vote (without it, a campaign raises terms).
    private mutating func refusedABehindLog(from asker: ReplicaID) {
        let forgotten = forgottenLeader.flatMap { $0.term == term ? $0.id : nil }
        guard config.preVote, leader == nil, vote == nil || vote == config.id || vote == forgotten,
              role == .follower || role == .preCandidate else { return }
        note("\(config.id) refused \(asker), whose log is behind its own, and knows no leader: campaigning soon")
        campaignSoon()
    }

    /// The transport could not deliver the snapshot sent to `id` (etcd's ReportSnapshot with
    /// failure): send it again at the next heartbeat instead of waiting for an answer that will
    /// not come.
    public mutating func reportSnapshotFailed(to id: ReplicaID) {
        guard role == .leader, progress[id]?.snapshotSent != nil else { return }
        note("\(config.id) will send its snapshot to \(id) again: the transfer failed")
        progress[id]!.snapshotSent = nil
    }

    /// Starts an election now (the election timer does this by itself).
    public mutating func campaign() {
        guard role != .leader else { return }
        if config.preVote { becomePreCandidate() } else { becomeCandidate() }
    }

    public enum ProposeError: Error, Equatable, Sendable, CustomStringConvertible {
        case notLeader(leader: ReplicaID?)
        /// Proposals wait while leadership moves, so that the new leader is not chasing a moving log.
        case transferring(to: ReplicaID)
        case unknownReplica(ReplicaID)
        /// The uncommitted tail is at its byte limit: the quorum is slow or gone; retry later.
        case overloaded(uncommittedBytes: Int)

        public var description: String {
            switch self {
            case .notLeader(let l): return "not the leader (leader: \(l.map(String.init) ?? "unknown"))"
            case .transferring(let to): return "leadership is moving to \(to)"
            case .unknownReplica(let id): return "no replica \(id) in this group"
            case .overloaded(let b): return "\(b) bytes of entries await a quorum"
            }
        }
    }

    /// Appends a command to the leader's log; its index, or who the leader is.
    public mutating func propose(_ data: [UInt8]) -> Result<LogIndex, ProposeError> {
        guard role == .leader else { return .failure(.notLeader(leader: leader)) }
        if let target = transferee { return .failure(.transferring(to: target)) }
        if uncommittedBytes > 0 && uncommittedBytes + data.count > config.maxUncommittedBytes {
            return .failure(.overloaded(uncommittedBytes: uncommittedBytes))
        }
        let entry = Entry(term: term, index: log.lastIndex + 1, data: data)
        log.append(entry)
        uncommittedBytes += data.count
        #if RAFT_PLANTED_BUGS
        if planted(.ackOnPropose) { return .success(entry.index) }
        #endif
        broadcastAppend()
        return .success(entry.index)
    }

    /// A linearizable read (Raft §6.4): the leader notes its commit index, confirms it is still
    /// leader by a heartbeat round a quorum answers, then hands back a ReadState with `context`;
    /// the application serves the read once it has applied that index. Fails on a follower (ask
    /// the leader) and, in a later Ready's `failedReads`, if leadership is lost first.
    public mutating func readIndex(_ context: UInt64) -> Result<Void, ProposeError> {
        guard role == .leader else { return .failure(.notLeader(leader: leader)) }
        if log.term(at: log.committed) != term {
            readsAwaitingCommit.append(context)
        } else {
            startRead(context)
        }
        return .success(())
    }

    /// A leader's view of `peer`: it holds everything committed and answered within two heartbeat
    /// intervals (its connection has not dropped since). Not "the whole log": under steady writes
    /// an entry is nearly always in flight; a transfer brings the target the rest itself.
    public func isCaughtUp(_ peer: ReplicaID) -> Bool {
        guard role == .leader, let pr = progress[peer], pr.heardAtTick > 0 else { return false }
        return pr.match >= log.committed && ticks - pr.heardAtTick <= UInt64(2 * config.heartbeatTicks)
    }

    /// Hands leadership to `target` (Raft §3.10): bring its log up to date, then tell it to
    /// campaign at once (TimeoutNow). Proposals are refused meanwhile; given up after an election
    /// timeout.
    public mutating func transferLeadership(to target: ReplicaID) -> Result<Void, ProposeError> {
        guard role == .leader else { return .failure(.notLeader(leader: leader)) }
        guard config.voters.contains(target) else { return .failure(.unknownReplica(target)) }
        guard target != config.id else { return .success(()) }
        transferee = target
        transferElapsed = 0
        note("\(config.id) transferring leadership to \(target)")
        if progress[target]?.match == log.lastIndex { send(target, .timeoutNow) } else { sendAppend(to: target) }
        return .success(())
    }

    /// The application saved a snapshot of its state through `index` (applied already): the log
    /// drops the entries it covers, and followers behind it get the snapshot instead.
    public mutating func compact(through index: LogIndex, data: [UInt8]) {
        guard index > log.snapshotIndex, index <= log.applied, let t = log.term(at: index) else { return }
        log.compact(to: Snapshot(index: index, term: t, data: data))
    }

    public var snapshot: Snapshot { log.snapshot }

    public mutating func step(_ m: Message) {
        guard m.to == config.id, config.voters.contains(m.from) else { return }
        if m.term > term {
            switch m.kind {
            case .preVote:
                break  // a pre-vote never changes our term
            case .preVoteResponse(granted: true) where role == .preCandidate:
                break  // it carries the term we would campaign in
            case .vote(_, _, transfer: false) where config.checkQuorum && leader != nil && electionElapsed < config.electionTicks:
                // Leader lease: we heard from a live leader within the election timeout, so a
                // node that was cut off (and raised its term) cannot depose it.
                note("\(config.id) ignored a vote request from \(m.from) at term \(m.term): leader \(leader!) is live")
                return
            default:
                let fromLeader: Bool = switch m.kind { case .append, .snapshot, .timeoutNow: true; default: false }
                becomeFollower(m.term, leader: fromLeader ? m.from : nil)
            }
        } else if m.term < term {
            switch m.kind {
            case .append:
                // Tell a stale leader our term, so that it steps down.
                send(m.from, .appendResponse(success: false, matchIndex: 0, conflictIndex: 0, conflictTerm: nil, round: 0))
            case .preVote:
                send(m.from, .preVoteResponse(granted: false))
            default:
                break
            }
            return
        }

        switch m.kind {
        case .preVote(let lastIndex, let lastTerm):
            let inLease = leader != nil && electionElapsed < config.electionTicks
            let upToDate = log.isUpToDate(lastIndex: lastIndex, lastTerm: lastTerm)
            // Two followers that lost the same leader campaign at once (a closed connection, or
            // the detector's verdict, reaches both in the same millisecond). Granting each other's
            // pre-vote would make both candidates, each voting for itself: a split vote, and an
            // election timeout lost. A pre-candidate that began its own campaign in this very tick,
            // with the same log as the asker's, grants only a lower id, so that one of two goes
            // on. One whose campaign is older grants as usual: its own may have been refused
            // already (by a follower still in its lease), and the asker's is then the one to win.
            let sameLog = lastIndex == log.lastIndex && lastTerm == log.lastTerm
            // Not if the asker refused ours already (the collision is over: its campaign is the one
            // left), nor for another campaign term.
            let yields = role == .preCandidate && electionElapsed == 0 && sameLog && m.from > config.id
                && votes[m.from] != false && m.term == term.next
            let grant = m.term > term && !inLease && upToDate && !yields
            outbox.append(Message(from: config.id, to: m.from, term: grant ? m.term : term, kind: .preVoteResponse(granted: grant)))
            if !upToDate { refusedABehindLog(from: m.from) }
        case .vote(let lastIndex, let lastTerm, _):
            let canVote = vote == m.from || (vote == nil && leader == nil)
            let upToDate = log.isUpToDate(lastIndex: lastIndex, lastTerm: lastTerm)
            let grant = canVote && upToDate
            if grant {
                vote = m.from
                electionElapsed = 0
            }
            if !upToDate { refusedABehindLog(from: m.from) }
            // The vote is in the hard state of the same Ready: persisted before this goes out.
            send(m.from, .voteResponse(granted: grant))
        case .preVoteResponse(let granted) where role == .preCandidate:
            tally(m.from, granted) { $0.becomeCandidate() }
        case .voteResponse(let granted) where role == .candidate:
            tally(m.from, granted) { $0.becomeLeader() }
        case .append(let prevIndex, let prevTerm, let entries, let commit, let round):
            followLeader(m.from)
            handleAppend(from: m.from, prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, commit: commit, round: round)
        case .snapshot(let snapshot):
            followLeader(m.from)
            handleSnapshot(from: m.from, snapshot)
        case .timeoutNow where role != .leader:
            note("\(config.id) campaigns at once: leader \(m.from) hands over")
            becomeCandidate(transfer: true)
        case .appendResponse(let success, let match, let conflictIndex, let conflictTerm, let round) where role == .leader:
            handleAppendResponse(from: m.from, success: success, match: match, conflictIndex: conflictIndex,
                                 conflictTerm: conflictTerm, round: round)
        default:
            break  // a response for a role we no longer have
        }
    }

    // MARK: Ready

    public struct Ready: Sendable {
        /// In this order: persist `snapshot`, `hardState` and `entries` (and sync); send `messages`;
        /// restore the application from `snapshot`, then apply `committed`; serve the reads of
        /// `readStates` once applied through their index; fail `failedReads`.
        public var snapshot: Snapshot?
        public var hardState: HardState?
        public var entries: [Entry]
        public var messages: [Message]
        public var committed: [Entry]
        public var readStates: [ReadState]
        public var failedReads: [UInt64]
    }

    public var hasReady: Bool {
        pendingSnapshot != nil || hardState != persisted || !log.unstable.isEmpty || !outbox.isEmpty
            || log.applied < min(log.committed, log.lastIndex) || !readStates.isEmpty || !failedReads.isEmpty
    }

    public mutating func ready() -> Ready {
        let hs = hardState
        let applyFrom = max(log.applied, pendingSnapshot?.index ?? 0) + 1
        let applyThrough = min(log.committed, log.lastIndex)
        let committed = applyThrough >= applyFrom ? log.entries(from: applyFrom, max: Int(applyThrough.value - applyFrom.value) + 1) : []
        defer { outbox.removeAll(); readStates.removeAll(); failedReads.removeAll() }
        return Ready(snapshot: pendingSnapshot, hardState: hs != persisted ? hs : nil, entries: log.unstable, messages: outbox,
                     committed: committed, readStates: readStates, failedReads: failedReads)
    }

    /// The Ready was carried out: its state and entries are on disk, its messages sent, its
    /// snapshot and committed entries applied.
    public mutating func advance(_ r: Ready) {
        if let s = r.snapshot {
            log.applied = max(log.applied, s.index)
            if pendingSnapshot == s { pendingSnapshot = nil }
        }
        if let hs = r.hardState { persisted = hs }
        if let last = r.entries.last { log.markStable(through: last.index) }
        if let last = r.committed.last { log.applied = last.index }
        // The leader counts its own entries toward a quorum once they are on its disk.
        if role == .leader { maybeCommit() }
    }

    public mutating func takeTrace() -> [String] {
        defer { trace.removeAll() }
        return trace
    }

    // MARK: Roles

    private mutating func becomeFollower(_ newTerm: Term, leader newLeader: ReplicaID?) {
        if newTerm != term { vote = nil }
        if role == .leader { failReads() }
        transferee = nil
        let changed = role != .follower || newTerm != term
        term = newTerm
        role = .follower
        leader = newLeader
        votes = [:]
        progress = [:]
        resetElectionTimer()
        if changed { note("\(config.id) became follower at term \(term)") }
    }

    private mutating func becomePreCandidate() {
        // A pre-vote asks for the next term without taking it.
        startCampaign(.preCandidate, askingFor: term.next, .preVote(lastIndex: log.lastIndex, lastTerm: log.lastTerm))
        if quorum == 1 { becomeCandidate() }
    }

    private mutating func becomeCandidate(transfer: Bool = false) {
        term = term.next
        vote = config.id
        startCampaign(.candidate, askingFor: term, .vote(lastIndex: log.lastIndex, lastTerm: log.lastTerm, transfer: transfer))
        if quorum == 1 { becomeLeader() }
    }

    private mutating func startCampaign(_ newRole: Role, askingFor campaignTerm: Term, _ request: Message.Kind) {
        role = newRole
        leader = nil
        votes = [config.id: true]
        resetElectionTimer()
        note("\(config.id) became \(newRole.rawValue) at term \(term)")
        for id in config.voters where id != config.id {
            outbox.append(Message(from: config.id, to: id, term: campaignTerm, kind: request))
        }
    }

    private mutating func becomeLeader() {
        role = .leader
        leader = config.id
        votes = [:]
        electionElapsed = 0
        heartbeatElapsed = 0
        progress = [:]
        for id in config.voters where id != config.id { progress[id] = Progress(next: log.lastIndex + 1) }
        note("\(config.id) became leader at term \(term)")
        // Raft §8: a no-op of its own term, so that earlier entries can be committed (§5.4.2).
        log.append(Entry(term: term, index: log.lastIndex + 1, data: []))
        uncommittedBytes = log.bytes(after: log.committed, through: log.lastIndex)
        broadcastAppend()
    }

    /// Counts a (pre-)vote; a quorum for wins, a quorum against ends the campaign.
    private mutating func tally(_ from: ReplicaID, _ granted: Bool, onWin: (inout Raft) -> Void) {
        votes[from] = granted
        let yes = votes.values.filter { $0 }.count, no = votes.values.filter { !$0 }.count
        if yes >= quorum { onWin(&self) } else if no >= quorum { becomeFollower(term, leader: nil) }
    }

    private mutating func resetElectionTimer() {
        electionElapsed = 0
        // Uniform in [E, max) (max 2E by default, as etcd), from the config's seed.
        let spread = max(1, (config.maxElectionTicks ?? 2 * config.electionTicks) - config.electionTicks)
        randomizedTimeout = config.electionTicks + Int(nextRandom() % UInt64(spread))
    }

    /// SplitMix64 on the config's seed.
    private mutating func nextRandom() -> UInt64 {
        rng = rng &+ 0x9E37_79B9_7F4A_7C15
        return SplitMix64.mix(rng)
    }

    // MARK: Replication

    /// An append or snapshot from the leader of our term.
    private mutating func followLeader(_ id: ReplicaID) {
        if role != .follower { becomeFollower(term, leader: id) }
        leader = id
        electionElapsed = 0
    }

    private mutating func handleAppend(from: ReplicaID, prevIndex: LogIndex, prevTerm: Term, entries: [Entry], commit: LogIndex,
                                       round: UInt64) {
        if prevIndex < log.committed {
            // Behind our commit point (perhaps compacted): what is committed here matches the leader.
            send(from, .appendResponse(success: true, matchIndex: log.committed, conflictIndex: 0, conflictTerm: nil, round: round))
            return
        }
        guard let ours = log.term(at: prevIndex) else {
            // Our log ends before prevIndex: resume right after our last entry.
            send(from, .appendResponse(success: false, matchIndex: 0, conflictIndex: log.lastIndex + 1, conflictTerm: nil, round: round))
            return
        }
        var prevMatches = ours == prevTerm
        #if RAFT_PLANTED_BUGS
        if planted(.appendWithoutPrevCheck) { prevMatches = true }
        #endif
        guard prevMatches else {
            // Raft §5.3: reject, and name the conflicting term and where it starts.
            send(from, .appendResponse(success: false, matchIndex: 0, conflictIndex: log.firstIndex(ofTermAt: prevIndex),
                                       conflictTerm: ours, round: round))
            return
        }
        guard Self.contiguous(entries, after: prevIndex, term: term),
              let last = log.merge(after: prevIndex, entries) else {
            // No correct leader sends this (entries out of order, from a later term, or overwriting
            // what is committed here): refused and noted, never obeyed, never a crash.
            note("\(config.id) refused an append from \(from) at term \(term): entries \(entries.map(\.description)) after \(prevIndex) "
                 + "are not contiguous or would overwrite committed entries (commit \(log.committed))")
            return
        }
        if commit > log.committed { log.committed = min(commit, last) }
        send(from, .appendResponse(success: true, matchIndex: last, conflictIndex: 0, conflictTerm: nil, round: round))
    }

    /// Entries prevIndex+1, prevIndex+2, ... with terms that never fall and never pass the leader's.
    static func contiguous(_ entries: [Entry], after prevIndex: LogIndex, term: Term) -> Bool {
        var expected = prevIndex + 1
        var lastTerm: Term = 0
        for e in entries {
            guard e.index == expected, e.term >= lastTerm, e.term <= term else { return false }
            expected = expected + 1
            lastTerm = e.term
        }
        return true
    }

    /// InstallSnapshot (Raft §7), answered as an append of everything through the snapshot.
    private mutating func handleSnapshot(from: ReplicaID, _ s: Snapshot) {
        if s.index <= log.committed {
            // Nothing new to us (a duplicate, or we caught up meanwhile).
        } else if log.term(at: s.index) == s.term {
            // We hold its last entry: our log up to there is the leader's, and committed.
            log.committed = s.index
        } else {
            note("\(config.id) installed \(s) from \(from)")
            log.restore(s)
            pendingSnapshot = s
        }
        send(from, .appendResponse(success: true, matchIndex: log.committed, conflictIndex: 0, conflictTerm: nil, round: 0))
    }

    private mutating func handleAppendResponse(from: ReplicaID, success: Bool, match: LogIndex,
                                               conflictIndex: LogIndex, conflictTerm: Term?, round: UInt64) {
        guard var pr = progress[from] else { return }
        pr.recentActive = true
        pr.heardAtTick = ticks
        // An answer of this term, to a heartbeat of round `round` or later, confirms our leadership then.
        if round > pr.ackedRound {
            pr.ackedRound = round
            progress[from] = pr
            releaseReads()
        }
        // A follower cannot hold more than we sent: a larger match is forged or damaged.
        guard match <= log.lastIndex else {
            progress[from] = pr
            return
        }
        if pr.snapshotSent != nil {
            // Until the snapshot is answered, the follower's rejections of heartbeats say nothing new.
            guard success else {
                progress[from] = pr
                return
            }
            if match < log.snapshotIndex {
                guard match > pr.match else {  // an old answer: nothing learned
                    progress[from] = pr
                    return
                }
                // It installed an earlier snapshot of ours, and we have compacted past it since:
                // the current one goes now, not after the snapshot wait.
                pr.match = match
                pr.next = match + 1
                pr.snapshotSent = nil
                pr.inflight = 0
                progress[from] = pr
                sendAppend(to: from)
                return
            }
            pr.snapshotSent = nil
        }
        if success {
            if match > pr.match { pr.match = match }
            if pr.next < pr.match + 1 { pr.next = pr.match + 1 }
            pr.inflight = max(0, pr.inflight - 1)
            progress[from] = pr
            maybeCommit()
            if transferee == from && pr.match == log.lastIndex {
                send(from, .timeoutNow)
            } else if pr.next <= log.lastIndex {
                sendAppend(to: from)
            }
        } else {
            // Skip the follower's whole conflicting term in one round trip.
            var next = conflictIndex
            if let ct = conflictTerm, let ours = log.lastIndex(of: ct) { next = ours + 1 }
            pr.next = max(pr.match + 1, min(next, log.lastIndex + 1))
            pr.inflight = 0
            progress[from] = pr
            sendAppend(to: from)
        }
    }

    private mutating func broadcastAppend() {
        for id in config.voters where id != config.id { sendAppend(to: id) }
    }

    /// Entries from the follower's next index (when fewer than maxInflight are in flight), or an
    /// empty append that serves as heartbeat and probe.
    private mutating func sendAppend(to id: ReplicaID) {
        guard var pr = progress[id] else { return }
        if let sent = pr.snapshotSent {
            // A heartbeat only: it keeps the follower from campaigning while the snapshot travels.
            send(id, .append(prevIndex: sent.index, prevTerm: sent.term, entries: [], commit: log.committed, round: readRound))
            return
        }
        let prev = pr.next - 1
        guard let prevTerm = log.term(at: prev) else {
            // Compacted away: the follower gets the snapshot instead, then appends after it.
            pr.next = log.snapshotIndex + 1
            pr.inflight += 1
            pr.snapshotSent = (log.snapshotIndex, log.snapshot.term)
            pr.snapshotWait = 0
            progress[id] = pr
            send(id, .snapshot(log.snapshot))
            return
        }
        var entries: [Entry] = []
        if pr.inflight < config.maxInflight {
            entries = log.entries(from: pr.next, max: config.maxEntriesPerAppend, maxBytes: config.maxBytesPerAppend)
            if let last = entries.last {
                pr.next = last.index + 1
                pr.inflight += 1
            }
        }
        progress[id] = pr
        send(id, .append(prevIndex: prev, prevTerm: prevTerm, entries: entries, commit: log.committed, round: readRound))
    }

    /// Raft §5.4.2: the highest index on a quorum is committed only if it holds an entry of this
    /// term; earlier entries then commit with it (Figure 8).
    private mutating func maybeCommit() {
        let matches = config.voters.map { $0 == config.id ? log.stable : (progress[$0]?.match ?? 0) }.sorted(by: >)
        let n = matches[quorum - 1]
        var currentTerm = log.term(at: n) == term
        #if RAFT_PLANTED_BUGS
        if planted(.commitPreviousTerm) { currentTerm = true }
        #endif
        guard n > log.committed, currentTerm else { return }
        uncommittedBytes -= log.bytes(after: log.committed, through: n)
        log.committed = n
        // The first commit of this term: reads that waited for it can start.
        let waiting = readsAwaitingCommit
        readsAwaitingCommit = []
        for context in waiting { startRead(context) }
        broadcastAppend()
    }

    // MARK: ReadIndex

    private mutating func startRead(_ context: UInt64) {
        if quorum == 1 {
            readStates.append(ReadState(context: context, index: log.committed))
            return
        }
        readRound += 1
        pendingReads.append(PendingRead(context: context, index: log.committed, round: readRound))
        broadcastAppend()
    }

    /// Reads whose round a quorum has answered, in order (a later round confirms the earlier ones).
    private mutating func releaseReads() {
        while let read = pendingReads.first {
            let acks = 1 + progress.values.filter { $0.ackedRound >= read.round }.count
            guard acks >= quorum else { return }
            readStates.append(ReadState(context: read.context, index: read.index))
            pendingReads.removeFirst()
        }
    }

    private mutating func failReads() {
        failedReads += pendingReads.map(\.context) + readsAwaitingCommit
        pendingReads = []
        readsAwaitingCommit = []
    }

    private mutating func send(_ to: ReplicaID, _ kind: Message.Kind) {
        outbox.append(Message(from: config.id, to: to, term: term, kind: kind))
    }

    private mutating func note(_ s: String) { trace.append(s) }
}
