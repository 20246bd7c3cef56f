/// io.kvsupervisor's experiment calls (RunExperiment, ResumeExperiment, CancelExperiment,
/// ListExperiments, GetExperiment) as types, shared by the daemon and kvctl.
extension ControlProtocol {
    public struct RunExperimentParameters: Codable, Sendable {
        /// The spec's TOML text; `file` names it in refusals.
        public var spec: String
        public var file: String?
        public init(spec: String, file: String?) { self.spec = spec; self.file = file }
    }

    public struct RunIDParameter: Codable, Sendable {
        public var runID: String?
        public init(runID: String?) { self.runID = runID }
        enum CodingKeys: String, CodingKey { case runID = "run_id" }
    }

    /// One trial's result as the original injector printed it (wall ms since the epoch).
    public struct ExperimentTrial: Codable, Sendable, Equatable {
        public var tFail: Int64?
        public var tDetect: Int64?
        public var detectionLatencyMs: Double?
        public var outcome: String
        public init(tFail: Int64?, tDetect: Int64?, detectionLatencyMs: Double?, outcome: String) {
            self.tFail = tFail; self.tDetect = tDetect; self.detectionLatencyMs = detectionLatencyMs; self.outcome = outcome
        }
        enum CodingKeys: String, CodingKey {
            case tFail = "t_fail", tDetect = "t_detect", detectionLatencyMs = "detection_latency_ms", outcome
        }
    }

    /// One cell's figures beside theory (a fixed detector's latency is uniform on [T - I, T]).
    public struct ExperimentCell: Codable, Sendable, Equatable {
        public var detector: String
        public var hbIntervalMs: Int
        public var hbTimeoutMs: Int
        public var trials: Int
        public var missed: Int
        public var falsePositives: Int
        public var medianMs: Double?
        public var ciLowMs: Double?
        public var ciHighMs: Double?
        /// The exact probability that [ci_low_ms, ci_high_ms] covers the true median (95% needs 6 trials or more).
        public var ciCoverage: Double?
        public var p99Ms: Double?
        public var theoryMedianMs: Double?
        public var mistakesPerMin: Double?
        public var meanMistakeMs: Double?
        public var queryAccuracy: Double?
        public init(detector: String, hbIntervalMs: Int, hbTimeoutMs: Int, trials: Int, missed: Int, falsePositives: Int,
                    medianMs: Double?, ciLowMs: Double?, ciHighMs: Double?, ciCoverage: Double? = nil, p99Ms: Double?, theoryMedianMs: Double?,
                    mistakesPerMin: Double?, meanMistakeMs: Double?, queryAccuracy: Double?) {
            self.detector = detector; self.hbIntervalMs = hbIntervalMs; self.hbTimeoutMs = hbTimeoutMs; self.trials = trials
            self.missed = missed; self.falsePositives = falsePositives; self.medianMs = medianMs; self.ciLowMs = ciLowMs
            self.ciHighMs = ciHighMs; self.ciCoverage = ciCoverage; self.p99Ms = p99Ms; self.theoryMedianMs = theoryMedianMs
            self.mistakesPerMin = mistakesPerMin; self.meanMistakeMs = meanMistakeMs; self.queryAccuracy = queryAccuracy
        }
        enum CodingKeys: String, CodingKey {
            case detector, hbIntervalMs = "hb_interval_ms", hbTimeoutMs = "hb_timeout_ms", trials, missed
            case falsePositives = "false_positives", medianMs = "median_ms", ciLowMs = "ci_low_ms", ciHighMs = "ci_high_ms", ciCoverage = "ci_coverage"
            case p99Ms = "p99_ms", theoryMedianMs = "theory_median_ms", mistakesPerMin = "mistakes_per_min"
            case meanMistakeMs = "mean_mistake_ms", queryAccuracy = "query_accuracy"
        }
    }

    /// A run's state. A run ends through `ending(_:)`, so the allowed moves are written once:
    /// running ends finished, cancelled, failed or interrupted; any but finished may run again
    /// (resume refuses a finished run).
    public enum RunState: String, Codable, Sendable, CaseIterable {
        case running, finished, cancelled, failed, interrupted

