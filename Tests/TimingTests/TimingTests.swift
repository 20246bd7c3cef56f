import Core
import Testing
import Timing
#if canImport(Glibc)
import Glibc
#endif

private let ms: Int64 = 1_000_000

@Test func slotsKeepTheirPhaseWhenServedLate() {
    var slots = FixedRateSlots(start: 1000 * ms, intervalNs: 100 * ms)
    slots.served(at: 1003 * ms)  // 3 ms late
    #expect(slots.next == 1100 * ms, "a late beat must not push the next one back")
    slots.served(at: 1100 * ms)
    #expect(slots.next == 1200 * ms)
}

@Test func slotsMissedInAStallAreSkippedNotBurst() {
    var slots = FixedRateSlots(start: 0, intervalNs: 100 * ms)
    slots.served(at: 350 * ms)  // stalled through slots 100, 200 and 300
    #expect(slots.next == 400 * ms)
}

@Test func preciseWaitNeverReturnsEarly() {
    for spin in [Int64(0), 200_000, 2 * ms] {
        let deadline = monotonicNow() + 5 * ms
        PreciseClock.wait(until: deadline, spinNs: spin)
        #expect(monotonicNow() >= deadline, "returned before the deadline with spin \(spin) ns")
    }
}

@Test func wakeCutsATimingWaitersSleepShort() {
    let waiter = TimingWaiter()
    waiter.wake()  // a wake before the sleep counts: the eventfd stays readable
    let start = monotonicNow()
    waiter.sleep(until: start + 10_000 * ms)
    #expect(monotonicNow() - start < 5_000 * ms, "sleep ignored wake() and ran toward its 10 s deadline")
}

@Test func realtimeRunsAtFIFOExactlyWhenAllowedAndAlwaysRestores() {
    let rt = Realtime(priority: 1)
    let allowed = rt.unavailableReason() == nil
    #expect(!Realtime.callingThreadIsRealtime, "the probe must put the thread back")
    let inside = rt.run { Realtime.callingThreadIsRealtime }
    #expect(inside == allowed, "inside run: FIFO \(inside), probe said allowed \(allowed)")
    #expect(!Realtime.callingThreadIsRealtime, "run must return the thread to SCHED_OTHER")
    if geteuid() == 0 { #expect(allowed, "root may use SCHED_FIFO here: \(rt.unavailableReason() ?? "")") }
}

@Test func realtimePriorityZeroNeverSwitches() {
    let rt = Realtime(priority: 0)
    #expect(rt.unavailableReason() == "sched_priority is 0")
    #expect(rt.run { Realtime.callingThreadIsRealtime } == false)
}
