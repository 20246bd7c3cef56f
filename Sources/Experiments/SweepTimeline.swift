import Core

/// A detection sweep's one trial on the lab's timeline (the drawing linearizability runs use):
/// the monitored node down or paused from the fault, the detector's declaration marked, with the
/// detector's interval and timeout in the title. The trial shown: the first cell's median detection.
public enum SweepTimeline {
    public static func exemplar(_ records: [TrialRecord]) -> TrialRecord? {
        guard let first = records.first?.cell else { return nil }
        let detected = records.filter { $0.cell == first && $0.outcome == .detected && $0.failMonoNs != nil && $0.detectMonoNs != nil }
            .sorted { ($0.latencyMs ?? 0) < ($1.latencyMs ?? 0) }
        return detected.isEmpty ? nil : detected[detected.count / 2]
    }

    public static func svg(_ r: TrialRecord) -> String? {
        guard let fail = r.failMonoNs, let detect = r.detectMonoNs, r.fault != .delay else { return nil }
        let interval = Int64(r.cell.intervalMs) * 1_000_000, timeout = Int64(r.cell.timeoutMs) * 1_000_000
        // From a whole timeout before the fault (the last beats) to a little after the detection.
        let start = fail - timeout, end = detect + max(interval, (detect - fail) / 10)
        var tl = Timeline(start: start, end: end, nodes: ["detector", "monitored"], clients: [])
        tl.add(span: .init(lane: "monitored", from: fail, to: end, kind: r.fault == .kill ? .down : .paused, label: r.fault.rawValue))
        func ms(_ ns: Int64) -> String { FixedText.fixed(Double(ns - fail) / 1e6, 2) + " ms" }
        tl.marks.append(.init(lane: "monitored", at: fail, label: "\(r.fault.rawValue) applied: 0 ms (t_fail)"))
        tl.marks.append(.init(lane: "detector", at: detect, label: "declared monitored dead: \(ms(detect)) (\(r.cell.detector.rawValue), "
                              + "beats every \(r.cell.intervalMs) ms, timeout \(r.cell.timeoutMs) ms)"))
        return tl.svg(from: start, to: end, width: 1000, charts: false, numbered: true,
                      title: "\(r.cell), trial \(r.index + 1): \(r.fault.rawValue) of the monitored node, detected after \(ms(detect))")
    }
}
