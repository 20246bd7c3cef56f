import Core
import Experiments

extension FailoverStore {
    /// The value trial `index` wrote (the cascade's carry an r): what a read must find.
    static func writtenValue(startWallMs: Int64, index: Int, rapid: Bool) -> String {
        "v\(startWallMs)-\(rapid ? "r" : "")\(index)"
    }

    /// Every key of `rows` read once more, after every group's leader is back on its own node (a
    /// returning old leader gets its group back from the balancer a second after its catch-up):
    /// an acknowledged write must still be there, and a lost one must not have come back.
    func finalReads(_ rows: [FailoverTrial]) async -> [(FailoverTrial, FailoverTrial.Survival)] {
        try? await until("every group led by its preferred node", seconds: 10) { s in
            (0..<s.spec.groups).allSatisfy { s.settled($0) }
        }
        var out: [(FailoverTrial, FailoverTrial.Survival)] = []
        for row in rows {
            if Task.isCancelled { break }
            let value = Self.writtenValue(startWallMs: row.startWallMs, index: row.index, rapid: row.cell.scenario == .rapid)
            out.append((row, await readBack(row.key, group: row.group, value: value)))
        }
        return out
    }
}
