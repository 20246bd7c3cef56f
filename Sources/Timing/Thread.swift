#if canImport(Glibc)
import Glibc
#endif

/// Starts a detached OS thread, for work that must not share a task-pool worker: a child's
/// PR_SET_PDEATHSIG fires when the *thread* that forked it exits, so each child is spawned from,
/// and watched by, its own thread that ends only after the child is reaped; and timing threads
/// (fault scheduling, a node's beats and deadlines) must never wait behind other work.
public func startDetachedThread(_ body: @escaping @Sendable () -> Void) {
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        box.body()
        return nil
    }, context)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    pthread_detach(thread)
}
