import Core
import Testing
@testable import Supervision

/// Which timers fired, in order, waiting at most `within` for `count` of them.
private func fired(_ count: Int, within: Duration, arming: (inout NodeTimers, @escaping @Sendable (String) -> Void) -> Void) async
    -> [String] {
    let (stream, sink) = AsyncStream.makeStream(of: String.self)
    var timers = NodeTimers()
    arming(&timers) { sink.yield($0) }
    return await withTaskGroup(of: [String].self) { group in
        group.addTask {
            var got: [String] = []
            for await label in stream {
                got.append(label)
                if got.count == count { break }
            }
            return got
        }
        group.addTask { try? await Task.sleep(for: within); sink.finish(); return [] }
        let first = await group.next() ?? []
        sink.finish()
        group.cancelAll()
        return first
    }
}

private let node = NodeID(validating: "A")!

/// `kvctl stop A`, then a SIGTERM to the daemon during A's grace: the second stop must not move
/// the SIGKILL later than the first promised.
@Test func aSecondStopDoesNotPostponeTheKill() async {
    let labels = await fired(1, within: .seconds(10)) { timers, fire in
        timers.armUnlessSooner(node, afterMs: 50) { fire("first stop") }
        timers.armUnlessSooner(node, afterMs: 60_000) { fire("second stop") }
    }
    #expect(labels == ["first stop"])
}

@Test func aSoonerStopTakesOverAndARestartReplaces() async {
    let sooner = await fired(1, within: .seconds(10)) { timers, fire in
        timers.armUnlessSooner(node, afterMs: 60_000) { fire("long grace") }
        timers.armUnlessSooner(node, afterMs: 50) { fire("short grace") }
    }
    #expect(sooner == ["short grace"])
    let replaced = await fired(1, within: .seconds(10)) { timers, fire in
        timers.arm(node, afterMs: 50) { fire("old restart") }
        timers.arm(node, afterMs: 100) { fire("new restart") }
    }
    #expect(replaced == ["new restart"])
}
