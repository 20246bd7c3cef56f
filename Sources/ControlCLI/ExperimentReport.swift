#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ArgumentParser
import ConfigFile
import Core
import Experiments
#if canImport(Glibc)
import Glibc
#endif

/// kvctl experiment report RUN: every report file of a run rebuilt from its spec.toml and
/// trials.csv alone (run.json adds the sessions, final-reads.csv a failover run's last reads,
/// when they are there), as the original lab's separate
/// analysis tool read its log. No supervisor is needed when RUN is the run's directory.
struct ExperimentReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Rebuild a run's report files (report.md, report.html, summary.txt, plots) from its trials.csv.",
        discussion: """
            RUN is a run directory (runs/<run_id> under the supervisor's state directory), or a run id, \
            which the supervisor resolves. Prints the failover summary, or the sweep's report.md.
            """)
    @OptionGroup var connection: Connection
    @Argument(help: .init("A run directory, or a run id (kvctl experiment list).", valueName: "run")) var target: String

    func run() throws {
        let dir = try directory()
        func read(_ name: String) throws -> String {
            guard let text = readWholeFile(dir + "/" + name, limit: 256 << 20) else {
                throw Failure("cannot read \(dir)/\(name): \(String(cString: strerror(errno)))")
            }
            return text
        }
        let specText = try read("spec.toml")
        let spec: ExperimentSpec
        do { spec = try ExperimentSpecParser.parse(text: specText, file: dir + "/spec.toml") } catch { throw Failure("\(error)") }
        let manifest = (try? read("run.json")).flatMap { try? JSONDecoder().decode(Manifest.self, from: Data($0.utf8)) }
        let runID = manifest?.runID ?? String(dir.split(separator: "/").last ?? "run")
        let files: [ReportFile]
        let shown: String
        do {
            switch spec {
            case .detectionSweep(let s):
                let plan = SweepPlan(s)
                let records = try TrialsCSV.parse(try read("trials.csv"))
                let summary = SweepSummary(spec: s, plan: plan, records: records)
                files = SweepReport.files(spec: s, plan: plan, summary: summary, context: context(manifest, runID: runID, specText: specText,
                    total: plan.trials.count, done: records.count, trials: { n in records.filter { $0.session == n }.count }))
                shown = "report.md"
            case .failover(let s):
                let plan = FailoverPlan(s)
                var trials = try FailoverCSV.parse(try read("trials.csv"))
                if access(dir + "/final-reads.csv", R_OK) == 0 { trials = FinalReadsCSV.merge(try read("final-reads.csv"), into: trials) }
                files = FailoverReport.files(spec: s, plan: plan, trials: trials, context: context(manifest, runID: runID, specText: specText,
                    total: plan.trials.count, done: trials.count, trials: { n in trials.filter { $0.session == n }.count }))
                shown = "summary.txt"
            case .linearizability(let s):
                files = LinearizabilityReport.files(spec: s, read: { try? read($0) }) { checked in
                    context(manifest, runID: runID, specText: specText, total: 1, done: checked ? 1 : 0, trials: { _ in checked ? 1 : 0 })
                }
                shown = "summary.txt"
            }
        } catch let e as TrialsCSV.ParseError { throw Failure("\(dir)/trials.csv: \(e)") }
        for f in files { try write(dir + "/" + f.name, f.text) }
        if connection.json {
            print(Render.json(["directory": dir, "files": files.map(\.name).joined(separator: ",")]))
        } else {
            print(files.first { $0.name == shown }?.text ?? "", terminator: "")
            print("\nrebuilt in \(dir): " + files.map(\.name).joined(separator: ", "))
        }
    }

    private func directory() throws -> String { try runDirectory(target, connection) }

    /// Without run.json the state is what the trials say: finished when all are there, else
    /// interrupted (the partial report says so).
    private func context(_ m: Manifest?, runID: String, specText: String, total: Int, done: Int, trials: (Int) -> Int) -> RunContext {
        RunContext(runID: runID, state: m?.state ?? (done >= total ? .finished : .interrupted), reason: m?.reason, specText: specText,
                   sessions: (m?.sessions ?? []).map { .init(number: $0.number, startedWallMs: $0.startedWallMs, endedWallMs: $0.endedWallMs,
                                                             host: $0.host, trials: trials($0.number)) },
                   total: total)
    }

    /// What the report needs of run.json.
    private struct Manifest: Decodable {
        struct Session: Decodable { var number: Int; var startedWallMs: Int64; var endedWallMs: Int64?; var host: String }
        var runID: String
        var state: ControlProtocol.RunState
        var reason: String?
        var sessions: [Session]
    }

    private func write(_ path: String, _ text: String) throws { try writeWholeFile(path, text) }
}

