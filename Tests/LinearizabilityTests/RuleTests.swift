import Testing
@testable import Linearizability

private typealias R = RegisterModel
private typealias K = KVModel

private func reg(_ client: Int, _ invoke: Int64, _ complete: Int64?, _ input: R.Input, _ output: R.Output? = .done,
                 _ outcome: Outcome = .ok) -> Operation<R.Input, R.Output> {
    Operation(client: client, input: input, output: complete == nil ? nil : output,
              outcome: complete == nil ? .unknown : outcome, invoke: invoke, complete: complete)
}

private func kv(_ client: Int, _ key: String, _ invoke: Int64, _ complete: Int64?, _ input: K.Input,
                _ output: K.Output? = .done, _ outcome: Outcome = .ok) -> Operation<K.Input, K.Output> {
    Operation(client: client, key: key, input: input, output: complete == nil ? nil : output,
              outcome: complete == nil ? .unknown : outcome, invoke: invoke, complete: complete)
}

private func verdict(_ ops: [Operation<R.Input, R.Output>]) -> Verdict { Checker.check(R(), ops).verdict }
private func verdict(_ ops: [Operation<K.Input, K.Output>], initial: String? = nil) -> Verdict {
    Checker.check(K(initial: initial), ops).verdict
}

@Test func aConcurrentWriteMayOrMayNotBeVisible() {
    #expect(verdict([reg(0, 0, 10, .write(1)), reg(1, 2, 3, .read, .value(1))]) == .linearizable)
    #expect(verdict([reg(0, 0, 10, .write(1)), reg(1, 2, 3, .read, .value(nil))]) == .linearizable)
    // Once the write completed, a later read must see it.
    #expect(verdict([reg(0, 0, 1, .write(1)), reg(1, 2, 3, .read, .value(nil))]) == .notLinearizable)
    // Two reads that saw the write then not: no order allows it.
    #expect(verdict([reg(0, 0, 10, .write(1)), reg(1, 2, 3, .read, .value(1)), reg(1, 4, 5, .read, .value(nil))])
            == .notLinearizable)
}

@Test func casSucceedsOnlyOnItsExpectedValueAndFailsOnlyOffIt() {
    let w = reg(0, 0, 1, .write(1))
    #expect(verdict([w, reg(1, 2, 3, .cas(from: 1, to: 2)), reg(1, 4, 5, .read, .value(2))]) == .linearizable)
    #expect(verdict([w, reg(1, 2, 3, .cas(from: 1, to: 2), .done, .fail)]) == .notLinearizable, "the value was 1")
    #expect(verdict([w, reg(1, 2, 3, .cas(from: 7, to: 2), .done, .fail), reg(1, 4, 5, .read, .value(1))]) == .linearizable)
    #expect(verdict([w, reg(1, 2, 3, .cas(from: 7, to: 2))]) == .notLinearizable, "a cas from 7 cannot succeed on 1")
}

@Test func unknownOutcomesMayTakeEffectLaterOrNever() {
    let lost = reg(0, 0, nil, .write(1))  // timed out: never completed
    // Linearizable only if the unknown write took effect.
    #expect(verdict([lost, reg(1, 5, 6, .read, .value(1))]) == .linearizable)
    // ... or if it never did.
    #expect(verdict([lost, reg(1, 5, 6, .read, .value(nil))]) == .linearizable)
    // It may take effect long after its invocation, between two reads.
    #expect(verdict([lost, reg(1, 5, 6, .read, .value(nil)), reg(1, 7, 8, .read, .value(1))]) == .linearizable)
    // But it cannot be undone.
    #expect(verdict([lost, reg(1, 5, 6, .read, .value(1)), reg(1, 7, 8, .read, .value(nil))]) == .notLinearizable)
    // Nor take effect before it was invoked.
    #expect(verdict([reg(1, 1, 2, .read, .value(1)), reg(0, 5, nil, .write(1))]) == .notLinearizable)
    // An unknown cas: took effect only if its expected value was there.
    #expect(verdict([reg(0, 0, 1, .write(3)), reg(1, 2, nil, .cas(from: 3, to: 4)), reg(0, 5, 6, .read, .value(4))])
            == .linearizable)
    #expect(verdict([reg(0, 0, 1, .write(5)), reg(1, 2, nil, .cas(from: 3, to: 4)), reg(0, 5, 6, .read, .value(4))])
            == .notLinearizable)
}

@Test func readsOfAnAbsentKey() {
    #expect(verdict([kv(0, "a", 0, 1, .get, .value(nil))]) == .linearizable)
    #expect(verdict([kv(0, "a", 0, 1, .get, .value(""))]) == .notLinearizable, "absent is not the empty string")
    #expect(verdict([kv(0, "a", 0, 1, .get, .value(""))], initial: "") == .linearizable)
}

@Test func appendsConcatenateInTheirOrder() {
    let a = kv(0, "k", 0, 1, .append("a")), b = kv(1, "k", 2, 3, .append("b"))
    #expect(verdict([a, b, kv(2, "k", 4, 5, .get, .value("ab"))]) == .linearizable)
    #expect(verdict([a, b, kv(2, "k", 4, 5, .get, .value("ba"))]) == .notLinearizable)
    // Concurrent appends may land in either order.
    let c = kv(0, "k", 0, 10, .append("a")), d = kv(1, "k", 0, 10, .append("b"))
    #expect(verdict([c, d, kv(2, "k", 11, 12, .get, .value("ba"))]) == .linearizable)
}

@Test func deleteThenGet() {
    let put = kv(0, "k", 0, 1, .put("x")), del = kv(0, "k", 2, 3, .delete)
    #expect(verdict([put, del, kv(1, "k", 4, 5, .get, .value(nil))]) == .linearizable)
    #expect(verdict([put, del, kv(1, "k", 4, 5, .get, .value("x"))]) == .notLinearizable)
    #expect(verdict([put, del, kv(1, "k", 6, 7, .cas(expected: nil, new: "y")), kv(1, "k", 8, 9, .get, .value("y"))])
            == .linearizable)
}

@Test func keysAreCheckedAloneAndTheBadOneIsNamed() {
    let ops = [kv(0, "good", 0, 1, .put("1")), kv(1, "good", 2, 3, .get, .value("1")),
               kv(0, "bad", 0, 1, .put("1")), kv(1, "bad", 2, 3, .get, .value("2"))]
    let result = Checker.check(K(), ops)
    #expect(result.verdict == .notLinearizable)
    #expect(result.keys.map(\.key) == ["bad", "good"])
    let bad = result.keys[0]
    #expect(bad.verdict == .notLinearizable && bad.operations == 2)
    #expect(bad.longestPrefix == [0] && bad.unplaceable == [1], "put placed; the get of 2 cannot follow")
    #expect(result.keys[1].verdict == .linearizable)
}