        public var isOver: Bool { self != .running }

        /// The state a running run ends in; a run already over keeps its state (and "ending" in
        /// running is no end: the state stays).
        public func ending(_ end: RunState) -> RunState {
            self == .running && end != .running ? end : self
        }

        /// How a run's state reads to someone listing runs: a run that says running but is not this
        /// supervisor's is one a dead supervisor left, so interrupted.
        public func asListed(activeHere: Bool) -> RunState { self == .running && !activeHere ? .interrupted : self }
    }

    /// A progress reply of a running experiment ("more"), and its last reply (state no longer running).
    public struct ExperimentUpdate: Codable, Sendable, Equatable {
        public var runID: String
        public var state: RunState
        public var session: Int
        public var done: Int
        public var total: Int
        public var cell: Int
        public var cells: Int
        public var cellLabel: String
        public var elapsedMs: Int64
        public var remainingMs: Int64?
        public var directory: String
        public var lastTrial: ExperimentTrial?
        public var results: [ExperimentCell]?
        /// Cells not run because their timeout is not above their interval.
        public var skipped: [String]?
        public var reason: String?
        /// A failover or linearizability run's plain-text summary (summary.txt), in the last reply.
        public var summary: String?
        /// A linearizability run's verdict (linearizable, not-linearizable, unknown), in the last reply.
        public var verdict: String?
        public init(runID: String, state: RunState, session: Int, done: Int, total: Int, cell: Int, cells: Int, cellLabel: String,
                    elapsedMs: Int64, remainingMs: Int64?, directory: String, lastTrial: ExperimentTrial? = nil,
                    results: [ExperimentCell]? = nil, skipped: [String]? = nil, reason: String? = nil, summary: String? = nil) {
            self.runID = runID; self.state = state; self.session = session; self.done = done; self.total = total
            self.cell = cell; self.cells = cells; self.cellLabel = cellLabel; self.elapsedMs = elapsedMs
            self.remainingMs = remainingMs; self.directory = directory; self.lastTrial = lastTrial; self.results = results
            self.skipped = skipped; self.reason = reason; self.summary = summary
        }
        enum CodingKeys: String, CodingKey {
            case runID = "run_id", state, session, done, total, cell, cells, cellLabel = "cell_label", elapsedMs = "elapsed_ms"
            case remainingMs = "remaining_ms", directory, lastTrial = "last_trial", results, skipped, reason, summary, verdict
        }
    }

    public struct ExperimentRun: Codable, Sendable, Equatable {
        public var runID: String
        public var kind: String
        public var state: RunState
        public var createdWallMs: Int64
        public var sessions: Int
        public var done: Int
        public var total: Int
        public var directory: String
        public init(runID: String, kind: String, state: RunState, createdWallMs: Int64, sessions: Int, done: Int, total: Int,
                    directory: String) {
            self.runID = runID; self.kind = kind; self.state = state; self.createdWallMs = createdWallMs
            self.sessions = sessions; self.done = done; self.total = total; self.directory = directory
        }
        enum CodingKeys: String, CodingKey {
            case runID = "run_id", kind, state, createdWallMs = "created_wall_ms", sessions, done, total, directory
        }
    }

    public struct ExperimentRuns: Codable, Sendable { public var runs: [ExperimentRun]; public init(runs: [ExperimentRun]) { self.runs = runs } }

    public struct ExperimentDetail: Codable, Sendable {
        public var run: ExperimentRun
        public var results: [ExperimentCell]
        /// report.md's text.
        public var report: String
        public init(run: ExperimentRun, results: [ExperimentCell], report: String) {
            self.run = run; self.results = results; self.report = report
        }
    }

    public struct CancelReply: Codable, Sendable {
        public var runID: String
        public init(runID: String) { self.runID = runID }
        enum CodingKeys: String, CodingKey { case runID = "run_id" }
    }
}
