import ArgumentParser
import ConfigFile
import Core
import Linearizability
import Varlink
#if canImport(Glibc)
import Glibc
#endif

struct Experiment: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Run, resume, cancel and read experiments (the supervisor runs them).",
        subcommands: [Run.self, Trial.self, Resume.self, Cancel.self, List.self, Show.self, ExperimentReportCommand.self,
                      ExperimentCompareCommand.self])

    /// kvctl experiment run FILE
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run an experiment spec (TOML): progress, then the results table and the run directory.",
            discussion: """
                [experiment]              # a detection sweep
                kind = "detection-sweep"
                hb_interval_ms = [50, 100, 200]
                hb_timeout_ms = [200, 300, 500]
                trials = 20
                fault = "kill"            # kill | stop | delay (delay_ms, jitter_ms, window_ms)
                detector = "fixed"        # fixed | phi | ["fixed", "phi"]; phi_threshold = 8.0
                nodes = 2
                seed = 1

                [experiment]              # the failover-durability study
                kind = "failover"
                nodes = 3                 # 3 or 5; groups = 3
                kill_after_ms = [0, 10, 25, 50, 75, 100, 200]
                trials = 30               # per delay, after the ack and (in_flight = true) after the send
                rapid_sequential = 5      # then a cascade of leader kills; rapid_gap_ms = 0
                fault = "kill"            # kill | stop | partition of the key's leader
                sync = "fdatasync"        # election_ms, election_max_ms, raft_heartbeat_ms as in [cluster]

                [experiment]              # clients, a nemesis, and the history checked
                kind = "linearizability"
                mode = "raft"             # or "primary-backup"; nodes, groups and timing as for failover
                clients = 5
                keys = 8
                ops = { get = 4, put = 4, cas = 1, delete = 1, mput = 0 }
                rate = 200                # operations/s over all clients; 0: closed loop
                duration_s = 20
                read_policy = "linearizable"   # or "stale"
                op_timeout_ms = 1000      # past it an operation's outcome is unknown
                [[experiment.nemesis]]    # as many as you like
                fault = "partition"       # kill | stop | partition | delay (delay_ms, jitter_ms) | restart
                target = "leader"         # leader | key-leader | random | minority | majority | halves | a node id
                every_ms = 3000
                for_ms = 1500             # a killed node is started again after it

                The run goes on if kvctl is interrupted: kvctl experiment cancel stops it.
                Exit: 0 finished (and linearizable), 1 not finished or not linearizable, 3 unknown (a checker limit).
                """)
        @OptionGroup var connection: Connection
        @Argument(help: "The spec file.") var file: String

        func run() throws {
            guard let text = readWholeFile(file, limit: 1 << 20) else {
                throw Failure("cannot read \(file): \(errno == 0 ? "larger than 1 MiB" : String(cString: strerror(errno)))")
            }
            let last = try Stream.follow(connection, "RunExperiment", ControlProtocol.RunExperimentParameters(spec: text, file: file))
            try Stream.conclude(last, connection)
        }
    }

    /// kvctl experiment trial: the original injector's one trial.
    struct Trial: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "trial",
            abstract: "One detection trial; prints {\"t_fail\": ..., \"t_detect\": ..., \"detection_latency_ms\": ...}.",
            discussion: "Exit 0 only if the detection was seen. Times are wall ms since the epoch, as the original printed them.")
        @OptionGroup var connection: Connection
        @Option(name: .customLong("hb-interval-ms"), help: "Heartbeat interval.") var interval = 100
        @Option(name: .customLong("hb-timeout-ms"), help: "Detector timeout.") var timeout = 200
        @Option(help: "kill or stop.") var fault = "kill"
        @Option(help: "fixed or phi.") var detector = "fixed"
        @Option(help: "Seed of the fault's phase.") var seed = 1

        func validate() throws {
            guard ["kill", "stop"].contains(fault) else { throw ValidationError("--fault '\(fault)': use kill or stop") }
            guard ["fixed", "phi"].contains(detector) else { throw ValidationError("--detector '\(detector)': use fixed or phi") }
            guard seed >= 0 else { throw ValidationError("--seed must be 0 or more") }
            guard interval >= 1, timeout > interval else {
                throw ValidationError("--hb-timeout-ms (\(timeout)) must be greater than --hb-interval-ms (\(interval)), which must be at least 1")
            }
        }

        func run() throws {
            let spec = """
                [experiment]
                kind = "detection-sweep"
                hb_interval_ms = [\(interval)]
                hb_timeout_ms = [\(timeout)]
                trials = 1
                fault = "\(fault)"
                detector = "\(detector)"
                seed = \(seed)

                """
            let last = try Stream.follow(connection, "RunExperiment", ControlProtocol.RunExperimentParameters(spec: spec, file: "trial"),
                                         quiet: true)
            let t = last.lastTrial
            print("{\"t_fail\": \(t?.tFail.map(String.init) ?? "null"), \"t_detect\": \(t?.tDetect.map(String.init) ?? "null"), "
                  + "\"detection_latency_ms\": \(t?.detectionLatencyMs.map { String($0) } ?? "null")}")
            if last.state != .finished { throw Failure("trial \(last.state.rawValue): \(last.reason ?? "")") }
            if t?.outcome != "detected" { throw CommandExit(code: 1) }
        }
    }

    struct Resume: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "resume", abstract: "Continue an interrupted run from its last finished trial.")
        @OptionGroup var connection: Connection
        @Argument(help: "The run id (kvctl experiment list).") var runID: String
        func run() throws {
            let last = try Stream.follow(connection, "ResumeExperiment", ControlProtocol.RunIDParameter(runID: runID))
            try Stream.conclude(last, connection)
        }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Stop the running experiment; it writes a partial report.")
        @OptionGroup var connection: Connection
        @Argument(help: "The run id (default: whichever runs).") var runID: String?
        func run() throws {
            let r = try connection.call("CancelExperiment", ControlProtocol.RunIDParameter(runID: runID), ControlProtocol.CancelReply.self)
            print(connection.json ? Render.json(r) : "cancelling \(r.runID)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Every run in the state directory.")
        @OptionGroup var connection: Connection
        func run() throws {
            let runs = try connection.call("ListExperiments", ControlProtocol.ExperimentRuns.self).runs
            if connection.json { print(Render.json(runs)); return }
            print(Render.table(["RUN_ID", "KIND", "STATE", "TRIALS", "SESSIONS", "DIRECTORY"], runs.map {
                [$0.runID, $0.kind, $0.state.rawValue, "\($0.done)/\($0.total)", String($0.sessions), $0.directory]
            }))
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "One run's report (report.md), or with --json its figures.")
        @OptionGroup var connection: Connection
        @Argument(help: "The run id.") var runID: String
        func run() throws {
            let d = try connection.call("GetExperiment", ControlProtocol.RunIDParameter(runID: runID), ControlProtocol.ExperimentDetail.self)
            if connection.json { print(Render.json(d)); return }
            print("\(d.run.runID): \(d.run.state), \(d.run.done)/\(d.run.total) trials, \(d.run.directory)\n")
            print(d.report)
        }
    }
}

