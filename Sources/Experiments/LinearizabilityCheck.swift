#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Linearizability

/// A linearizability run's verdict, per key in parallel, with each failing key's counterexample;
/// kept as check.json so that the report can be written again from the run's files.
public struct LinearizabilityCheck: Sendable, Codable {
    public var verdict: Verdict
    public var operations: Int
    public var elapsedMs: Double
    /// Every key: its verdict and operation count; a failing key's counterexample too.
    public var reports: [KeyReport]

    enum CodingKeys: String, CodingKey { case verdict, operations, elapsedMs = "elapsed_ms", reports = "keys" }

    /// A key's history past this budget is `unknown`, never guessed.
    public static let timeLimitS = 120

    public static func run(_ history: [Operation<KVModel.Input, KVModel.Output>]) -> LinearizabilityCheck {
        let model = KVModel()
        let result = Checker.check(model, history, limits: CheckLimits(timeoutNs: Int64(timeLimitS) * 1_000_000_000))
        return LinearizabilityCheck(verdict: history.isEmpty ? .unknown : result.verdict, operations: history.count,
                                    elapsedMs: Double(result.elapsedNs) / 1e6,
                                    reports: Counterexample.reports(model, history, result).sorted { $0.key < $1.key })
    }

    public var json: String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: (try? e.encode(self)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
    }

    public static func decode(_ text: String) throws -> LinearizabilityCheck {
        try JSONDecoder().decode(LinearizabilityCheck.self, from: Data(text.utf8))
    }

    /// A key's counterexample page: the key, made safe for a file name.
    public static func pageName(_ key: String) -> String {
        "counterexample-" + String(key.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }) + ".html"
    }

    /// Every counterexample's operations, to mark on the timeline: the last three placed, and
    /// those that could not follow them.
    public var counterexampleOps: (context: Set<Timeline.Pair>, culprits: Set<Timeline.Pair>) {
        var context = Set<Timeline.Pair>(), culprits = Set<Timeline.Pair>()
        for r in reports where r.verdict == .notLinearizable {
            for op in r.longestPrefix.suffix(3) { context.insert(.init(client: op.client, invoke: op.invoke)) }
            for op in r.unplaceable { culprits.insert(.init(client: op.client, invoke: op.invoke)) }
        }
        return (context, culprits)
    }
}
