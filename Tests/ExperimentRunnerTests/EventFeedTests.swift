import Core
import Testing
@testable import ExperimentRunner

private func event(_ kind: EventKind, _ node: NodeID) -> Event { Event(kind: kind, runID: "t", node: node, at: .now()) }

@Test func aWaitSeesEveryEventUntilItsMatchAndKeepsTheRest() async {
    let (stream, sink) = AsyncStream.makeStream(of: Event.self)
    let feed = EventFeed(stream)
    defer { feed.close() }
    sink.yield(event(.nodeStarted, "a"))
    sink.yield(event(.nodeReady, "a"))
    sink.yield(event(.nodeReady, "b"))
    var seen: [EventKind] = []
    let found = await feed.wait(until: monotonicNow() + 5_000_000_000) { e in seen.append(e.kind); return e.kind == .nodeReady }
    #expect(found && seen == [.nodeStarted, .nodeReady])
    var rest: [NodeID?] = []
    // A wait whose deadline has passed still sees what is buffered.
    _ = await feed.wait(until: 0) { rest.append($0.node); return false }
    #expect(rest == ["b"])
}

// Upper bounds are time limits, not assertions: with every test of the package running at once
// on two cores, the cooperative pool that runs the deadline's timer can be busy for seconds.
@Test(.timeLimit(.minutes(1))) func aWaitEndsAtItsDeadlineWithoutEvents() async {
    let (stream, _) = AsyncStream.makeStream(of: Event.self)
    let feed = EventFeed(stream)
    defer { feed.close() }
    let start = monotonicNow()
    let found = await feed.wait(until: start + 50_000_000) { _ in true }
    #expect(!found && monotonicNow() - start >= 50_000_000)
}

@Test(.timeLimit(.minutes(1))) func anEventArrivingDuringTheWaitEndsIt() async {
    let (stream, sink) = AsyncStream.makeStream(of: Event.self)
    let feed = EventFeed(stream)
    defer { feed.close() }
    let later = Task {
        try? await Task.sleep(for: .milliseconds(20))
        sink.yield(event(.declaredDead, "a"))
    }
    let found = await feed.wait(until: monotonicNow() + 600_000_000_000) { $0.kind == .declaredDead }
    #expect(found)
    await later.value
}

/// The wait's deadline is ten minutes away: only the cancellation can end it within the limit.
@Test(.timeLimit(.minutes(1))) func cancellingTheWaitingTaskEndsTheWait() async {
    let (stream, _) = AsyncStream.makeStream(of: Event.self)
    let feed = EventFeed(stream)
    defer { feed.close() }
    let waiter = Task { await feed.wait(until: monotonicNow() + 600_000_000_000) { _ in true } }
    try? await Task.sleep(for: .milliseconds(20))
    waiter.cancel()
    #expect(await waiter.value == false)
}