/// Following a run's replies: a progress bar on a terminal, plain lines otherwise.
enum Stream {
    static func follow<P: Encodable>(_ connection: Connection, _ method: String, _ parameters: P, quiet: Bool = false) throws
        -> ControlProtocol.ExperimentUpdate {
        let client = try connection.client()
        var reply = try client.call("io.kvsupervisor.\(method)", parameters, more: true,
                                    replying: ControlProtocol.ExperimentUpdate.self)
        let tty = isatty(2) == 1
        var announced = false
        while true {
            switch reply {
            case .error(let name, let p): throw Failure(Explain.error(name, p))
            case .reply(let u, let continues):
                if !quiet && !connection.json {
                    if !announced {
                        KVCtl.writeStandardError("experiment \(u.runID), session \(u.session): \(u.total - u.done) trials to run; "
                                 + "it goes on if kvctl stops (kvctl experiment cancel \(u.runID))\n")
                        announced = true
                    }
                    if continues { KVCtl.writeStandardError(tty ? "\r\u{1B}[K" + bar(u) : line(u) + "\n") } else if tty { KVCtl.writeStandardError("\r\u{1B}[K") }
                }
                if !continues { return u }
            }
            reply = try client.nextReply(as: ControlProtocol.ExperimentUpdate.self)
        }
    }

