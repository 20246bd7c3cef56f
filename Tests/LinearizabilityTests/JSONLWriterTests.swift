import Testing
@testable import Linearizability

/// What the writer writes, the reader reads back: the same operations, outcomes and order.
@Test func aWrittenHistoryReadsBackTheSame() throws {
    let ops: [Operation<KVModel.Input, KVModel.Output>] = [
        Operation(client: 0, key: "x", input: .put("a\"b\\c\n"), output: .done, outcome: .ok, invoke: 1, complete: 4),
        Operation(client: 1, key: "x", input: .get, output: .value("a\"b\\c\n"), outcome: .ok, invoke: 2, complete: 5),
        Operation(client: 2, key: "y", input: .cas(expected: nil, new: "n"), output: .done, outcome: .fail, invoke: 3, complete: 6),
        Operation(client: 0, key: "y", input: .delete, output: nil, outcome: .unknown, invoke: 7, complete: nil),
        Operation(client: 1, key: "x", input: .get, output: .value(nil), outcome: .ok, invoke: 8, complete: 9),
    ]
    let back = try JSONLHistory.parseKV(JSONLWriter.render(ops))
    #expect(back.count == ops.count)
    for (a, b) in zip(ops.sorted { $0.invoke < $1.invoke }, back) {
        #expect(a.client == b.client && a.key == b.key && a.input == b.input && a.outcome == b.outcome)
        #expect(a.invoke == b.invoke && a.complete == b.complete)
        if a.outcome == .ok { #expect(a.output == b.output) }
    }
    #expect(Checker.check(KVModel(), back).verdict == Checker.check(KVModel(), ops).verdict)
}

/// A write of several keys at once (the linearizability experiment's mput) is one operation per
/// key with the same process and times: it reads back (once refused: "client 3 invokes again").
@Test func aMultiKeyWriteReadsBackAsOneOperationPerKey() throws {
    let ops: [Operation<KVModel.Input, KVModel.Output>] = [
        Operation(client: 3, key: "a", input: .put("3-1"), output: .done, outcome: .ok, invoke: 10, complete: 20),
        Operation(client: 3, key: "b", input: .put("3-2"), output: .done, outcome: .ok, invoke: 10, complete: 20),
        Operation(client: 3, key: "a", input: .get, output: .value("3-1"), outcome: .ok, invoke: 30, complete: 40),
    ]
    let back = try JSONLHistory.parseKV(JSONLWriter.render(ops))
    #expect(back.map(\.key) == ["a", "b", "a"] && back.allSatisfy { $0.client == 3 && $0.outcome == .ok })
    #expect(Checker.check(KVModel(), back).verdict == .linearizable)
    // The same key twice at once is still refused.
    let twice = JSONLWriter.render([ops[0], Operation(client: 3, key: "a", input: .put("3-9"), output: .done, outcome: .ok, invoke: 10, complete: 20)])
    #expect(throws: HistoryError.self) { _ = try JSONLHistory.parseKV(twice) }
}
