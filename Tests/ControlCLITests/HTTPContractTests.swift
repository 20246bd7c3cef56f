import Core
import Foundation
import Testing
@testable import ControlCLI

/// The load generator writes its PUT bodies by hand (one string per request, no encoder on the
/// hot path); they must still be the contract's PutRequest, byte for byte what kvnode decodes.
@Test func theLoadGeneratorsBodiesAreTheContractsPutRequests() throws {
    let config = LoadGenerator.Config(port: 1, api: .kvnode, operation: .put, clients: 4, durationMs: 1, valueBytes: 8, keys: 10,
                                      threads: 1, runToken: "t")
    let (_, path, body) = LoadGenerator.request(config, client: 3, n: 41, value: "vvvvvvvv")
    let put = try JSONDecoder().decode(KVHTTP.PutRequest.self, from: Data(body))
    #expect(put == KVHTTP.PutRequest(client_id: "load-t-3", seq: KVHTTP.Seq(42), value: "vvvvvvvv"))
    #expect(path.hasPrefix("/kv/k"))
}

/// kvctl's CAS with --absent sends expected: null, never leaves it out (which kvnode refuses).
@Test func aCASOnAnAbsentKeySendsExpectedNull() throws {
    let text = String(decoding: try JSONEncoder().encode(KVHTTP.CASRequest(key: "k", expected: nil, value: "v")), as: UTF8.self)
    #expect(text.contains("\"expected\":null"))
    let back = try JSONDecoder().decode(KVHTTP.CASRequest.self, from: Data(text.utf8))
    #expect(back.expected == nil && back.value == "v")
}
