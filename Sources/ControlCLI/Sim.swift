import ArgumentParser
import Dispatch
import Linearizability
import Raft
import RaftSimulation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `kvctl sim`: the deterministic Raft simulator, no cluster needed.
struct Sim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Run the Raft core in the deterministic simulator (no supervisor needed).",
        subcommands: [SimSchedules.self, SimElections.self])
}

struct SimSchedules: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedules",
        abstract: "Random faulty schedules, each checked for Raft's safety properties and a linearizable history.",
        discussion: """
            Each schedule is a seed: crashes (some in the middle of a disk write), partitions (symmetric and
            one-way), message loss, duplication and reordering, snapshots, leadership transfers, and clients
            that retry. A quarter of the seeds (6 and 7 mod 8) run 3 Raft groups on the same replicas, as
            kvnode --groups 3 does: faults hit every group of a replica at once, the groups share its disk and
            its sync, and every invariant and the history are checked per group. A failing seed is printed
            with the command that replays it alone:
              kvctl sim schedules --seed N --count 1 --trace
            Exit: 0 every schedule kept every invariant, 1 a violation (seeds listed), 2 usage error.
            """)

    @Option(help: "The first seed.") var seed: UInt64 = 1
    @Option(help: "How many schedules (seeds seed, seed+1, ...).") var count = 1000
    @Option(help: "Steps per schedule.") var steps = 1500
    @Option(help: "Replicas (default: 3 for even seeds, 5 for odd).") var size: Int?
    @Option(help: "Raft groups on the replicas (default: 3 for seeds 6 and 7 mod 8, else 1).") var groups: Int?
    @Option(help: "Parallel workers (default: one per CPU).") var jobs: Int?
    @Flag(help: "Print the step-by-step trace (one schedule only).") var trace = false
    @Option(help: "Write the clients' history as JSONL for kvctl check (one schedule only).") var history: String?
    @Flag(help: "Print JSON for programs.") var json = false
    #if RAFT_PLANTED_BUGS
    @Option(name: .customLong("planted-bug"), help: "Test builds only: run with this bug planted in the core.") var plantedBug: String?
    #endif

    func validate() throws {
        #if RAFT_PLANTED_BUGS
        if let b = plantedBug, Raft.PlantedBug(rawValue: b) == nil {
            throw ValidationError("--planted-bug '\(b)': one of \(Raft.PlantedBug.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        #endif
        if count < 1 { throw ValidationError("--count must be at least 1") }
        if steps < 1 || steps > 1_000_000 { throw ValidationError("--steps must be between 1 and 1000000") }
        if let size, !(1...15).contains(size) { throw ValidationError("--size must be between 1 and 15 replicas") }
        if let groups, !(1...16).contains(groups) { throw ValidationError("--groups must be between 1 and 16") }
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        if (trace || history != nil) && count != 1 { throw ValidationError("--trace and --history take one schedule: add --count 1") }
        if UInt64.max - seed < UInt64(count) { throw ValidationError("--seed \(seed) with --count \(count) runs past the largest seed") }
    }

    struct Summary: Encodable {
        var schedules = 0, multiGroup = 0, violations = 0, leadersElected = 0, entriesCommitted = 0, crashes = 0, crashesMidWrite = 0, pauses = 0
        var snapshotsInstalled = 0, transfers = 0, operations = 0, acknowledged = 0, readIndexReads = 0, staleReads = 0
        var anonymousWrites = 0, sessionsExpired = 0, expiredRetries = 0
        var linearizable = 0, unknown = 0
        var seconds = 0.0
        var failedSeeds: [UInt64] = []
        enum CodingKeys: String, CodingKey {
            case schedules, multiGroup = "multi_group", violations, crashes, pauses, transfers, operations, acknowledged, linearizable, unknown, seconds
            case leadersElected = "leaders_elected", entriesCommitted = "entries_committed", crashesMidWrite = "crashes_mid_write"
            case snapshotsInstalled = "snapshots_installed", readIndexReads = "readindex_reads", staleReads = "stale_reads", failedSeeds = "failed_seeds"
            case anonymousWrites = "anonymous_writes", sessionsExpired = "sessions_expired", expiredRetries = "expired_retries"
        }

        mutating func add(_ r: ScheduleReport) {
            schedules += 1
            if r.groups > 1 { multiGroup += 1 }
            leadersElected += r.leadersElected; entriesCommitted += r.entriesCommitted; crashes += r.crashes
            crashesMidWrite += r.crashesMidWrite; pauses += r.pauses; snapshotsInstalled += r.snapshotsInstalled; transfers += r.transfers
            operations += r.operations; acknowledged += r.acknowledged; readIndexReads += r.readIndexReads
            staleReads += r.staleReads
            anonymousWrites += r.anonymousWrites; sessionsExpired += r.sessionsExpired; expiredRetries += r.expiredRetries
            if r.linearizable == .linearizable { linearizable += 1 }
            if r.linearizable == .unknown { unknown += 1 }
            if !r.violations.isEmpty { violations += 1; failedSeeds.append(r.seed) }
        }
    }

    func run() throws {
        let started = DispatchTime.now().uptimeNanoseconds
        let options = { @Sendable (seed: UInt64) -> ScheduleOptions in
            var o = ScheduleOptions(seed: seed, size: size, groups: groups)
            o.steps = steps
            o.trace = trace
            o.keepHistory = history != nil
            #if RAFT_PLANTED_BUGS
            if let bug = plantedBug.flatMap(Raft.PlantedBug.init(rawValue:)) { o.configure = { $0.plantedBug = bug } }
            #endif
            return o
        }
        let workers = min(count, jobs ?? ProcessInfo.processInfo.activeProcessorCount)
        let state = Mutex((summary: Summary(), failures: [ScheduleReport](), done: 0))
        let next = Atomic<Int>(0)
        let interactive = isatty(1) == 1 && !json
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let i = next.add(1, ordering: .relaxed).oldValue
                guard i < count else { return }
                let r = Simulation(options(seed + UInt64(i))).run()
                let done = state.withLock { s -> Int in
                    s.summary.add(r)
                    if !r.violations.isEmpty { s.failures.append(r) }
                    s.done += 1
                    return s.done
                }
                if interactive && done % 500 == 0 { KVCtl.writeError("  \(done)/\(count) schedules") }
            }
        }
        var (summary, failures, _) = state.withLock { $0 }
        summary.seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        summary.failedSeeds.sort()
        failures.sort { $0.seed < $1.seed }
        if trace, let r = failures.first ?? nil { print(r.trace.joined(separator: "\n")) }
        if trace, failures.isEmpty {
            print(Simulation(options(seed)).run().trace.joined(separator: "\n"))
        }
        if let path = history {
            let r = Simulation(options(seed)).run()
            guard FileManager.default.createFile(atPath: path, contents: Data(JSONLWriter.render(r.history).utf8)) else {
                throw Failure("could not write \(path)")
            }
        }
        if json {
            print(Render.json(summary))
        } else {
            printSummary(summary, failures)
        }
        if summary.violations > 0 { throw CommandExit(code: 1) }
    }

    private func printSummary(_ s: Summary, _ failures: [ScheduleReport]) {
        let rate = Double(s.schedules) / max(s.seconds, 1e-9)
        print("\(s.schedules) schedules (seeds \(seed)-\(seed + UInt64(count) - 1), \(steps) steps each) in "
              + "\(Render.fixed(s.seconds, 1)) s, \(Render.fixed(rate, 0)) schedules/s: "
              + (s.violations == 0 ? "no invariant violated" : "\(s.violations) violated an invariant"))
        print("  \(s.multiGroup) of them with several Raft groups on the same replicas, checked per group")
        print("  \(s.leadersElected) leaders elected, \(s.entriesCommitted) entries committed, \(s.crashes) crashes "
              + "(\(s.crashesMidWrite) mid-write), \(s.pauses) pauses, \(s.snapshotsInstalled) snapshots installed, \(s.transfers) transfers")
        print("  clients: \(s.operations) operations, \(s.acknowledged) writes acknowledged, \(s.readIndexReads) ReadIndex reads, \(s.staleReads) stale local reads, "
              + "\(s.anonymousWrites) anonymous writes, \(s.sessionsExpired) sessions expired (\(s.expiredRetries) requests refused for it); "
              + "histories linearizable: \(s.linearizable)" + (s.unknown > 0 ? ", unknown (checker limit): \(s.unknown)" : ""))
        for r in failures.prefix(10) {
            print("seed \(r.seed) (\(r.size) replicas, \(r.groups) group\(r.groups == 1 ? "" : "s")): \(r.violations.joined(separator: "; "))")
            print("  replay: kvctl sim schedules --seed \(r.seed) --count 1 --steps \(steps)" + (size.map { " --size \($0)" } ?? "")
                  + (groups.map { " --groups \($0)" } ?? "") + " --trace")
        }
        if failures.count > 10 { print("(\(failures.count - 10) more failing seeds; --json lists them)") }
        if let h = history { print("history: \(h) (kvctl check \(h))") }
    }
}

