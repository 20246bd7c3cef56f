import Core
import ScenarioTesting
import Testing
@testable import Supervision

/// Drives a `NodeTable` from the scripts in testdata/ (see ScenarioScript for the format).
///   config nodes=A,B restart=on-failure burst=5 interval=10000 restart_sec=100 max_delay=5000
///   start A t=0 | spawned A gen=1 pid=100 t=1 | spawn-failed A gen=1 reason="..." t=1
///   notify A gen=1 msg="READY=1" t=2 | exit A gen=1 code=1 t=3 | exit A gen=1 signal=9 t=3
///   stop A why=request|supervisor grace=3000 t=4 | grace-expired A gen=1 t=5
///   fault-ends A t=6 | paused A gen=1 paused=true t=7 | restart-due A token=1 t=8
///   reload restart=always ... t=9 | table
/// Times are milliseconds on the monotonic clock.
final class NodeTableDriver {
    var table = NodeTable(config: .default, runID: "scenario")
    var config = ClusterConfig.default

    func run(_ c: ScenarioCommand) throws -> [String] {
        let t = Int64(try c.int("t", default: 0))
        let now = Stamp(wallMs: 1_700_000_000_000 + t, monoNs: t * 1_000_000)
        func node() throws -> NodeID {
            guard let id = NodeID(validating: try c.arg(0)) else { throw ScenarioError("bad node id") }
            return id
        }
        let input: NodeTable.Input
        switch c.name {
        case "config", "reload":
            var cfg = c.name == "config" ? ClusterConfig.default : config
            if let nodes = c.value("nodes") {
                cfg.nodes = nodes.split(separator: ",").enumerated().map { i, n in
                    NodeConfig(id: NodeID(validating: String(n))!, port: 7101 + i, host: "127.0.0.1")
                }
            }
            if let r = c.value("restart") { cfg.restart = RestartMode(rawValue: r)! }
            cfg.startLimitBurst = try c.int("burst", default: cfg.startLimitBurst)
            cfg.startLimitIntervalMs = try c.int("interval", default: cfg.startLimitIntervalMs)
            cfg.restartSecMs = try c.int("restart_sec", default: cfg.restartSecMs)
            cfg.restartMaxDelayMs = try c.int("max_delay", default: cfg.restartMaxDelayMs)
            cfg.stopGraceMs = try c.int("grace", default: cfg.stopGraceMs)
            config = cfg
            if c.name == "config" {
                table = NodeTable(config: cfg, runID: "scenario")
                return ["ok"]
            }
            input = .reconfigure(cfg)
        case "start": input = .start(try node())
        case "spawned": input = .spawned(try node(), generation: try c.int("gen"), pid: Int32(try c.int("pid")))
        case "spawn-failed": input = .spawnFailed(try node(), generation: try c.int("gen"), reason: c.value("reason") ?? "?")
        case "notify": input = .notified(try node(), generation: try c.int("gen"), message: c.value("msg") ?? "")
        case "exit":
            let cause: ExitCause = c.value("signal") != nil
                ? .signaled(signal: Int32(try c.int("signal"))) : .exited(code: Int32(try c.int("code")))
            input = .exited(try node(), generation: try c.int("gen"), cause: cause)
        case "stop":
            let why: ExitExpectation = c.value("why") == "supervisor" ? .supervisorStopping : .stopRequested
            input = .stop(try node(), why, graceMs: try c.int("grace", default: config.stopGraceMs))
        case "grace-expired": input = .stopGraceExpired(try node(), generation: try c.int("gen"))
        case "fault-ends": input = .faultWillEndProcess(try node())
        case "paused": input = .pausedChanged(try node(), generation: try c.int("gen"), paused: c.value("paused") == "true")
        case "restart-due": input = .restartDue(try node(), token: try c.int("token"))
        case "table": return renderTable()
        default: throw ScenarioError("unknown command \(c.name)")
        }
        return try table.step(input, at: now).map(render)
    }

    func renderTable() -> [String] {
        table.order.compactMap { id in
            guard let e = table[id] else { return nil }
            var s = "\(id) state=\(e.state.rawValue) gen=\(e.generation) restarts=\(e.restarts)"
            if let pid = e.pid { s += " pid=\(pid)" }
            if let x = e.lastExit { s += " last_exit=\"\(x)\"" }
            if let x = e.expectation { s += " expecting=\"\(x.rawValue)\"" }
            if let t = e.restartToken { s += " restart_token=\(t)" }
            return s
        }
    }

