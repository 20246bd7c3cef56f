import Testing
@testable import Experiments
import TOML

private func parse(_ text: String) throws(ConfigError) -> DetectionSweepSpec {
    guard case .detectionSweep(let s) = try ExperimentSpecParser.parse(text: text, file: "sweep.toml") else { fatalError() }
    return s
}

/// `text` with the line that starts `old` replaced by `new`.
private func replacing(_ text: String, line old: String, with new: String) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasPrefix(old) ? new : String($0) }
        .joined(separator: "\n")
}

private let issueSpec = """
    [experiment]
    kind = "detection-sweep"
    hb_interval_ms = [50, 100, 200]
    hb_timeout_ms = [200, 300, 500]
    trials = 20
    fault = "kill"            # kill | stop | delay
    delay_ms = 0
    detector = "fixed"
    nodes = 2
    seed = 1
    """

@Test func theIssuesSpecIsRead() throws {
    let s = try parse(issueSpec)
    #expect(s.intervalsMs == [50, 100, 200] && s.timeoutsMs == [200, 300, 500] && s.trials == 20)
    #expect(s.fault == .kill && s.detectors == [.fixed] && s.nodes == 2 && s.seed == 1 && s.phiThreshold == 8.0)
}

@Test func scalarsAndBothDetectorsAreAccepted() throws {
    let s = try parse("""
        [experiment]
        kind = "detection-sweep"
        hb_interval_ms = 100
        hb_timeout_ms = 200
        trials = 3
        fault = "delay"
        delay_ms = 20
        jitter_ms = 5
        detector = ["fixed", "phi"]
        phi_threshold = 6.5
        """)
    #expect(s.intervalsMs == [100] && s.timeoutsMs == [200] && s.detectors == [.fixed, .phi] && s.phiThreshold == 6.5)
    #expect(s.fault == .delay && s.delayMs == 20 && s.jitterMs == 5)
}

/// Each bad spec is refused with the key named (the issue's list, and more).
@Test(arguments: [
    ("hb_intervall_ms = [100]", "experiment.hb_intervall_ms", "did you mean 'hb_interval_ms'"),
    ("hb_interval_ms = []", "experiment.hb_interval_ms", "is empty"),
    ("hb_timeout_ms = [40, 50]", "experiment.hb_timeout_ms", "no cell has a timeout above its interval"),
    ("trials = 0", "experiment.trials", "1...100000"),
    ("fault = \"explode\"", "experiment.fault", "use kill, stop or delay"),
    ("fault = \"delay\"", "experiment.delay_ms", "needs delay_ms above 0"),
    ("delay_ms = 10", "experiment.delay_ms", "only applies to fault = \"delay\""),
    ("detector = \"psychic\"", "experiment.detector", "not a detector"),
    ("nodes = 1", "experiment.nodes", "2...16"),
    ("kind = \"chaos\"", "experiment.kind", "not an experiment kind"),
    ("hb_interval_ms = [100, 100]", "experiment.hb_interval_ms", "twice"),
])
func badSpecsNameTheKey(change: String, key: String, says: String) {
    let name = change.split(separator: " ").first.map(String.init)!
    var lines = issueSpec.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    if let i = lines.firstIndex(where: { $0.hasPrefix(name + " ") }) { lines[i] = change } else { lines.append(change) }
    do {
        _ = try parse(lines.joined(separator: "\n"))
        Issue.record("accepted: \(change)")
    } catch {
        #expect(error.key == key, "\(error)")
        #expect(error.description.contains(says), "\(error)")
        #expect(error.line != nil, "\(error)")
    }
}

@Test func aMissingTableOrTrialsIsSaid() {
    #expect(throws: ConfigError.self) { _ = try parse("[sweep]\nkind = \"detection-sweep\"\n") }
    do {
        _ = try parse(replacing(issueSpec, line: "trials = 20", with: ""))
        Issue.record("accepted a spec without trials")
    } catch {
        #expect(error.key == "experiment.trials" && error.description.contains("missing"))
    }
}

@Test func thePlanSkipsImpossibleCellsAndIsTheSameForTheSameSeed() throws {
    let spec = try parse(replacing(issueSpec, line: "hb_timeout_ms", with: "hb_timeout_ms = [100, 300]"))
    let plan = SweepPlan(spec)
    // 100 <= 100 and 100 <= 200 are impossible; 50/100, and every interval with 300, run.
    #expect(plan.skipped.map { "\($0.intervalMs)/\($0.timeoutMs)" } == ["100/100", "200/100"])
    #expect(plan.cells.map { "\($0.intervalMs)/\($0.timeoutMs)" } == ["50/100", "50/300", "100/300", "200/300"])
    #expect(plan.trials.count == 4 * 20)
    #expect(plan.trials.allSatisfy { $0.phaseUs >= 0 && $0.phaseUs < $0.cell.intervalMs * 1000 })
    #expect(SweepPlan(spec) == plan, "the same spec and seed give the same schedule")
    var other = spec
    other.seed = 2
    #expect(SweepPlan(other).trials.map { $0.phaseUs } != plan.trials.map { $0.phaseUs })
}

@Test func orderStatisticsAndTheory() {
    let xs = (1...100).map(Double.init)
    #expect(OrderStatistics.percentile(xs, 50) == 50 && OrderStatistics.percentile(xs, 99) == 99)
    let ci = OrderStatistics.medianCI(xs)!
    // Ranks 40 and 61 of 100: P(40 <= B <= 60) = 0.9648 for B ~ Bin(100, 1/2). The normal
    // approximation once gave 41..61, whose true coverage is 0.9431: not a 95% interval.
    #expect(ci.median == 50 && ci.low == 40 && ci.high == 61)
    #expect(abs(ci.coverage - 0.9648) < 0.0001 && ci.is95)
    #expect(abs(OrderStatistics.coverage(n: 100, k: 41) - 0.9431) < 0.0001)
    let theory = DetectionTheory(intervalMs: 100, timeoutMs: 200)
    #expect(theory.medianMs == 150 && theory.lowMs == 100 && theory.highMs == 200)
    #expect(theory.admits(204, slackMs: 5) && !theory.admits(206, slackMs: 5) && !theory.admits(94, slackMs: 5))
}

/// Fewer than 6 trials cannot give a 95% interval: [min, max] is all there is, with its true coverage.
@Test(arguments: [(1, 0.0), (2, 0.5), (4, 0.875), (5, 0.9375), (6, 0.96875)])
func smallSamplesSayTheirIntervalsTrueCoverage(n: Int, coverage: Double) {
    let xs = (1...n).map(Double.init)
    let ci = OrderStatistics.medianCI(xs)!
    #expect(ci.low == 1 && ci.high == Double(n))
    #expect(abs(ci.coverage - coverage) < 1e-9)
    #expect(ci.is95 == (n >= 6))
}
