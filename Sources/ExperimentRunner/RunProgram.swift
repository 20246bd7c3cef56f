import Core
import Experiments

/// What a run carries out, by its spec's kind: its plan, its trials file, its outputs.
enum RunProgram: Sendable {
    case sweep(DetectionSweepSpec, SweepPlan)
    case failover(FailoverSpec, FailoverPlan)
    /// One history: its one "trial" is done once check.json is written.
    case linearizability(LinearizabilitySpec)

    init(_ spec: ExperimentSpec) {
        switch spec {
        case .detectionSweep(let s): self = .sweep(s, SweepPlan(s))
        case .failover(let s): self = .failover(s, FailoverPlan(s))
        case .linearizability(let s): self = .linearizability(s)
        }
    }

    var kind: String {
        switch self {
        case .sweep: "detection-sweep"
        case .failover: "failover"
        case .linearizability: "linearizability"
        }
    }

    var total: Int {
        switch self {
        case .sweep(_, let plan): plan.trials.count
        case .failover(_, let plan): plan.trials.count
        case .linearizability: 1
        }
    }

    var cellLabels: [String] {
        switch self {
        case .sweep(_, let plan): plan.cells.map(\.description)
        case .failover(_, let plan): plan.cells.map(FailoverSummary.cellName)
        case .linearizability: ["history"]
        }
    }

    var csvHeader: String {
        switch self {
        case .sweep: TrialsCSV.header
        case .failover: FailoverCSV.header
        case .linearizability: ""
        }
    }

    func doneCount(_ dir: RunDirectory) throws -> Int {
        switch self {
        case .sweep: try dir.trials().count
        case .failover: try dir.failoverTrials().count
        case .linearizability: dir.entries().contains("check.json") ? 1 : 0
        }
    }
}

/// Writes a run's tables, plots and reports into its run directory (at the end of every session,
/// so a cancelled or failed run has a partial report that says so), and returns what the last
/// reply carries.
enum RunOutputs {
    struct Results {
        var cells: [ControlProtocol.ExperimentCell]?
        var skipped: [String]?
        var summary: String?
        var verdict: String?
    }

    static func write(_ program: RunProgram, to dir: RunDirectory, manifest: RunManifest) throws -> Results {
        switch program {
        case .sweep(let spec, let plan):
            let summary = SweepSummary(spec: spec, plan: plan, records: try dir.trials())
            try SweepOutputs.write(to: dir, spec: spec, plan: plan, summary: summary, manifest: manifest)
            return Results(cells: summary.cells, skipped: plan.skipped.map(\.description))
        case .failover(let spec, let plan):
            let trials = try dir.failoverTrials()
            let files = FailoverReport.files(spec: spec, plan: plan, trials: trials,
                                             context: context(dir, manifest: manifest, total: plan.trials.count,
                                                              sessionTrials: { n in trials.filter { $0.session == n }.count }))
            for f in files { try dir.write(f.name, f.text) }
            return Results(summary: files.first { $0.name == "summary.txt" }?.text)
        case .linearizability(let spec):
            let files = LinearizabilityReport.files(spec: spec, read: { try? dir.read($0) }) { checked in
                context(dir, manifest: manifest, total: 1, sessionTrials: { _ in checked ? 1 : 0 })
            }
            for f in files { try dir.write(f.name, f.text) }
            let verdict = (try? LinearizabilityCheck.decode(dir.read("check.json")))?.verdict.rawValue
            return Results(summary: files.first { $0.name == "summary.txt" }?.text, verdict: verdict)
        }
    }

    static func context(_ dir: RunDirectory, manifest: RunManifest, total: Int, sessionTrials: (Int) -> Int) -> RunContext {
        RunContext(runID: manifest.runID, state: manifest.state, reason: manifest.reason, specText: (try? dir.read("spec.toml")) ?? "",
                   sessions: manifest.sessions.map { s in
                       .init(number: s.number, startedWallMs: s.startedWallMs, endedWallMs: s.endedWallMs, host: s.host,
                             trials: sessionTrials(s.number))
                   }, total: total)
    }
}