/// A run's directory: `target` itself if it holds a spec, else the supervisor's answer for the id.
func runDirectory(_ target: String, _ connection: Connection) throws -> String {
    if access(target + "/spec.toml", R_OK) == 0 { return target.hasSuffix("/") ? String(target.dropLast()) : target }
    if target.contains("/") { throw Failure("\(target) holds no spec.toml: not a run directory") }
    let d = try connection.call("GetExperiment", ControlProtocol.RunIDParameter(runID: target), ControlProtocol.ExperimentDetail.self)
    return d.run.directory
}

/// Whole file by temp + rename, as the supervisor writes them.
func writeWholeFile(_ path: String, _ text: String) throws {
    let temp = path + ".kvctl-\(getpid()).tmp"  // never the supervisor's own temp name
    guard let f = fopen(temp, "w") else { throw Failure("cannot write \(temp): \(String(cString: strerror(errno)))") }
    let bytes = Array(text.utf8)
    let n = fwrite(bytes, 1, bytes.count, f)
    let closed = fclose(f) == 0
    guard n == bytes.count, closed, rename(temp, path) == 0 else {
        unlink(temp)
        throw Failure("cannot write \(path): \(String(cString: strerror(errno)))")
    }
}

/// kvctl experiment compare RUN RUN...: failover runs side by side, cell by cell.
struct ExperimentCompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Failover runs side by side: each delay's acknowledged writes that survived, and recovery, per run.",
        discussion: """
            Writes comparison.md and comparison.html to --out and prints comparison.md. Run the same delays in each, e.g. a \
            Raft run and a primary-backup run (mode = "primary-backup") of the same spec:
              kvctl experiment compare /var/lib/kvsupervisor/runs/exp-1 /var/lib/kvsupervisor/runs/exp-2 --out /tmp/cmp
            """)
    @OptionGroup var connection: Connection
    @Argument(help: .init("Two or more run directories or run ids of failover runs.", valueName: "run")) var targets: [String]
    @Option(help: "Directory for comparison.md and comparison.html.") var out = "."

    func validate() throws {
        if targets.count < 2 { throw ValidationError("give two or more runs to compare") }
    }

    func run() throws {
        var runs: [FailoverComparison.Run] = []
        for target in targets {
            let dir = try runDirectory(target, connection)
            func read(_ name: String) throws -> String {
                guard let text = readWholeFile(dir + "/" + name, limit: 256 << 20) else {
                    throw Failure("cannot read \(dir)/\(name): \(String(cString: strerror(errno)))")
                }
                return text
            }
            let spec: ExperimentSpec
            do { spec = try ExperimentSpecParser.parse(text: try read("spec.toml"), file: dir + "/spec.toml") } catch let e as Failure {
                throw e
            } catch { throw Failure("\(error)") }
            guard case .failover(let s) = spec else { throw Failure("\(dir) is a detection sweep; compare takes failover runs") }
            var trials: [FailoverTrial]
            do { trials = try FailoverCSV.parse(try read("trials.csv")) } catch let e as TrialsCSV.ParseError {
                throw Failure("\(dir)/trials.csv: \(e)")
            }
            if access(dir + "/final-reads.csv", R_OK) == 0 { trials = FinalReadsCSV.merge(try read("final-reads.csv"), into: trials) }
            runs.append(.init(runID: String(dir.split(separator: "/").last ?? "run"), spec: s, trials: trials))
        }
        let files = FailoverComparison.files(runs)
        for f in files { try writeWholeFile(out + "/" + f.name, f.text) }
        if connection.json {
            print(Render.json(["directory": out, "files": files.map(\.name).joined(separator: ",")]))
        } else {
            print(files[0].text, terminator: "")
            print("\nwritten in \(out): " + files.map(\.name).joined(separator: ", "))
        }
    }
}
