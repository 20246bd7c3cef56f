import Core
import Synchronization

/// An experiment's events in order, for one consumer that waits on them with deadlines: every
/// event passes through the caller's closure (so a trial sees the suspicions it did not ask for
/// too), and a wait ends at the first event the closure accepts or at the deadline.
final class EventFeed: Sendable {
    private struct State {
        var buffer: [Event] = []
        var waiter: CheckedContinuation<Void, Never>?
        var finished = false
    }
    private let state = Mutex(State())
    private let pump = Mutex<Task<Void, Never>?>(nil)

    init(_ stream: AsyncStream<Event>) {
        let task = Task { [weak self] in
            for await event in stream { self?.push(event) }
            self?.finish()
        }
        pump.withLock { $0 = task }
    }

    func close() { pump.withLock { $0?.cancel() }; finish() }

    private func push(_ event: Event) {
        let waiter = state.withLock { s in
            s.buffer.append(event)
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }

    private func finish() {
        let waiter = state.withLock { s in
            s.finished = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }

    private func wake() {
        let waiter = state.withLock { s in
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }

    /// Feeds events to `accept` until it returns true (then true) or `deadline` (monotonic ns)
    /// passes or the task is cancelled (false).
    func wait(until deadline: MonotonicNanos, _ accept: (Event) -> Bool) async -> Bool {
        while true {
            while let event = take() {
                if accept(event) { return true }
            }
            if state.withLock({ $0.finished }) || monotonicNow() >= deadline || Task.isCancelled { return false }
            let timer = Task { [weak self] in
                let ns = deadline - monotonicNow()
                if ns > 0 { try? await Task.sleep(for: .nanoseconds(ns)) }
                if !Task.isCancelled { self?.wake() }
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let now = state.withLock { s -> Bool in
                        if !s.buffer.isEmpty || s.finished || Task.isCancelled { return true }
                        s.waiter = c
                        return false
                    }
                    if now { c.resume() }
                }
            } onCancel: { self.wake() }
            timer.cancel()
        }
    }

    /// Drops what has arrived and not been read: events of earlier trials are not the next one's.
    func discardBuffered() { state.withLock { $0.buffer.removeAll() } }

    private func take() -> Event? {
        state.withLock { s in s.buffer.isEmpty ? nil : s.buffer.removeFirst() }
    }
}
