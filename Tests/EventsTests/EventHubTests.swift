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
        hub.publish(Event(kind: .nodeReady, runID: "t", node: NodeID(validating: "A")))  // blocks in write(2)
        writerDone.signal()
    }
    writerStarted.wait()
    #expect(writerDone.wait(timeout: .now() + .milliseconds(200)) == .timedOut, "the pipe was not full")

    let correlated = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        hub.faultApplied(id: "f1", kind: .kill, node: NodeID(validating: "B")!, affected: [], appliedMonoNs: 1)
        hub.publish(Event(kind: .nodeReady, runID: "t", node: NodeID(validating: "C")))  // queued, not written here
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

@Test func concurrentPublishersKeepOneOrderInLogAndHistory() throws {
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
    let f = fopen(path, "r")!
    defer { fclose(f) }
    var logged: [String] = []
    var line: UnsafeMutablePointer<CChar>? = nil
    var cap = 0
    while getline(&line, &cap, f) > 0 {
        logged.append(try Event.decode(jsonLine: String(cString: line!)).reason ?? "")
    }
    free(line)
    let history = hub.recent(EventHub.historySize, kinds: nil).map { $0.reason ?? "" }
    #expect(logged.count == 1000)
    #expect(Array(logged.suffix(history.count)) == history)
}
