import Core
import Linearizability

/// One time axis for everything a run did: a lane per node (leadership as bands labelled with
/// group and term; down, paused, cut off or delayed as shading from the fault's applied moment to
/// its end; detections as marks on the detector's lane), a lane per client (each operation a bar
/// from invocation to completion, colored by outcome; a counterexample's operations outlined),
/// and throughput and latency below. Pure: built from events and operations, drawn as SVG a
/// window at a time so that a long run is split into readable pages.
public struct Timeline: Sendable {
    public enum SpanKind: String, Sendable { case leader, down, paused, cut, delayed }
    public struct Span: Sendable, Equatable {
        public var lane: String, from: Int64, to: Int64, kind: SpanKind, label: String
    }
    public struct Mark: Sendable, Equatable {
        public var lane: String, at: Int64, label: String
    }
    /// The lanes' contents added by hand (a trial drawn from its recorded instants, not events).
    public mutating func add(span: Span) { spans.append(span) }
    /// How a counterexample involves an operation: the one no order can place, or the last ones placed before it.
    public enum Role: Sendable, Equatable { case none, context, culprit }
    public struct Bar: Sendable, Equatable {
        public var client: Int, from: Int64, to: Int64?, outcome: Outcome, text: String, role: Role
    }

    public var start: Int64
    public var end: Int64
    public var nodes: [String]
    public var clients: [Int]
    public var spans: [Span] = []
    public var marks: [Mark] = []
    public var bars: [Bar] = []

    public init(start: Int64, end: Int64, nodes: [String], clients: [Int]) {
        self.start = start; self.end = max(end, start + 1); self.nodes = nodes; self.clients = clients
    }

    // MARK: From events

    /// Lanes from a run's events: what each node was (leader, down, paused, cut off, delayed)
    /// and when, and who declared whom dead.
    /// `deciders`: nodes whose leader_lost speaks for the group (primary-backup's coordinator,
    /// which names the node it lost); otherwise only a leader's own leader_lost ends its band (a
    /// follower's says it lost sight of the leader, which may lead on).
    public mutating func add(events: [Event], deciders: Set<String> = []) {
        var open: [String: (node: String, from: Int64, kind: SpanKind, label: String)] = [:]  // by fault id
        var downSince: [String: Int64] = [:]
        var leading: [Int: (node: String, from: Int64, label: String)] = [:]  // by group
        func close(group g: Int, at t: Int64) {
            if let l = leading.removeValue(forKey: g) { spans.append(Span(lane: l.node, from: l.from, to: t, kind: .leader, label: l.label)) }
        }
        for e in events.sorted(by: { $0.tMonoNs < $1.tMonoNs }) {
            let t = e.tMonoNs
            switch e.kind {
            case .nodeExited:
                guard let n = e.node?.rawValue else { continue }
                downSince[n] = downSince[n] ?? t
                for (g, l) in leading where l.node == n { close(group: g, at: t) }
            case .nodeStarted:
                guard let n = e.node?.rawValue, let since = downSince.removeValue(forKey: n) else { continue }
                spans.append(Span(lane: n, from: since, to: t, kind: .down, label: "down"))
            case .faultApplied:
                guard let n = e.node?.rawValue, let id = e.faultID, let kind = e.fault else { continue }
                let at = e.applied?.monoNs ?? t
                switch kind {
                case .stop: open[id] = (n, at, .paused, "paused")
                case .partition:
                    open[id] = (n, at, .cut, "cut off" + (e.peers.map { " from " + $0.map(\.rawValue).joined(separator: ",") } ?? "") + oneWay(e.direction))
                case .delay: open[id] = (n, at, .delayed, "delayed \(e.delayMs ?? 0)±\(e.jitterMs ?? 0) ms" + oneWay(e.direction))
                default: marks.append(Mark(lane: n, at: at, label: kind.rawValue))
                }
            case .faultCleared:
                guard let id = e.faultID, let o = open.removeValue(forKey: id) else { continue }
                spans.append(Span(lane: o.node, from: o.from, to: t, kind: o.kind, label: o.label))
            case .leaderElected:
                guard let n = (e.leader ?? e.node)?.rawValue else { continue }
                let g = e.group ?? 0
                close(group: g, at: t)
                leading[g] = (n, t, "g\(g) t\(e.term ?? 0)")
            case .leaderLost:
                guard let n = e.node?.rawValue, let band = leading[e.group ?? 0] else { continue }
                let mine = n == band.node && (e.leader?.rawValue ?? n) == n
                let decided = deciders.contains(n) && e.leader?.rawValue == band.node
                if mine || decided { close(group: e.group ?? 0, at: t) }
            case .declaredDead:
                guard let n = e.node?.rawValue, let p = e.peer?.rawValue else { continue }
                marks.append(Mark(lane: n, at: t, label: "declared \(p) dead"))
            default:
                continue
            }
        }
        for (_, o) in open { spans.append(Span(lane: o.node, from: o.from, to: end, kind: o.kind, label: o.label)) }
        for (n, since) in downSince { spans.append(Span(lane: n, from: since, to: end, kind: .down, label: "down")) }
        for g in leading.keys { close(group: g, at: end) }
        spans.sort { ($0.from, $0.lane) < ($1.from, $1.lane) }
    }

