import NodeClient
import ArgumentParser
import Core
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// kvctl load: drive one store with a closed-loop load and print throughput and latency, as
/// etcdctl check perf does. No supervisor needed. Used by bench/raft_bench.py for kvnode and etcd alike.
struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Closed-loop HTTP load on kvnode or etcd (its v3 JSON gateway): throughput, p50/p99.",
        discussion: """
            kvctl load --port 7101 --op put --clients 64 --duration 10s
            kvctl load --api etcd --port 2379 --op get --clients 64 --duration 10s --json
            """)

    @Option(help: "Host of the node (the leader, for a fair comparison).") var host = "127.0.0.1"
    @Option(help: "Its HTTP port.") var port: Int
    @Option(help: "kvnode or etcd.") var api = "kvnode"
    @Option(help: "put (durable writes) or get (linearizable reads).") var op = "put"
    @Option(help: "Concurrent clients, one connection and one request in flight each.") var clients = 16
    @Option(parsing: .unconditional, help: "How long, e.g. 10s.") var duration = "10s"
    @Option(help: "Value size in bytes.") var valueBytes = 100
    @Option(help: "Distinct keys.") var keys = 1000
    @Option(help: "Event-loop threads of the generator.") var threads = 1
    @Flag(help: "kvnode with several Raft groups: ask --port's /status for each group's leader, and send each client to one group's leader with that group's keys.")
    var groupLeaders = false
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard LoadGenerator.API(rawValue: api) != nil else { throw ValidationError("--api '\(api)': use kvnode or etcd") }
        guard LoadGenerator.Operation(rawValue: op) != nil else { throw ValidationError("--op '\(op)': use put or get") }
        do { _ = try DurationText.wholeMilliseconds(duration, flag: "--duration", min: 1) } catch { throw ValidationError(error.description) }
        guard (1...4096).contains(clients) else { throw ValidationError("--clients must be 1-4096") }
        guard keys >= 1, valueBytes >= 0, valueBytes <= 1 << 20, (1...64).contains(threads) else {
            throw ValidationError("--keys >= 1, --value-bytes 0-1048576, --threads 1-64")
        }
    }

    struct Output: Encodable {
        var api: String, op: String, clients: Int
        var ok: Int, failed: Int
        var seconds: Double
        var per_second: Double
        var p50_ms: Double, p99_ms: Double, max_ms: Double
        var failures: [String: Int]
        /// With --group-leaders: the groups, and the port of each one's leader.
        var group_ports: [Int]?
    }

    /// The part of kvnode's /status this needs: each group's leader.
    private struct GroupsStatus: Decodable {
        struct Group: Decodable { var id: Int; var leader_addr: String? }
        var groups: [Group]?
    }

    private func groupPorts() throws -> [Int] {
        let r = try NodeHTTP.request(host: host, port: port, method: "GET", path: "/status")
        guard r.status == 200, let s = try? JSONDecoder().decode(GroupsStatus.self, from: Data(r.body)), let groups = s.groups else {
            throw Failure("--group-leaders: \(host):\(port)/status gave no groups (HTTP \(r.status)); is it a raft-mode kvnode?")
        }
        return try groups.sorted { $0.id < $1.id }.map { g in
            guard let addr = g.leader_addr, let p = addr.split(separator: ":").last.flatMap({ Int($0) }) else {
                throw Failure("--group-leaders: group \(g.id) has no leader right now; retry once every group has one (kvctl groups)")
            }
            return p
        }
    }

    func run() throws {
        var config = LoadGenerator.Config(
            host: host, port: port, api: LoadGenerator.API(rawValue: api)!, operation: LoadGenerator.Operation(rawValue: op)!,
            clients: clients, durationMs: DurationText.wholeMilliseconds(duration)!, valueBytes: valueBytes, keys: keys,
            threads: threads)
        if groupLeaders { config.groupPorts = try groupPorts() }
        let r: LoadGenerator.Result
        do { r = try LoadGenerator.run(config) } catch {
            throw Failure("cannot load \(host):\(port): \(error)")
        }
        let sorted = r.latencies.sorted()
        func pct(_ p: Double) -> Double {
            sorted.isEmpty ? 0 : Double(sorted[min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))]) / 1e6
        }
        let seconds = Double(r.elapsedNs) / 1e9
        let out = Output(api: api, op: op, clients: clients, ok: r.ok, failed: r.failed, seconds: seconds,
                         per_second: Double(r.ok) / seconds, p50_ms: pct(0.5), p99_ms: pct(0.99),
                         max_ms: Double(sorted.last ?? 0) / 1e6, failures: r.failures, group_ports: config.groupPorts)
        if json {
            print(Render.json(out))
        } else {
            print("\(api) \(op), \(clients) clients, \(Render.fixed(seconds, 1)) s: \(r.ok) ok (\(Render.fixed(out.per_second, 0))/s), "
                + "\(r.failed) failed; latency p50 \(Render.fixed(out.p50_ms, 2)) ms, p99 \(Render.fixed(out.p99_ms, 2)) ms, "
                + "max \(Render.fixed(out.max_ms, 2)) ms")
            for (what, count) in r.failures.sorted(by: { $0.value > $1.value }) { print("  \(count) x \(what)") }
        }
        if r.ok == 0 { throw ExitCode(1) }
    }
}
