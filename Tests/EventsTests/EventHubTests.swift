import Core
import Dispatch
import Testing
@testable import Events
#if canImport(Glibc)
import Glibc
#endif

private func tempPath(_ name: String) -> String { "/tmp/kvsup-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" }

/// The log's write(2) must not hold the hub's lock: a fault thread tells the correlator its
/// applied moment between the syscall and the effect poll, and used to wait behind a slow write.
@Test func aBlockedLogWriteDoesNotBlockTheCorrelator() throws {
    let fifo = tempPath("fifo")
    #expect(mkfifo(fifo, 0o600) == 0)
    defer { unlink(fifo) }
    let reader = open(fifo, O_RDONLY | O_NONBLOCK)
    let hub = try EventHub(logPath: fifo, useJournal: false, echoToStderr: false)
    // Fill the pipe so that the hub's next write blocks.
    let filler = open(fifo, O_WRONLY | O_NONBLOCK)
    let chunk = [UInt8](repeating: 0x20, count: 4096)
    while chunk.withUnsafeBytes({ write(filler, $0.baseAddress, $0.count) }) > 0 {}
    close(filler)

    let writerStarted = DispatchSemaphore(value: 0), writerDone = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        writerStarted.signal()
        // Stamped past the reorder window: due at once, so this publish writes it, and blocks in write(2).
        hub.publish(Event(kind: .nodeReady, runID: "t", node: NodeID(validating: "A"), at: Stamp(wallMs: 1, monoNs: monotonicNow() - 1_000_000_000)))
        writerDone.signal()
    }
    writerStarted.wait()
    #expect(writerDone.wait(timeout: .now() + .milliseconds(200)) == .timedOut, "the pipe was not full")

    let correlated = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        hub.faultApplied(id: "f1", kind: .kill, node: NodeID(validating: "B")!, affected: [], appliedMonoNs: 1)
        hub.publish(Event(kind: .nodeReady, runID: "t", node: NodeID(validating: "C"), at: Stamp(wallMs: 2, monoNs: monotonicNow() - 900_000_000)))  // queued, not written here
        correlated.signal()
    }
    let result = correlated.wait(timeout: .now() + .seconds(2))
    #expect(result == .success, "faultApplied/publish waited behind a blocked log write")

    // Unblock: read everything, then the writer finishes and writes the queued event too.
    var buffer = [UInt8](repeating: 0, count: 65536)
    var text: [UInt8] = []
    let deadline = monotonicNow() + 5_000_000_000
    while monotonicNow() < deadline {
        let n = read(reader, &buffer, buffer.count)
        if n > 0 { text += buffer[0..<n] }
        if String(decoding: text, as: UTF8.self).contains("\"node\":\"C\"") { break }
        usleep(1000)
    }
    #expect(writerDone.wait(timeout: .now() + .seconds(5)) == .success)
    if result == .timedOut { _ = correlated.wait(timeout: .now() + .seconds(5)) }
    let lines = String(decoding: text, as: UTF8.self).split(separator: "\n").filter { $0.contains("\"event\"") }
    #expect(lines.count == 2 && lines[0].contains("\"node\":\"A\"") && lines[1].contains("\"node\":\"C\""), "\(lines)")
    close(reader)
}

/// The log is in time order, whatever order the events arrived in; the history keeps arrival order.
@Test func concurrentPublishersGetOneLogInTimeOrder() throws {
    let path = tempPath("log")
    defer { unlink(path) }
    let hub = try EventHub(logPath: path, useJournal: false, echoToStderr: false)
    let group = DispatchGroup()
    for t in 0..<4 {
        DispatchQueue.global().async(group: group) {
            for i in 0..<250 {
                var e = Event(kind: .suspect, runID: "t\(t)", node: NodeID(validating: "A"))
                e.reason = "\(t)-\(i)"
                hub.publish(e)
            }
        }
    }
    group.wait()
    hub.close()
    let logged = try readLog(path)
    let history = hub.recent(EventHub.historySize, kinds: nil)
    #expect(logged.count == 1000)
    #expect(logged.map(\.tMonoNs) == logged.map(\.tMonoNs).sorted())
    #expect(Set(logged.suffix(history.count).map { $0.reason ?? "" }) == Set(history.map { $0.reason ?? "" }))
}

private func readLog(_ path: String) throws -> [Event] {
    let f = fopen(path, "r")!
    defer { fclose(f) }
    var logged: [Event] = []
    var line: UnsafeMutablePointer<CChar>? = nil
    var cap = 0
    while getline(&line, &cap, f) > 0 { logged.append(try Event.decode(jsonLine: String(cString: line!))) }
    free(line)
    return logged
}