    private func oneWay(_ d: LinkDirection?) -> String {
        switch d {
        case .out: " (what it sends)"
        case .in: " (what it receives)"
        case nil: ""
        }
    }

    /// Client lanes from the history (a process p is client p % clients: Jepsen's renumbering after
    /// an unknown outcome); `highlight` holds (process, invoke) of the operations to outline.
    /// An operation with an unknown outcome is drawn for `unknownNs` (the client's timeout: when it gave up).
    public mutating func add<M: SequentialModel>(history: [Operation<M.Input, M.Output>], model: M, context: Set<Pair> = [],
                                                 culprits: Set<Pair> = [], unknownNs: Int64) {
        for op in history {
            bars.append(Bar(client: clients.isEmpty ? op.client : op.client % clients.count, from: op.invoke,
                            to: op.complete ?? op.invoke + unknownNs, outcome: op.outcome,
                            text: "process \(op.client) \(op.key): " + model.describe(op.input, op.output, outcome: op.outcome),
                            role: culprits.contains(Pair(client: op.client, invoke: op.invoke)) ? .culprit
                                : context.contains(Pair(client: op.client, invoke: op.invoke)) ? .context : .none))
        }
    }

    public struct Pair: Hashable, Sendable {
        public var client: Int, invoke: Int64
        public init(client: Int, invoke: Int64) { self.client = client; self.invoke = invoke }
    }

    // MARK: Drawing

    /// Windows of at most `seconds` covering the run.
    public func pages(seconds: Int) -> [(from: Int64, to: Int64)] {
        let step = Int64(max(1, seconds)) * 1_000_000_000
        var out: [(Int64, Int64)] = []
        var t = start
        while t < end { out.append((t, min(end, t + step))); t += step }
        return out
    }

