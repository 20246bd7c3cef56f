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

@Test func jsonValueKeepsIntegersExact() throws {
    let v: JSONValue = ["t": .number(1_795_316_610_595), "x": 1.5 == 1.5 ? .number(1.5) : .null]
    let text = String(decoding: try JSONEncoder().encode(v), as: UTF8.self)
    #expect(text.contains("1795316610595") && !text.contains("e+"))
    #expect(v["t"]?.intValue == 1_795_316_610_595)
}