/// A node's detection reaches the hub after a later event of the supervisor's; the log once kept
/// arrival order. Held for the reorder window, the two are written in the order they happened.
@Test func aLateArrivalIsWrittenInTimeOrderAndWithoutAnotherPublish() throws {
    let path = tempPath("order")
    defer { unlink(path) }
    let hub = try EventHub(logPath: path, useJournal: false, echoToStderr: false)
    let now = monotonicNow()
    hub.publish(Event(kind: .faultApplied, runID: "t", node: NodeID(validating: "B"), at: Stamp(wallMs: 1, monoNs: now)))
    hub.publish(Event(kind: .declaredDead, runID: "t", node: NodeID(validating: "A"), peer: NodeID(validating: "B"),
                      at: Stamp(wallMs: 1, monoNs: now - 30_000_000)))
    // No close and no further publish: the hub's own timer writes them once due.
    let deadline = monotonicNow() + 5_000_000_000
    var logged: [Event] = []
    while logged.count < 2 && monotonicNow() < deadline {
        usleep(10_000)
        logged = try readLog(path)
    }
    #expect(logged.map(\.kind) == [.declaredDead, .faultApplied])
    #expect(hub.recent(2, kinds: nil).map(\.kind) == [.faultApplied, .declaredDead], "subscribers and history get arrival order")
    hub.close()
}

/// A subscription made after close (an experiment whose run ended before its forwarder
/// subscribed) must end, with what it replays, not wait forever.
@Test func aSubscriptionToAClosedHubEndsAfterItsReplay() async throws {
    let path = tempPath("closed")
    defer { unlink(path) }
    let hub = try EventHub(logPath: path, useJournal: false, echoToStderr: false)
    hub.publish(Event(kind: .nodeReady, runID: "t", node: NodeID(validating: "A")))
    hub.close()
    let stream = hub.subscribe(kinds: nil, replay: 1)
    let received = await withTaskGroup(of: [Event]?.self) { group in
        group.addTask { var got: [Event] = []; for await e in stream { got.append(e) }; return got }
        group.addTask { try? await Task.sleep(for: .seconds(5)); return nil }
        let first = await group.next()!
        group.cancelAll()
        return first
    }
    #expect(received?.map(\.kind) == [.nodeReady], "the stream did not end within 5 s")
}

/// An election correlated before its kill was reported is named when the report comes, in the
/// log (it is still held for ordering) and in the history.
@Test func aLateKillReportNamesTheElectionStillHeld() throws {
    let path = tempPath("late")
    defer { unlink(path) }
    let hub = try EventHub(logPath: path, useJournal: false, echoToStderr: false)
    let now = monotonicNow()
    func elected(_ n: String, term: UInt64, at t: Int64) -> Event {
        var e = Event(kind: .leaderElected, runID: "t", node: NodeID(validating: n), at: Stamp(wallMs: 1, monoNs: t))
        e.term = term
        e.group = 0
        return e
    }
    hub.publish(elected("A", term: 1, at: now - 500_000_000))
    var lost = Event(kind: .leaderLost, runID: "t", node: NodeID(validating: "B"), at: Stamp(wallMs: 1, monoNs: now + 2_000_000))
    lost.group = 0
    hub.publish(lost)
    hub.publish(elected("B", term: 2, at: now + 28_000_000))
    hub.faultApplied(id: "f1", kind: .kill, node: NodeID(validating: "A")!, affected: [], appliedMonoNs: now)
    hub.close()
    let logged = try readLog(path).filter { $0.kind == .leaderElected }
    #expect(logged.map(\.faultID) == [nil, "f1"] && logged.last?.sinceLostMs == 28)
    #expect(hub.recent(1, kinds: [.leaderElected]).first?.faultID == "f1")
}

/// A fault told before its syscall and confirmed after: what the hub still holds moves from the
/// told stamp to the applied one (one t_fail per fault), and an event stamped before the applied
/// stamp keeps the told one (no negative latency).
@Test func aConfirmedFaultMovesTheEventsStillHeldToItsAppliedStamp() throws {
    let path = tempPath("confirm")
    defer { unlink(path) }
    let hub = try EventHub(logPath: path, useJournal: false, echoToStderr: false)
    defer { hub.close() }
    let t0 = monotonicNow()
    func at(_ ms: Int64, _ kind: EventKind, _ node: NodeID, _ set: (inout Event) -> Void) -> Event {
        var e = Event(kind: kind, runID: "t", node: node, at: Stamp(wallMs: 1, monoNs: t0 + ms * 1_000_000))
        set(&e)
        return e
    }
    hub.publish(at(0, .leaderElected, "A") { $0.term = 1; $0.leader = "A" })
    hub.faultApplying(id: "f1", kind: .kill, node: "A", affected: ["A"], atMonoNs: t0 + 10_000_000)
    hub.publish(at(11, .declaredDead, "C") { $0.peer = "A" })
    hub.publish(at(40, .leaderElected, "B") { $0.term = 2; $0.leader = "B" })
    hub.faultApplied(id: "f1", kind: .kill, node: "A", affected: ["A"], appliedMonoNs: t0 + 12_000_000)
    let events = hub.recent(10, kinds: [.declaredDead, .leaderElected])
    let dead = try #require(events.first { $0.kind == .declaredDead })
    let elected = try #require(events.last { $0.kind == .leaderElected })
    #expect(dead.faultID == "f1" && dead.tFailMonoNs == t0 + 10_000_000 && dead.detectionLatencyMs == 1)
    #expect(elected.faultID == "f1" && elected.tFailMonoNs == t0 + 12_000_000 && elected.sinceLostMs == 28)
}