    func render(_ effect: NodeTable.Effect) -> String {
        switch effect {
        case .spawn(let id, let g): return "spawn \(id) gen=\(g)"
        case .signal(let id, let g, let s): return "signal \(id) gen=\(g) \(SignalName.name(s))"
        case .armStopTimer(let id, let g, let ms): return "arm-stop-timer \(id) gen=\(g) after=\(ms)ms"
        case .scheduleRestart(let id, let token, let ms): return "schedule-restart \(id) token=\(token) after=\(ms)ms"
        case .cancelRestart(let id, let token): return "cancel-restart \(id) token=\(token)"
        case .release(let id, let g): return "release \(id) gen=\(g)"
        case .log(let id, let line): return "log \(id): \(line)"
        case .emit(let e): return Self.render(e)
        }
    }

    static func render(_ e: Event) -> String {
        var s = "emit \(e.kind.rawValue)"
        if let n = e.node { s += " \(n)" }
        if let p = e.peer { s += " peer=\(p)" }
        if let p = e.pid { s += " pid=\(p)" }
        if let c = e.exitCode { s += " exit_code=\(c)" }
        if let sig = e.signal { s += " signal=\(sig)" }
        if let ms = e.restartInMs { s += " restart_in_ms=\(ms)" }
        if let r = e.reason { s += " reason=\"\(r)\"" }
        return s
    }
}

private let testdata = String(#filePath.dropLast("NodeTableScenarioTests.swift".count)) + "testdata"

@Test func nodeTableScenarios() throws {
    let failures = try ScenarioScript.runAll(in: testdata) { let d = NodeTableDriver(); return d.run }
    #expect(failures.isEmpty, "\(failures.count) scenario block(s) differ:\n\(failures.joined(separator: "\n\n"))")
}

/// Seeded random schedules: any order of reports and commands keeps the table's invariants.
@Test(arguments: 0..<50)
func randomSchedulesKeepTheTableConsistent(seed: UInt64) throws {
    var rng = SplitMix64(seed: seed)
    var config = ClusterConfig.default
    config.restart = .always
    config.startLimitBurst = 4
    var table = NodeTable(config: config, runID: "rand")
    var pending: [NodeTable.Input] = []
    var nextPid: Int32 = 100
    var t: Int64 = 0
    for step in 0..<300 {
        t += Int64(rng.next() % 50)
        let now = Stamp(wallMs: t, monoNs: t * 1_000_000)
        let id = config.nodeIDs[Int(rng.next() % 3)]
        let input: NodeTable.Input
        if !pending.isEmpty && rng.next() % 2 == 0 {
            input = pending.remove(at: Int(rng.next() % UInt64(pending.count)))
        } else {
            switch rng.next() % 4 {
            case 0: input = .start(id)
            case 1: input = .stop(id, .stopRequested, graceMs: 100)
            case 2: input = .faultWillEndProcess(id)
            default:
                let g = table[id]?.generation ?? 0
                input = .exited(id, generation: g, cause: .signaled(signal: 9))
            }
        }
        let effects = (try? table.step(input, at: now)) ?? []
        for effect in effects {
            switch effect {
            case .spawn(let id, let g):
                nextPid += 1
                pending.append(.spawned(id, generation: g, pid: nextPid))
                pending.append(.notified(id, generation: g, message: "READY=1"))
            case .signal(let id, let g, let s) where s == 9 || s == 15:
                pending.append(.exited(id, generation: g, cause: .signaled(signal: s)))
            case .scheduleRestart(let id, let token, _):
                pending.append(.restartDue(id, token: token))
            case .armStopTimer(let id, let g, _):
                pending.append(.stopGraceExpired(id, generation: g))
            default: break
            }
        }
        for id in config.nodeIDs {
            let e = try #require(table[id])
            // A process is known only while the node is starting, ready or paused.
            if e.pid != nil {
                #expect([.starting, .ready, .paused].contains(e.state), "seed \(seed) step \(step): \(id) has pid in \(e.state) after \(input)")
            }
            #expect(e.registeredGeneration <= e.generation, "seed \(seed) step \(step)")
            // A restart is pending only for a node without a process.
            if e.restartToken != nil { #expect(e.pid == nil, "seed \(seed) step \(step): restart pending for a live node") }
        }
    }
}
