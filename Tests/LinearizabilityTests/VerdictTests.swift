import Foundation
import Testing
@testable import Linearizability

/// testdata/ is a copy of ../shared/data/linearizability (Porcupine's test histories, MIT; see its README).
private let testdata = String(#filePath.dropLast("VerdictTests.swift".count)) + "testdata"

private func verdicts(_ folder: String) throws -> [(file: String, expected: Verdict)] {
    let text = try String(contentsOfFile: "\(testdata)/\(folder)/verdicts.tsv", encoding: .utf8)
    return text.split(separator: "\n").dropFirst().map { line in
        let f = line.split(separator: "\t")
        return (String(f[0]), Verdict(rawValue: String(f[1]))!)
    }
}

@Test func jepsenEtcdVerdictsMatchPorcupines() throws {
    let cases = try verdicts("jepsen-etcd")
    #expect(cases.count == 50)
    var wrong: [String] = []
    var totalNs: Int64 = 0
    var slowest = ("", Int64(0))
    for c in cases {
        let ops = try JepsenLog.parse(try String(contentsOfFile: "\(testdata)/jepsen-etcd/\(c.file)", encoding: .utf8))
        let result = Checker.check(RegisterModel(), ops)
        totalNs += result.elapsedNs
        if result.elapsedNs > slowest.1 { slowest = (c.file, result.elapsedNs) }
        if result.verdict != c.expected { wrong.append("\(c.file): expected \(c.expected.rawValue), got \(result.verdict.rawValue)") }
    }
    print("jepsen-etcd: 50 histories checked in \(totalNs / 1_000_000) ms; slowest \(slowest.0) \(slowest.1 / 1_000_000) ms")
    #expect(wrong.isEmpty, "\(wrong.joined(separator: "\n"))")
}

@Test func kvVerdictsMatchPorcupines() throws {
    for c in try verdicts("kv") {
        let ops = try EDNHistory.parse(try String(contentsOfFile: "\(testdata)/kv/\(c.file)", encoding: .utf8))
        let result = Checker.check(KVModel(initial: ""), ops)
        #expect(result.verdict == c.expected, "\(c.file)")
        if c.expected == .notLinearizable {
            let bad = try #require(result.keys.first { $0.verdict == .notLinearizable })
            #expect(!bad.unplaceable.isEmpty, "\(c.file): a counterexample names the operation it could not place")
        }
    }
}

@Test func aTimeLimitGivesUnknownNotAGuess() throws {
    let ops = try JepsenLog.parse(try String(contentsOfFile: "\(testdata)/jepsen-etcd/etcd_002.log", encoding: .utf8))
    let result = Checker.check(RegisterModel(), ops, limits: CheckLimits(timeoutNs: 0))
    #expect(result.verdict == .unknown)
    #expect(result.keys.first?.limitReached == "time limit reached")
}

@Test func aCacheBoundGivesUnknownNotACrash() throws {
    let ops = try JepsenLog.parse(try String(contentsOfFile: "\(testdata)/jepsen-etcd/etcd_002.log", encoding: .utf8))
    let result = Checker.check(RegisterModel(), ops, limits: CheckLimits(cacheBytes: 4096))
    #expect(result.verdict == .unknown)
    #expect(result.keys.first?.limitReached?.contains("memory bound") == true)
}