struct SimElections: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "elections",
        abstract: "Crash a stable leader at a random point of its heartbeat interval, N times, and time the election.",
        discussion: """
            Simulated time: 1 ms ticks, each replica with its own phase; every message takes the one-way
            delay ± jitter. Prints percentiles of the time from the crash to a new leader, beside the model
            without split votes, and writes every trial to --csv.

            The Raft paper's Figure 16 (LogCabin: five servers, a broadcast of about 15 ms, the heartbeat half
            the shortest timeout, no pre-vote, no check-quorum), one of its curves:
              kvctl sim elections --servers 5 --election-ms 150-155 --heartbeat-ms 75 --delay-ms 7.5 --jitter-ms 1 --pre-vote off --check-quorum off
            A fixed timeout is a range with MIN = MAX: --election-ms 150-150.

            --trace TRIAL runs the trials, then prints one of them again with every role change and every
            vote and pre-vote delivered, in ms from the crash: a trial number, or min, median, max, or
            split (the first that needed more than one term). Where the 150-155 ms range's second goes:
              kvctl sim elections --election-ms 150-155 --heartbeat-ms 75 --delay-ms 7.5 --trials 300 --trace median
            """)

    @Option(help: "Servers in the cluster.") var servers = 5
    @Option(name: .customLong("election-ms"), help: "Election timeout range MIN-MAX, ms.") var electionMs = "150-300"
    @Option(name: .customLong("heartbeat-ms"), help: "Heartbeat interval, ms.") var heartbeatMs = 50
    @Option(name: .customLong("delay-ms"), help: "One-way network delay, ms.") var delayMs = 7.0
    @Option(name: .customLong("jitter-ms"), help: "Uniform jitter on the delay, ± ms.") var jitterMs = 1.0
    @Option(help: "Trials.") var trials = 1000
    @Option(name: .customLong("limit-ms"), help: "A trial with no leader this long after the crash did not converge.") var limitMs = 10_000
    @Option(help: "Seed.") var seed: UInt64 = 1
    @Option(help: "Write every trial to this CSV file.") var csv: String?
    @Option(name: .customLong("pre-vote"), help: "The pre-vote round, on (as the store runs) or off (as Figure 16).")
    var preVote = OnOff.on
    @Option(name: .customLong("check-quorum"), help: "A leader without a quorum for an election timeout steps down: on or off.")
    var checkQuorum = OnOff.on
    @Option(help: "Print one trial's events: a trial number, or min, median, max, split.") var trace: String?
    @Flag(help: "Print JSON for programs.") var json = false

    enum OnOff: String, ExpressibleByArgument, CaseIterable { case on, off }

    func electionOptions() throws -> ElectionTrialOptions {
        var o = ElectionTrialOptions()
        let parts = electionMs.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 2, let lo = parts[0], let hi = parts[1] else {
            throw ValidationError("--election-ms '\(electionMs)': write the range as MIN-MAX in ms, e.g. 150-300")
        }
        o.servers = servers; o.electionMinMs = lo; o.electionMaxMs = hi; o.heartbeatMs = heartbeatMs
        o.delayMs = delayMs; o.jitterMs = jitterMs; o.trials = trials; o.limitMs = limitMs; o.seed = seed
        o.preVote = preVote == .on; o.checkQuorum = checkQuorum == .on
        if let problem = o.problem { throw ValidationError(problem) }
        return o
    }

    func validate() throws {
        let o = try electionOptions()
        if let t = trace, !["min", "median", "max", "split"].contains(t) {
            guard let n = Int(t), n >= 0, n < o.trials else {
                throw ValidationError("--trace '\(t)': give a trial number in 0...\(o.trials - 1), or min, median, max or split")
            }
        }
    }

    /// The trial `--trace` names among the results; nil (with why) if there is none such.
    static func traced(_ selector: String, _ results: [ElectionTrial]) -> Result<Int, Failure> {
        if let n = Int(selector) { return .success(n) }
        let timed = results.compactMap { r in r.electionMs.map { (r, $0) } }.sorted { $0.1 < $1.1 }.map(\.0)
        let pick: ElectionTrial? = switch selector {
        case "min": timed.first
        case "max": timed.last
        case "median": timed.isEmpty ? nil : timed[(timed.count - 1) / 2]
        default: results.first { $0.terms > 1 }
        }
        guard let pick else { return .failure(Failure("--trace \(selector): no trial is such (none converged, or none split)")) }
        return .success(pick.trial)
    }

    struct Output: Encodable {
        var trials, converged, splitVotes: Int
        var p50Ms, p90Ms, p99Ms, maxMs, meanMs, minMs: Double?
        var modelMeanMs, floorMs: Double
        var preVote, checkQuorum: Bool
        /// Trials whose crashed node had already stepped down (check-quorum): their time is no election's.
        var crashedAFormerLeader: Int
        var csv: String?
        var trace: [TraceLine]?
        struct TraceLine: Encodable { var ms: Double; var line: String }
        enum CodingKeys: String, CodingKey {
            case trials, converged, csv, trace, preVote = "pre_vote", checkQuorum = "check_quorum"
            case crashedAFormerLeader = "crashed_a_former_leader"
            case splitVotes = "split_votes", p50Ms = "p50_ms", p90Ms = "p90_ms", p99Ms = "p99_ms", maxMs = "max_ms"
            case meanMs = "mean_ms", minMs = "min_ms", modelMeanMs = "model_mean_ms", floorMs = "floor_ms"
        }
    }

    func run() throws {
        let o = try electionOptions()
        let results = ElectionTrials.run(o)
        if let path = csv {
            var text = "trial,crash_offset_ms,election_ms,new_leader,terms\n"
            for r in results {
                text += "\(r.trial),\(r.crashOffsetMs),\(r.electionMs.map { String($0) } ?? ""),\(r.newLeader.map(String.init) ?? ""),\(r.terms)\n"
            }
            guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else { throw Failure("could not write \(path)") }
        }
        // A trial whose crashed node no longer led times no election: counted apart, not in the figures.
        let times = results.filter(\.crashedTheLeader).compactMap(\.electionMs)
        let d = Distribution(times)
        let out = Output(trials: results.count, converged: times.count, splitVotes: results.filter { $0.crashedTheLeader && $0.terms > 1 }.count,
                         p50Ms: d?.percentile(50), p90Ms: d?.percentile(90), p99Ms: d?.percentile(99), maxMs: d?.max,
                         meanMs: d?.mean, minMs: d?.min, modelMeanMs: o.modelMeanMs, floorMs: o.floorMs,
                         preVote: o.preVote, checkQuorum: o.checkQuorum,
                         crashedAFormerLeader: results.filter { !$0.crashedTheLeader }.count, csv: csv)
        var traced: (ElectionTrial, [(ms: Double, line: String)])?
        if let selector = trace { traced = ElectionTrials.trace(o, trial: try Self.traced(selector, results).get()) }
        if json {
            var o = out
            o.trace = traced?.1.map { .init(ms: $0.ms, line: $0.line) }
            print(Render.json(o))
            return
        }
        let f = { (x: Double?) in x.map { Render.fixed($0, 1) } ?? "-" }
        print("election after a leader crash: \(o.servers) servers, timeouts \(o.electionMinMs)-\(o.electionMaxMs) ms, "
              + "heartbeat \(o.heartbeatMs) ms, one-way delay \(f(o.delayMs))±\(f(o.jitterMs)) ms, \(o.trials) trials (seed \(o.seed))"
              + (o.preVote && o.checkQuorum ? "" : "; pre-vote \(preVote.rawValue), check-quorum \(checkQuorum.rawValue)"))
        print("  converged: \(out.converged) of \(out.trials - out.crashedAFormerLeader) within \(o.limitMs) ms; \(out.splitVotes) needed more than one term")
        print("  time to a new leader, ms: min \(f(out.minMs))  p50 \(f(out.p50Ms))  p90 \(f(out.p90Ms))  p99 \(f(out.p99Ms))  max \(f(out.maxMs))  mean \(f(out.meanMs))")
        print("  model without split votes: mean \(f(o.modelMeanMs)) ms; floor \(f(o.floorMs)) ms")
        if out.crashedAFormerLeader > 0 {
            print("  \(out.crashedAFormerLeader) trials crashed a node that had already stepped down (check-quorum: no quorum heard "
                  + "within an election timeout): their times (0 when another node already led) are no election's, and are left "
                  + "out of the figures above (--trace min shows one)")
        }
        if let csv { print("  every trial: \(csv)") }
        if let (t, lines) = traced {
            print("\ntrial \(t.trial): crash \(Render.fixed(t.crashOffsetMs, 1)) ms into the heartbeat interval; "
                  + (t.electionMs.map { "new leader \(t.newLeader.map(String.init) ?? "?") after \(Render.fixed($0, 1)) ms, \(t.terms) term\(t.terms == 1 ? "" : "s")" }
                     ?? "no leader within \(o.limitMs) ms"))
            for l in lines { print("  \(l.ms >= 0 ? "+" : "")\(Render.fixed(l.ms, 3)) ms  \(l.line)") }
        }
    }
}