    /// The window [from, to) as one SVG, `width` pixels wide, styles inside (it stands alone as a
    /// file too). `charts`: throughput and latency below the lanes. `numbered`: each mark gets a
    /// number, and a list under the lanes says what and when (for one trial's few moments).
    public func svg(from: Int64, to: Int64, width: Int = 1200, charts: Bool = true, numbered: Bool = false, title: String? = nil) -> String {
        let left = 90.0, right = 10.0, laneH = 20.0, clientH = 12.0, chartH = 70.0
        let w = Double(width) - left - right
        let span = Double(max(1, to - from))
        func x(_ t: Int64) -> Double { left + w * Double(min(max(t, from), to) - from) / span }
        func secs(_ t: Int64) -> String { fmt(Double(t - start) / 1e9, 1) }
        var y = title == nil ? 24.0 : 44.0
        var out: [String] = []
        if let title { out.append("<text x='4' y='16' class='title'>\(SVGPlots.escape(title))</text>") }
        // The axis: a tick every second (every 5 s past 20 s shown).
        // The first step that leaves at most 12 ticks across the window.
        let seconds = span / 1e9
        let tick = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60].first { seconds / $0 <= 12 } ?? 300
        let nodesTop = y
        let shownMarks = marks.filter { $0.at >= from && $0.at < to }.sorted { $0.at < $1.at }
        let listH = numbered ? 16.0 * Double(shownMarks.count) + 10 : 0
        let height = y + Double(nodes.count) * laneH + 10 + Double(clients.count) * clientH + 20 + (charts ? 2 * (chartH + 24) : 0) + listH + 10
        var t0 = (Double(from - start) / 1e9 / tick).rounded(.up) * tick
        while t0 <= Double(to - start) / 1e9 {
            let tx = x(start + Int64(t0 * 1e9))
            out.append("<line x1='\(fmt(tx))' y1='\(fmt(y - 6))' x2='\(fmt(tx))' y2='\(fmt(height - 10))' class='grid'/>"
                       + "<text x='\(fmt(tx))' y='\(fmt(y - 10))' class='tick'>\(fmt(t0, tick < 0.01 ? 3 : tick < 1 ? 2 : 0)) s</text>")
            t0 += tick
        }
        // Node lanes.
        for (i, n) in nodes.enumerated() {
            let ly = nodesTop + Double(i) * laneH
            out.append("<text x='4' y='\(fmt(ly + 14))' class='lane'>\(SVGPlots.escape(n))</text><line x1='\(fmt(left))' y1='\(fmt(ly + laneH))' x2='\(fmt(left + w))' y2='\(fmt(ly + laneH))' class='sep'/>")
            for s in spans where s.lane == n && s.to >= from && s.from < to {
                let x0 = x(s.from), x1 = max(x(s.to), x0 + 1)
                let inset = s.kind == .leader ? 2.0 : 5.0
                out.append("<rect x='\(fmt(x0))' y='\(fmt(ly + inset))' width='\(fmt(x1 - x0))' height='\(fmt(laneH - 2 * inset))' class='\(s.kind.rawValue)'>"
                           + "<title>\(SVGPlots.escape(n)) \(SVGPlots.escape(s.label)) \(secs(s.from))-\(secs(s.to)) s</title></rect>")
                if s.kind == .leader && x1 - x0 > 40 {
                    out.append("<text x='\(fmt(x0 + 3))' y='\(fmt(ly + 14))' class='band'>\(SVGPlots.escape(s.label))</text>")
                }
            }
            for (k, m) in shownMarks.enumerated() where m.lane == n {
                let mx = x(m.at)
                out.append("<path d='M\(fmt(mx - 4)),\(fmt(ly + 2)) l8,0 l-4,7 z' class='mark'><title>\(SVGPlots.escape(n)): \(SVGPlots.escape(m.label)) at \(secs(m.at)) s</title></path>")
                if numbered { out.append("<text x='\(fmt(mx + 3))' y='\(fmt(ly + 18 - Double(k % 2) * 7))' class='num'>\(k + 1)</text>") }
            }
        }
        y = nodesTop + Double(nodes.count) * laneH + 10
        // Client lanes.
        for (i, c) in clients.enumerated() {
            let ly = y + Double(i) * clientH
            out.append("<text x='4' y='\(fmt(ly + 10))' class='client'>client \(c)</text>")
            for b in bars where b.client == c && (b.to ?? to) >= from && b.from < to {
                let x0 = x(b.from), x1 = max(x(b.to ?? to), x0 + 1.5)
                let cls = b.outcome.rawValue + (b.role == .context ? " hl" : b.role == .culprit ? " culprit" : "")
                let tip = "<title>\(SVGPlots.escape(b.text)) \(secs(b.from))-\(b.to.map(secs) ?? "?") s\(b.role == .culprit ? " (no order can place it)" : "")</title>"
                out.append("<rect x='\(fmt(x0))' y='\(fmt(ly + 2))' width='\(fmt(x1 - x0))' height='\(fmt(clientH - 4))' class='\(cls)'>\(tip)</rect>")
                // A culprit is often a read of a few ms: an arrow above it finds it.
                if b.role == .culprit {
                    out.append("<path d='M\(fmt(x0 - 5)),\(fmt(ly - 7)) l10,0 l-5,8 z' class='culprit-mark'>\(tip)</path>")
                }
            }
            for (k, m) in shownMarks.enumerated() where m.lane == "client \(c)" {
                let mx = x(m.at)
                out.append("<path d='M\(fmt(mx - 3)),\(fmt(ly - 4)) l6,0 l-3,5 z' class='mark'><title>\(SVGPlots.escape(m.label))</title></path>")
                if numbered { out.append("<text x='\(fmt(mx + 3))' y='\(fmt(ly + 1 - Double(k % 2) * 6))' class='num'>\(k + 1)</text>") }
            }
        }
        y += Double(clients.count) * clientH + 20
        if numbered {
            for (k, m) in shownMarks.enumerated() {
                out.append("<text x='\(fmt(left))' y='\(fmt(y + 16 * Double(k)))' class='tick'>\(k + 1). \(SVGPlots.escape(m.lane)): "
                           + "\(SVGPlots.escape(m.label))</text>")
            }
            y += listH
        }
        guard charts else { return wrap(out, width: width, height: height) }
        // Throughput and latency per 100-ms bucket (or finer in a short window).
        let bucket = max(Int64(1_000_000), Int64(span / 100))
        let n = Int((to - from + bucket - 1) / bucket)
        var done = [Int](repeating: 0, count: n), worst = [Double](repeating: 0, count: n)
        for b in bars where b.outcome != .unknown {
            guard let c = b.to, c >= from, c < to else { continue }
            let k = Int((c - from) / bucket)
            done[k] += 1
            worst[k] = max(worst[k], Double(c - b.from) / 1e6)
        }
        let perSecond = done.map { Double($0) * 1e9 / Double(bucket) }
        out.append(chart(title: "completed operations per second", values: perSecond, top: y, height: chartH, left: left, width: w, unit: "/s"))
        y += chartH + 24
        out.append(chart(title: "slowest completed operation (ms)", values: worst, top: y, height: chartH, left: left, width: w, unit: " ms"))
        return wrap(out, width: width, height: height)
    }

    private func wrap(_ parts: [String], width: Int, height: Double) -> String {
        "<svg xmlns='http://www.w3.org/2000/svg' width='\(width)' height='\(Int(height))' class='timeline'><style>\(Self.css)</style>"
            + parts.joined() + "</svg>"
    }

    private func chart(title: String, values: [Double], top: Double, height: Double, left: Double, width: Double, unit: String) -> String {
        let peak = max(values.max() ?? 0, 1)
        let step = width / Double(max(values.count, 1))
        var d = ""
        for (i, v) in values.enumerated() {
            let px = left + Double(i) * step, py = top + height - height * v / peak
            d += (i == 0 ? "M" : "L") + "\(fmt(px)),\(fmt(py)) L\(fmt(px + step)),\(fmt(py)) "
        }
        return "<text x='\(fmt(left))' y='\(fmt(top - 4))' class='tick'>\(SVGPlots.escape(title)), peak \(fmt(peak, 0))\(unit)</text>"
            + "<rect x='\(fmt(left))' y='\(fmt(top))' width='\(fmt(width))' height='\(fmt(height))' class='frame'/>"
            + "<path d='\(d)' class='series'/>"
    }

    /// The page's styles: one place for the colors the legend names.
    public static let css = """
        svg.timeline { font: 11px sans-serif; background: #fff; }
        .title { font-size: 13px; font-weight: bold; } .grid { stroke: #eee; } .sep { stroke: #ddd; } .tick { fill: #555; } .lane { font-weight: bold; } .client { fill: #555; font-size: 9px; }
        .leader { fill: #cfe3ff; } .band { fill: #1d4f91; font-size: 10px; }
        .down { fill: #555; } .paused { fill: #f0a030; } .cut { fill: #e04848; fill-opacity: .75; } .delayed { fill: #e8d040; }
        .mark { fill: #7a1fa2; } .num { fill: #7a1fa2; font-size: 9px; font-weight: bold; }
        .ok { fill: #3a9d4a; } .fail { fill: #e39ab0; } .unknown { fill: #b9b9b9; }
        .hl { stroke: #000; stroke-width: 1.5; fill: #ffdd00; } .culprit { stroke: #d00000; stroke-width: 3; fill: #d00000; }
        .culprit-mark { fill: #d00000; }
        .frame { fill: none; stroke: #ccc; } .series { fill: none; stroke: #1d4f91; stroke-width: 1.2; }
        """

    public static let legend = """
        <p class='legend'><b>Nodes:</b> <span style='background:#cfe3ff'>leader (group, term)</span>
        <span style='background:#555;color:#fff'>down</span> <span style='background:#f0a030'>paused</span>
        <span style='background:#e04848;color:#fff'>cut off</span> <span style='background:#e8d040'>delayed</span>
        <span style='color:#7a1fa2'>&#9660; fault or detection</span>.
        <b>Clients:</b> <span style='background:#3a9d4a;color:#fff'>ok</span> <span style='background:#e39ab0'>failed</span>
        <span style='background:#b9b9b9'>unknown</span> <span style='background:#ffdd00;border:2px solid #000'>last placed before the counterexample</span>
        <span style='color:#d00000'>&#9660; the operation no order can place</span>.
        Hover for details.</p>
        """
}

private func fmt(_ v: Double, _ digits: Int = 1) -> String { FixedText.fixed(v, digits) }
