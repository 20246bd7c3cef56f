import TOML

/// What `kvctl experiment run FILE` asks the supervisor to run, validated. Specs are TOML:
///
///     [experiment]
///     kind = "detection-sweep"
///     hb_interval_ms = [50, 100, 200]
///     hb_timeout_ms = [200, 300, 500]
///     trials = 20
///     fault = "kill"        # kill | stop | delay
///     delay_ms = 0          # fault = "delay": added one-way latency (and jitter_ms)
///     detector = "fixed"    # fixed | phi | ["fixed", "phi"]; phi_threshold = 8.0
///     nodes = 2
///     seed = 1
public enum ExperimentSpec: Sendable, Equatable {
    case detectionSweep(DetectionSweepSpec)
    /// `kind = "failover"`: see `FailoverSpec`.
    case failover(FailoverSpec)
    /// `kind = "linearizability"`: see `LinearizabilitySpec`.
    case linearizability(LinearizabilitySpec)

    /// The detection sweep's settings; nil for another kind.
    public var sweep: DetectionSweepSpec? {
        if case .detectionSweep(let s) = self { return s }
        return nil
    }

    public var kind: String {
        switch self {
        case .detectionSweep: "detection-sweep"
        case .failover: "failover"
        case .linearizability: "linearizability"
        }
    }
}

public struct DetectionSweepSpec: Sendable, Equatable {
    public enum Fault: String, Sendable, CaseIterable { case kill, stop, delay }
    public enum Detector: String, Sendable, CaseIterable { case fixed, phi }

    public var intervalsMs: [Int]
    public var timeoutsMs: [Int]
    public var trials: Int
    public var fault: Fault
    public var delayMs: Int
    public var jitterMs: Int
    public var detectors: [Detector]
    public var phiThreshold: Double
    public var nodes: Int
    public var seed: UInt64
    /// fault = "delay": how long each trial keeps the delay on and counts mistakes.
    public var windowMs: Int

    public init(intervalsMs: [Int], timeoutsMs: [Int], trials: Int, fault: Fault = .kill, delayMs: Int = 0, jitterMs: Int = 0,
                detectors: [Detector] = [.fixed], phiThreshold: Double = 8.0, nodes: Int = 2, seed: UInt64 = 1,
                windowMs: Int = 5000) {
        self.intervalsMs = intervalsMs; self.timeoutsMs = timeoutsMs; self.trials = trials; self.fault = fault
        self.delayMs = delayMs; self.jitterMs = jitterMs; self.detectors = detectors; self.phiThreshold = phiThreshold
        self.nodes = nodes; self.seed = seed; self.windowMs = windowMs
    }
}

public enum ExperimentSpecParser {
    static let keys = ["kind", "hb_interval_ms", "hb_timeout_ms", "trials", "fault", "delay_ms", "jitter_ms", "detector",
                       "phi_threshold", "nodes", "seed", "window_ms"]
    public static let maxTrials = 100_000
    public static let maxCells = 1000

    /// Parses and validates a spec; every refusal names the file, the line and the key. The
    /// [experiment] table is read first, then its kind's own reader (one per kind, as kinds are added).
    public static func parse(text: String, file: String) throws(ConfigError) -> ExperimentSpec {
        let t = try SpecTable.experiment(text: text, file: file, keys: Array(Set(keys + failoverKeys + linearizabilityKeys)).sorted())
        let kinds = "\"detection-sweep\", \"failover\" or \"linearizability\""
        guard let kind = t.table["kind"] else { throw t.fail("kind", "missing: use kind = \(kinds)") }
        switch kind.string {
        case "detection-sweep":
            try t.only(keys, kind: "detection-sweep")
            return .detectionSweep(try detectionSweep(t))
        case "failover":
            try t.only(failoverKeys, kind: "failover")
            return .failover(try failover(t))
        case "linearizability":
            try t.only(linearizabilityKeys, kind: "linearizability")
            return .linearizability(try linearizability(t))
        default:
            throw t.fail("kind", "'\(kind.string ?? kind.typeName)' is not an experiment kind; use \(kinds)")
        }
    }

    static func detectionSweep(_ t: SpecTable) throws(ConfigError) -> DetectionSweepSpec {
        let (intervals, timeouts, trials) = try grid(t)
        let (fault, delay, jitter, window) = try fault(t)
        return DetectionSweepSpec(
            intervalsMs: intervals, timeoutsMs: timeouts, trials: trials, fault: fault, delayMs: delay, jitterMs: jitter,
            detectors: try detectors(t), phiThreshold: try t.number("phi_threshold", default: 8.0, above: 0, atMost: 100),
            nodes: try t.int("nodes", default: 2, 2...16), seed: UInt64(try t.int("seed", default: 1, 0...Int.max)), windowMs: window)
    }

    /// The cells (intervals x timeouts, at least one with the timeout above the interval) and the trials per cell.
    static func grid(_ t: SpecTable) throws(ConfigError) -> (intervals: [Int], timeouts: [Int], trials: Int) {
        let intervals = try t.ints("hb_interval_ms", min: 1)
        let timeouts = try t.ints("hb_timeout_ms", min: 1)
        guard intervals.contains(where: { i in timeouts.contains { $0 > i } }) else {
            throw t.fail("hb_timeout_ms", "no cell has a timeout above its interval (\(intervals) x \(timeouts)): every peer would be "
                         + "declared dead between beats")
        }
        guard t.table["trials"] != nil else { throw t.fail("trials", "missing: how many trials per cell") }
        let trials = try t.int("trials", default: 0, 1...maxTrials)
        guard intervals.count * timeouts.count <= maxCells else {
            throw t.fail("hb_timeout_ms", "\(intervals.count * timeouts.count) cells exceed the limit of \(maxCells)")
        }
        return (intervals, timeouts, trials)
    }

