import Core
import Foundation
import Testing
@testable import ControlCLI

/// The load generator writes its PUT bodies by hand (one string per request, no encoder on the
/// hot path); they must still be the contract's PutRequest, byte for byte what kvnode decodes.
@Test func theLoadGeneratorsBodiesAreTheContractsPutRequests() throws {
    let config = LoadGenerator.Config(port: 1, api: .kvnode, operation: .put, clients: 4, durationMs: 1, valueBytes: 8, keys: 10,
                                      threads: 1, runToken: "t")
    let (_, path, body) = LoadGenerator.request(config, keys: LoadGenerator.keysByGroup(config), client: 3, n: 41, value: "vvvvvvvv")
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

/// With several groups, client c talks to group c mod G's leader and only about that group's keys.
@Test func withGroupsEachClientWritesItsGroupsKeysToItsLeader() {
    var config = LoadGenerator.Config(port: 1, api: .kvnode, operation: .put, clients: 6, durationMs: 1, valueBytes: 1, keys: 300,
                                      threads: 1, runToken: "t")
    config.groupPorts = [7001, 7002, 7003]
    let keys = LoadGenerator.keysByGroup(config)
    #expect(keys.map(\.count).reduce(0, +) == 300 && keys.allSatisfy { $0.count > 50 })
    for c in 0..<6 {
        #expect(LoadGenerator.port(config, client: c) == [7001, 7002, 7003][c % 3])
        for n in 0..<50 {
            let key = String(LoadGenerator.request(config, keys: keys, client: c, n: n, value: "v").1.dropFirst(4))
            #expect(KeyGroups.group(of: key, groups: 3) == c % 3, "client \(c) request \(n): \(key)")
        }
    }
}