    /// The end of `run`/`resume`: the table and where the files are; exit 1 unless finished.
    static func conclude(_ u: ControlProtocol.ExperimentUpdate, _ connection: Connection) throws {
        if connection.json { print(Render.json(u)) } else if let summary = u.summary {
            print(summary, terminator: "")
            print("\n\(u.state): \(u.done)/\(u.total) trials in \(seconds(u.elapsedMs)) this session" + (u.reason.map { " (\($0))" } ?? ""))
            print(directoryLine(u))
        } else {
            print(table(u.results ?? []))
            if let skipped = u.skipped, !skipped.isEmpty {
                print("skipped (timeout not above interval): " + skipped.joined(separator: ", "))
            }
            print("\n\(u.state): \(u.done)/\(u.total) trials in \(seconds(u.elapsedMs)) this session"
                  + (u.reason.map { " (\($0))" } ?? ""))
            print(directoryLine(u))
        }
        if u.state != .finished { throw CommandExit(code: 1) }
        // A linearizability run's verdict, as `kvctl check` gives it: 1 not linearizable, 3 unknown.
        if let verdict = u.verdict, let v = Verdict(rawValue: verdict), let code = Check.exitCode(v) {
            throw CommandExit(code: code)
        }
    }

    /// Where the run is and what this kind wrote there, as it is on disk (a store's data left out).
    static func directoryLine(_ u: ControlProtocol.ExperimentUpdate) -> String {
        let files = directoryNames(u.directory).filter { !$0.hasPrefix("data-") }.sorted()
        return "run directory: \(u.directory)" + (files.isEmpty ? "" : " (" + files.joined(separator: ", ") + ")")
    }

    static func table(_ cells: [ControlProtocol.ExperimentCell]) -> String {
        func f(_ x: Double?) -> String { x.map { String(Double(($0 * 10).rounded()) / 10) } ?? "-" }
        // The interval's exact coverage beside it: 95% needs 6 trials, and fewer are not called 95%.
        return Render.table(["DETECTOR", "I_MS", "T_MS", "TRIALS", "MISSED", "FALSE_SUSP", "MEDIAN_MS", "INTERVAL", "COVERAGE", "THEORY",
                             "P99_MS", "MISTAKES/MIN"], cells.map { c in
            [c.detector, String(c.hbIntervalMs), String(c.hbTimeoutMs), String(c.trials), String(c.missed), String(c.falsePositives),
             f(c.medianMs), c.ciLowMs.map { "[\(f($0)), \(f(c.ciHighMs))]" } ?? "-",
             c.ciCoverage.map { "\(($0 * 1000).rounded() / 10)%" } ?? "-", f(c.theoryMedianMs), f(c.p99Ms), f(c.mistakesPerMin)]
        })
    }

    static func bar(_ u: ControlProtocol.ExperimentUpdate) -> String {
        let width = 30
        let filled = u.total > 0 ? width * u.done / u.total : 0
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            + "\(u.done)/\(u.total) cell \(u.cell)/\(u.cells) \(u.cellLabel)  \(seconds(u.elapsedMs))"
            + (u.remainingMs.map { " (about \(seconds($0)) left)" } ?? "")
    }

    static func line(_ u: ControlProtocol.ExperimentUpdate) -> String {
        var s = "\(u.done)/\(u.total) cell \(u.cell)/\(u.cells) \(u.cellLabel) elapsed \(seconds(u.elapsedMs))"
        if let r = u.remainingMs { s += " left ~\(seconds(r))" }
        if let t = u.lastTrial { s += ": \(t.outcome)" + (t.detectionLatencyMs.map { " \(String(format1($0))) ms" } ?? "") }
        return s
    }

    static func format1(_ x: Double) -> Double { (x * 10).rounded() / 10 }
    static func seconds(_ ms: Int64) -> String { ms >= 60_000 ? "\(ms / 60_000)m\((ms % 60_000) / 1000)s" : "\(Double(ms / 100) / 10)s" }
}
