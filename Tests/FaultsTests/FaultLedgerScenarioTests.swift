import Core
import ScenarioTesting
import Testing
@testable import Faults

/// Drives a `FaultLedger` from the scripts in testdata/ (see ScenarioScript for the format).
///   ledger deadline=1000
///   request f1 kill A t=0 [after=50] [for=200] [delay=100] [affected=A,B,C]
///   applied f1 apply_ns=30000 t=50 | refused f1 reason="..." t=50 | effect f1 t=51
///   deadline f1 reason="..." t=1050 | undo-due f1 t=250 | heal [A] t=300 | faults
///   due f1 t=50 (a scheduled fault's thread claims it) | cancel f1 [reason="..."] t=20
/// Times are milliseconds on the monotonic clock; events print their stamps in those ms.
final class FaultLedgerDriver {
    var ledger = FaultLedger(runID: "scenario", effectDeadlineMs: 1000)

    func run(_ c: ScenarioCommand) throws -> [String] {
        let t = Int64(try c.int("t", default: 0))
        let now = Stamp(wallMs: 1_700_000_000_000 + t, monoNs: t * 1_000_000)
        let input: FaultLedger.Input
        switch c.name {
        case "ledger":
            ledger = FaultLedger(runID: "scenario", effectDeadlineMs: try c.int("deadline"))
            return ["ok"]
        case "request":
            guard let kind = FaultKind(rawValue: try c.arg(1)), let node = NodeID(validating: try c.arg(2)) else {
                throw ScenarioError("request ID KIND NODE")
            }
            let spec = FaultSpec(kind: kind, node: node, afterMs: try c.int("after", default: 0),
                                 forMs: c.value("for").flatMap { Int($0) }, delayMs: c.value("delay").flatMap { Int($0) },
                                 jitterMs: nil, peers: nil)
            let affected = (c.value("affected") ?? node.rawValue).split(separator: ",").compactMap { NodeID(validating: String($0)) }
            input = .requested(id: try c.arg(0), spec: spec, affected: affected)
        case "applied": input = .applied(id: try c.arg(0), applyNs: Int64(try c.int("apply_ns", default: 0)))
        case "refused": input = .refused(id: try c.arg(0), reason: c.value("reason") ?? "?")
        case "effect": input = .effectSeen(id: try c.arg(0))
        case "deadline": input = .effectDeadlinePassed(id: try c.arg(0), reason: c.value("reason") ?? "?")
        case "undo-due": input = .undoDue(id: try c.arg(0))
        case "due": input = .due(id: try c.arg(0))
        case "cancel": input = .cancel(id: try c.arg(0), reason: c.value("reason") ?? "cancelled by request")
        case "heal": input = .heal(node: c.args.first.flatMap { NodeID(validating: $0) })
        case "process-ended":
            guard let node = NodeID(validating: try c.arg(0)) else { throw ScenarioError("bad node \(try c.arg(0))") }
            input = .processEnded(node: node, reason: c.value("reason") ?? "?")
        case "faults":
            let inForce = ledger.inForce.map { "in force: \($0.id) \($0.spec.kind.rawValue) \($0.spec.node) applied=\(ms($0.applied))" }
            return inForce + ["scheduled: \(ledger.scheduledCount)"]
                + ledger.scheduled.map { "scheduled: \($0.id) \($0.spec.kind.rawValue) \($0.spec.node) due=\($0.dueMonoNs / 1_000_000)" }
        default: throw ScenarioError("unknown command \(c.name)")
        }
        return ledger.step(input, at: now).map(render)
    }

    func ms(_ s: Stamp) -> String { String(s.monoNs / 1_000_000) }

    func render(_ effect: FaultLedger.Effect) -> String {
        switch effect {
        case .emit(let e):
            var s = "emit \(e.kind.rawValue) \(e.node.map(\.rawValue) ?? "-") \(e.faultID ?? "-") t=\(ms(e.stamp))"
            if let x = e.requested { s += " requested=\(ms(x))" }
            if let x = e.applied { s += " applied=\(ms(x))" }
            if let x = e.effect { s += " effect=\(ms(x))" }
            if let x = e.applyNs { s += " apply_ns=\(x)" }
            if let x = e.forMs { s += " for_ms=\(x)" }
            if let x = e.afterMs { s += " after_ms=\(x)" }
            if let r = e.reason { s += " reason=\"\(r)\"" }
            return s
        case .correlateApplied(let r): return "correlate-applied \(r.id) \(r.spec.kind.rawValue) \(r.spec.node) t_fail=\(ms(r.applied))"
        case .correlateCleared(let r): return "correlate-cleared \(r.id)"
        case .watchEffect(let id, let d): return "watch-effect \(id) until=\(d / 1_000_000)"
        case .armUndo(let id, let at): return "arm-undo \(id) at=\(at / 1_000_000)"
        case .undo(let id): return "undo \(id)"
        case .setPaused(let node, let p, let asOf): return "set-paused \(node) \(p) as_of=\(ms(asOf))"
        case .resetLinks(let node): return "reset-links \(node.map(\.rawValue) ?? "all")"
        }
    }
}

private let testdata = String(#filePath.dropLast("FaultLedgerScenarioTests.swift".count)) + "testdata"

@Test func faultLedgerScenarios() throws {
    let failures = try ScenarioScript.runAll(in: testdata) { let d = FaultLedgerDriver(); return d.run }
    #expect(failures.isEmpty, "\(failures.count) scenario block(s) differ:\n\(failures.joined(separator: "\n\n"))")
}