    /// The fault and, for a delay, its latency, jitter and mistake-counting window.
    static func fault(_ t: SpecTable) throws(ConfigError) -> (DetectionSweepSpec.Fault, delay: Int, jitter: Int, window: Int) {
        var fault = DetectionSweepSpec.Fault.kill
        if let v = t.table["fault"] {
            guard let f = v.string.flatMap(DetectionSweepSpec.Fault.init(rawValue:)) else {
                throw t.fail("fault", "'\(v.string ?? v.typeName)' is not a fault; use kill, stop or delay")
            }
            fault = f
        }
        let delay = try t.int("delay_ms", default: 0, 0...60_000)
        let jitter = try t.int("jitter_ms", default: 0, 0...60_000)
        if fault == .delay && delay == 0 {
            throw t.fail("delay_ms", "fault = \"delay\" needs delay_ms above 0 (the one-way latency added; jitter_ms varies it)")
        }
        if jitter > delay {
            throw t.fail("jitter_ms", "\(jitter) exceeds delay_ms (\(delay)): each message is delayed delay_ms +- jitter_ms")
        }
        if fault != .delay && (delay > 0 || jitter > 0) {
            throw t.fail(delay > 0 ? "delay_ms" : "jitter_ms", "only applies to fault = \"delay\"")
        }
        let window = try t.int("window_ms", default: 5000, 100...3_600_000)
        if t.table["window_ms"] != nil && fault != .delay { throw t.fail("window_ms", "only applies to fault = \"delay\"") }
        return (fault, delay, jitter, window)
    }

    /// fixed, phi, or both (each once, in the order given).
    static func detectors(_ t: SpecTable) throws(ConfigError) -> [DetectionSweepSpec.Detector] {
        guard let v = t.table["detector"] else { return [.fixed] }
        var detectors: [DetectionSweepSpec.Detector] = []
        for item in v.array ?? [v] {
            guard let d = item.string.flatMap(DetectionSweepSpec.Detector.init(rawValue:)) else {
                throw t.fail("detector", "'\(item.string ?? item.typeName)' is not a detector; use fixed, phi or [\"fixed\", \"phi\"]")
            }
            if !detectors.contains(d) { detectors.append(d) }
        }
        guard !detectors.isEmpty else { throw t.fail("detector", "is empty: use fixed, phi or both") }
        return detectors
    }
}

/// A spec's [experiment] table and the readers of its values; every refusal names the file, the
/// line and the key (`experiment.KEY`).
struct SpecTable {
    let table: TOMLTable
    let file: String
    /// How refusals name the table: `experiment`, or `experiment.nemesis[2]` for a nested one.
    var path = "experiment"

    /// The one [experiment] table of a spec, with no key outside `keys`.
    static func experiment(text: String, file: String, keys: [String]) throws(ConfigError) -> SpecTable {
        let root: TOMLTable
        do { root = try TOMLParser.parse(text) } catch {
            throw ConfigError(file: file, line: error.line, problem: "TOML syntax: \(error.message)")
        }
        for key in root.keys where key != "experiment" {
            throw ConfigError(file: file, line: root.line(of: key), key: key, problem: "unknown table or key; a spec has one [experiment] table")
        }
        guard let t = root["experiment"]?.table else {
            throw ConfigError(file: file, key: "experiment", problem: "missing: a spec is one [experiment] table")
        }
        let spec = SpecTable(table: t, file: file)
        for key in t.keys where !keys.contains(key) {
            let hint = closest(key, in: keys).map { " (did you mean '\($0)'?)" } ?? " (known: \(keys.joined(separator: ", ")))"
            throw spec.fail(key, "unknown key" + hint)
        }
        return spec
    }

    /// Every key belongs to `kind`'s list (another kind's key is named as such).
    func only(_ keys: [String], kind: String) throws(ConfigError) {
        for key in table.keys where !keys.contains(key) {
            throw fail(key, "is not a key of kind = \"\(kind)\" (its keys: \(keys.joined(separator: ", ")))")
        }
    }

    func fail(_ key: String?, _ problem: String) -> ConfigError {
        ConfigError(file: file, line: key.flatMap { table.line(of: $0) } ?? table.line,
                    key: key.map { "\(path).\($0)" } ?? path, problem: problem)
    }

    /// One number of milliseconds or a list of them, each in min...1 h, none twice.
    func ints(_ key: String, min: Int) throws(ConfigError) -> [Int] {
        guard let v = table[key] else { throw fail(key, "missing: give a number of milliseconds or a list of them") }
        let list = v.array ?? [v]
        guard !list.isEmpty else { throw fail(key, "is empty: give at least one value") }
        var out: [Int] = []
        for item in list {
            guard let n = item.int, n >= min, n <= 3_600_000 else {
                throw fail(key, "\(item.int.map(String.init) ?? item.typeName) is not a whole number of ms in \(min)...3600000")
            }
            out.append(n)
        }
        guard Set(out).count == out.count else { throw fail(key, "lists a value twice") }
        return out
    }

    func int(_ key: String, default d: Int, _ range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard let v = table[key] else { return d }
        guard let n = v.int, range.contains(n) else {
            throw fail(key, "\(v.int.map(String.init) ?? v.typeName) must be a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return n
    }

    func number(_ key: String, default d: Double, above low: Double, atMost high: Double) throws(ConfigError) -> Double {
        guard let v = table[key] else { return d }
        guard let x = v.double, x > low, x <= high else { throw fail(key, "must be a number in (\(Int(low)), \(Int(high))]") }
        return x
    }
}
