import ArgumentParser
import Core
import Linearizability
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Ends kvctl with a code other than 0/1/2 (check: 3 unknown).
struct CommandExit: Error { var code: Int32 }

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a recorded history for linearizability (no supervisor needed).",
        discussion: """
            Formats: jepsen (Jepsen etcd logs; register model), edn (EDN maps; kv model, keys start as ""),
            jsonl (the lab's own; model from its operations or --model). Guessed from the file when not given.
            For a history that is not linearizable, a counterexample page is written to FILE.html.
            Exit: 0 linearizable, 1 not linearizable, 3 unknown (a limit was reached), 2 usage or unreadable input.
            """)

    @Argument(help: "The history file.") var file: String
    @Option(help: "register or kv (default: from the format).") var model: String?
    @Option(help: "jepsen, edn or jsonl (default: guessed from the file).") var format: String?
    @Option(parsing: .unconditional, help: "Give up with verdict unknown after this long, e.g. 30s.") var timeout = "30s"
    @Option(name: .customLong("cache-mb"), help: "Memory bound of the search's state cache, MiB.") var cacheMB = 2048
    @Flag(name: .customLong("no-html"), help: "Do not write FILE.html for a counterexample.") var noHTML = false
    @Flag(help: "Print JSON for programs.") var json = false
    @Flag(help: "jsonl: refuse a file whose last line is cut short (by default it is left out and said).") var strict = false

    func validate() throws {
        if let m = model, !["register", "kv"].contains(m) { throw ValidationError("--model '\(m)': use register or kv") }
        if let f = format, !["jepsen", "edn", "jsonl"].contains(f) { throw ValidationError("--format '\(f)': use jepsen, edn or jsonl") }
        // Fractions allowed (1us: a limit reached at once, for tests of verdict unknown).
        switch DurationText.parse(timeout) {
        case .success(let ms) where ms > 0: break
        case .success: throw ValidationError("--timeout '\(timeout)' must be more than 0")
        case .failure(let p): throw ValidationError(DurationError(flag: "--timeout", text: timeout, problem: p).description)
        }
        if cacheMB < 1 { throw ValidationError("--cache-mb must be at least 1") }
    }

    /// Bad input: said on stderr, exit 2, without the usage text (the command line was right).
    private func inputError(_ message: String) -> CommandExit {
        KVCtl.writeError("kvctl check: \(message)")
        return CommandExit(code: 2)
    }

    func run() throws {
        var st = stat()
        if stat(file, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            throw inputError("\(file) is a directory; give a history file")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw inputError("cannot read \(file) (missing or unreadable)")
        }
        let text = String(decoding: data, as: UTF8.self)
        let format = self.format ?? Self.guessFormat(file: file, text: text)
        guard let format else {
            throw inputError("cannot tell the format of \(file); pass --format jepsen, edn or jsonl")
        }
        let note: JSONLHistory.Notes = { KVCtl.writeError("kvctl check: \(file) \($0)") }
        // Jepsen logs are registers and EDN logs key-value stores: another model cannot read them.
        let fixed = ["jepsen": "register", "edn": "kv"]
        if let m = model, let only = fixed[format], m != only {
            throw inputError("--model \(m) does not fit the \(format) format, which is read with the \(only) model; drop --model")
        }
        let limits = CheckLimits(timeoutNs: Int64(DurationText.milliseconds(timeout)! * 1_000_000), cacheBytes: cacheMB << 20)
        let outcome: (CheckResult, [KeyReport], String)
        do {
            switch format {
            case "jepsen":
                outcome = run(RegisterModel(), try JepsenLog.parse(text), limits, "register")
            case "edn":
                outcome = run(KVModel(initial: ""), try EDNHistory.parse(text), limits, "kv")
            default:
                let m = model ?? JSONLHistory.detectModel(text)?.rawValue
                switch m {
                case "register":
                    outcome = run(RegisterModel(), try JSONLHistory.parseRegister(text, strict: strict, notes: note), limits, "register")
                case "kv": outcome = run(KVModel(), try JSONLHistory.parseKV(text, strict: strict, notes: note), limits, "kv")
                default: throw inputError("cannot tell the model of \(file); pass --model register or kv")
                }
            }
        } catch let e as HistoryError {
            throw inputError("\(file) \(e): not a \(format) history")
        }
        let (result, reports, modelName) = outcome
        var page: String? = nil
        if result.verdict == .notLinearizable, !noHTML, let bad = reports.first(where: { $0.verdict == .notLinearizable }) {
            let path = file + ".html"
            let html = CounterexamplePage.render(title: String(file.split(separator: "/").last ?? Substring(file)), report: bad)
            if FileManager.default.createFile(atPath: path, contents: Data(html.utf8)) { page = path }
            else { KVCtl.writeError("kvctl: could not write \(path)") }
        }
        if json {
            print(Render.json(Output(file: file, format: format, model: modelName, verdict: result.verdict,
                                     elapsedMs: Double(result.elapsedNs) / 1e6, keys: reports, html: page)))
        } else {
            printText(result, reports, format: format, model: modelName, page: page)
        }
        switch result.verdict {
        case .linearizable: return
        case .notLinearizable: throw CommandExit(code: 1)
        case .unknown: throw CommandExit(code: 3)
        }
    }

    private func run<M: SequentialModel>(_ model: M, _ ops: [Linearizability.Operation<M.Input, M.Output>],
                                         _ limits: CheckLimits, _ name: String) -> (CheckResult, [KeyReport], String) {
        let result = Checker.check(model, ops, limits: limits)
        return (result, Counterexample.reports(model, ops, result), name)
    }

    struct Output: Encodable {
        var file, format, model: String
        var verdict: Verdict
        var elapsedMs: Double
        var keys: [KeyReport]
        var html: String?
        enum CodingKeys: String, CodingKey { case file, format, model, verdict, elapsedMs = "elapsed_ms", keys, html }
    }

    private func printText(_ result: CheckResult, _ reports: [KeyReport], format: String, model: String, page: String?) {
        let verdict = result.verdict == .notLinearizable ? "NOT linearizable" : result.verdict.rawValue
        let ms = String(format3(Double(result.elapsedNs) / 1e6))
        let total = reports.reduce(0) { $0 + $1.operations }
        print("\(file): \(verdict) (\(format) format, \(model) model, \(total) operations, \(reports.count) key\(reports.count == 1 ? "" : "s")), checked in \(ms) ms")
        let shown = reports.count <= 20 ? reports : reports.filter { $0.verdict != .linearizable }
        for r in shown {
            let key = r.key.isEmpty ? "(register)" : "\"\(r.key)\""
            print("  key \(key): \(r.operations) operations, \(r.verdict.rawValue)" + (r.limitReached.map { " (\($0))" } ?? ""))
            guard r.verdict == .notLinearizable else { continue }
            print("    longest order that linearizes: \(r.longestPrefix.count) operations" + (r.longestPrefix.count > 8 ? ", the last 8:" : ":"))
            let skipped = max(0, r.longestPrefix.count - 8)
            for (n, op) in r.longestPrefix.enumerated().dropFirst(skipped) {
                print("      \(n + 1). client \(op.client): \(op.text)")
            }
            print("    state then: \(r.stateAfterPrefix ?? "?")")
            for op in r.unplaceable { print("    cannot come next: client \(op.client): \(op.text)") }
        }
        if reports.count > 20 { print("  (\(reports.count - shown.count) linearizable keys not listed; --json lists all)") }
        if let page { print("  counterexample page: \(page)") }
    }

    private func format3(_ x: Double) -> String { String((x * 1000).rounded() / 1000) }

    static func guessFormat(file: String, text: String) -> String? {
        if file.hasSuffix(".jsonl") { return "jsonl" }
        if file.hasSuffix(".edn") { return "edn" }
        let head = text.prefix(4096)
        if head.contains("jepsen.util - ") { return "jepsen" }
        if let first = text.split(separator: "\n").first(where: { !$0.allSatisfy(\.isWhitespace) }) {
            if first.hasPrefix("{:") { return "edn" }
            if first.hasPrefix("{\"") { return "jsonl" }
        }
        return nil
    }
}
