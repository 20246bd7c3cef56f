import Core
import Testing
@testable import Daemon
@testable import Varlink
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

@Test func embeddedInterfaceMatchesTheIDLFile() throws {
    let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources/Daemon/io.kvsupervisor.varlink")
    let text = try String(decoding: Data(contentsOf: file), as: UTF8.self)
    #expect(text == InterfaceDescription.text + "\n", "run `make idl` after editing io.kvsupervisor.varlink")
}

@Test func callsAndRepliesUseTheVarlinkShape() throws {
    let call = try JSONDecoder().decode(VarlinkCall.self, from: Data(#"{"method":"io.kvsupervisor.Inject","parameters":{"node":"B","fault":"kill"},"more":true}"#.utf8))
    #expect(call.interface == "io.kvsupervisor")
    #expect(call.wantsMore)
    #expect(call.parameters?["node"]?.stringValue == "B")
    let bytes = VarlinkReply.failure("io.kvsupervisor.NoSuchNode", ["node": "Z"]).encoded()
    #expect(bytes.last == 0, "every message ends with one NUL")
    let back = try JSONDecoder().decode(VarlinkReply.self, from: Data(bytes.dropLast()))
    #expect(back.error == "io.kvsupervisor.NoSuchNode")
}

@Test func jsonValueKeepsIntegersExactPast2To53() throws {
    // 2^62 + 1: a Double would round it to 2^62 and write it as 4.611686018427388e+18.
    let big: Int64 = (1 << 62) + 1
    let v = try JSONDecoder().decode(JSONValue.self, from: Data("{\"t\": \(big), \"x\": 1.5}".utf8))
    #expect(v["t"] == .integer(big))
    #expect(v["x"] == .number(1.5))
    let text = String(decoding: try JSONEncoder().encode(v), as: UTF8.self)
    #expect(text.contains("4611686018427387905"), "\(text)")
}

@Test func typedRepliesKeepIntegersExact() throws {
    var event = Event(kind: .suspect, runID: "r", node: "A", peer: "B")
    event.tMonoNs = (1 << 62) + 1
    let frame = VarlinkReply.frame(ControlProtocol.EventReply(event: event), continues: true)
    #expect(frame.last == 0)
    let text = String(decoding: frame.dropLast(), as: UTF8.self)
    #expect(text.contains("\"t_mono_ns\":4611686018427387905"), "\(text)")
    #expect(text.contains("\"continues\":true"))
}

@Test(arguments: [
    (#"{"node": 5, "fault": "kill"}"#, "node", "must be a string"),
    (#"{"node": "B", "fault": "kill", "after_ms": "soon"}"#, "after_ms", "must be an integer"),
    (#"{"node": "B", "fault": "kill", "after_ms": 1.5}"#, "after_ms", ""),
    (#"{"node": "B", "fault": "partition", "peers": "A"}"#, "peers", "must be an array"),
    (#"{"node": "B", "fault": "partition", "peers": ["A", 3]}"#, "peers", "must be a string"),
    (#"{"fault": "kill"}"#, "node", "is required"),
])
func badParametersNameTheParameter(parameters: String, name: String, reason: String) throws {
    var call = VarlinkCall(method: "io.kvsupervisor.Inject")
    call.frame = Array(#"{"method":"io.kvsupervisor.Inject","parameters":\#(parameters)}"#.utf8)
    do {
        _ = try call.decodeParameters(ControlProtocol.InjectParameters.self)
        Issue.record("accepted \(parameters)")
    } catch {
        #expect(error.name == name, "\(error.name): \(error.reason)")
        #expect(error.reason.contains(reason), "\(error)")
    }
}

@Test func absentParametersDecodeAsEmpty() throws {
    var call = VarlinkCall(method: "io.kvsupervisor.ListEvents")
    call.frame = Array(#"{"method":"io.kvsupervisor.ListEvents"}"#.utf8)
    let q = try call.decodeParameters(ControlProtocol.EventQuery.self)
    #expect(q.limit == nil && q.kinds == nil)
}

@Test func connectionCountsKeepAWayInForPrivilegedUIDs() {
    var counts = ConnectionCounts(limits: .init(maxTotal: 4, maxPerUID: 2, privilegedReserve: 1), isPrivileged: { $0 == 0 })
    #expect(counts.admit(uid: 1000) == nil)
    #expect(counts.admit(uid: 1000) == nil)
    #expect(counts.admit(uid: 1000) == .tooManyForUID(uid: 1000, limit: 2))
    #expect(counts.admit(uid: 1001) == nil)
    #expect(counts.admit(uid: 1002) == nil)
    #expect(counts.admit(uid: 1003) == .tooManyInTotal(limit: 4))
    #expect(counts.admit(uid: 0) == nil, "root uses the reserve")
    #expect(counts.admit(uid: 0) == .tooManyInTotal(limit: 5))
    counts.release(uid: 1000)
    #expect(counts.count(uid: 1000) == 1 && counts.total == 4)
    #expect(counts.admit(uid: 1003) == .tooManyInTotal(limit: 4), "the reserve stays root's")
}
