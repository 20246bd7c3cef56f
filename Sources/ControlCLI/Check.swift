import ArgumentParser
import Core
import Linearizability
import Synchronization
import Dispatch
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
        commandName: "check",
        abstract: "Check recorded histories for linearizability (no supervisor needed).",
        discussion: """
            Formats: jepsen (Jepsen etcd logs; register model), edn (EDN maps; kv model, keys start as ""),
            jsonl (the lab's own; model from its operations or --model). Guessed from the file when not given.
            For a history that is not linearizable, a counterexample page is written to FILE.html.
            Several files are checked in parallel in one process: a table, one row per file (--json: one
            JSON object per line per file), and the exit status of the worst.
            Exit: 0 linearizable, 1 not linearizable, 3 unknown (a limit was reached), 2 usage or unreadable input;
            with several files, the worst of them, in the order 0, 3, 1, 2.
            """)

    @Argument(help: "The history files.") var files: [String]
    @Option(help: "register or kv (default: from the format).") var model: String?
    @Option(help: "jepsen, edn or jsonl (default: guessed from the file).") var format: String?
    @Option(parsing: .unconditional, help: "Give up with verdict unknown after this long, e.g. 30s.") var timeout = "30s"
    @Option(name: .customLong("cache-mb"), help: "Memory bound of the search's state cache, MiB.") var cacheMB = 2048
    @Flag(name: .customLong("no-html"), help: "Do not write FILE.html for a counterexample.") var noHTML = false
    @Flag(help: "Print JSON for programs.") var json = false
    @Flag(help: "jsonl: refuse a file whose last line is cut short (by default it is left out and said).") var strict = false

    func validate() throws {
        if files.isEmpty { throw ValidationError("give a history file (or several): kvctl check history.jsonl") }
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

    /// A file that cannot be checked: what is wrong with it (exit 2, without the usage text).
    struct InputProblem: Error { var message: String }

    /// One file's verdict, its keys and its counterexample page.
    struct Checked: Sendable {
        var file, format, model: String
        var result: CheckResult
        var reports: [KeyReport]
        var page: String?
    }

    func run() throws {
        if files.count == 1 {
            let checked: Checked
            do { checked = try check(files[0]) } catch let p as InputProblem {
                KVCtl.writeError("kvctl check: \(p.message)")
                throw CommandExit(code: 2)
            }
            if json { print(Render.json(output(checked))) } else { printText(checked) }
            if let code = Self.exitCode(checked.result.verdict) { throw CommandExit(code: code) }
            return
        }
        try runMany()
    }

    /// Several files, in parallel (each checks its keys in parallel too): a table, then each
    /// counterexample; the exit status is the worst file's.
    private func runMany() throws {
        let outcomes = Mutex(files.map { Result<Checked, InputProblem>.failure(InputProblem(message: "\($0): not checked")) })
        DispatchQueue.concurrentPerform(iterations: files.count) { i in
            let r: Result<Checked, InputProblem>
            do { r = .success(try check(files[i])) } catch let p as InputProblem { r = .failure(p) } catch {
                r = .failure(InputProblem(message: "\(files[i]): \(error)"))
            }
            outcomes.withLock { $0[i] = r }
        }
        let all = outcomes.withLock { $0 }
        // Exit codes from best to worst: linearizable, unknown, not linearizable, unreadable.
        let order: [Int32] = [0, 3, 1, 2]
        var worst: Int32 = 0
        func note(_ code: Int32) { if order.firstIndex(of: code) ?? 0 > order.firstIndex(of: worst) ?? 0 { worst = code } }
        var rows: [[String]] = []
        for (file, outcome) in zip(files, all) {
            switch outcome {
            case .success(let c):
                note(Self.exitCode(c.result.verdict) ?? 0)
                if json { print(Render.json(output(c)).split(separator: "\n").joined()) }
                let ops = c.reports.reduce(0) { $0 + $1.operations }
                rows.append([file, Self.verdictText(c.result.verdict), "\(c.format)/\(c.model)", String(ops), String(c.reports.count),
                             format3(Double(c.result.elapsedNs) / 1e6), c.page ?? "-"])
            case .failure(let p):
                note(2)
                KVCtl.writeError("kvctl check: \(p.message)")
                if json { print(Render.json(["file": file, "error": p.message]).split(separator: "\n").joined()) }
                rows.append([file, "unreadable", "-", "-", "-", "-", "-"])
            }
        }
        if !json {
            print(Render.table(["FILE", "VERDICT", "FORMAT/MODEL", "OPERATIONS", "KEYS", "MS", "COUNTEREXAMPLE"], rows))
            let count = { (v: String) in rows.filter { $0[1] == v }.count }
            print("\(files.count) files: \(count("linearizable")) linearizable, \(count("NOT linearizable")) NOT linearizable, "
                  + "\(count("unknown")) unknown, \(count("unreadable")) unreadable")
        }
        if worst != 0 { throw CommandExit(code: worst) }
    }

    static func exitCode(_ v: Verdict) -> Int32? {
        switch v {
        case .linearizable: return nil
        case .notLinearizable: return 1
        case .unknown: return 3
        }
    }

    static func verdictText(_ v: Verdict) -> String { v == .notLinearizable ? "NOT linearizable" : v.rawValue }

    /// One file read, parsed and checked, its counterexample page written.
    private func check(_ file: String) throws -> Checked {
        var st = stat()
        if stat(file, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            throw InputProblem(message: "\(file) is a directory; give a history file")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw InputProblem(message: "cannot read \(file) (missing or unreadable)")
        }
        let text = String(decoding: data, as: UTF8.self)
        let format = self.format ?? Self.guessFormat(file: file, text: text)
        guard let format else {
            throw InputProblem(message: "cannot tell the format of \(file); pass --format jepsen, edn or jsonl")
        }
        let note: JSONLHistory.Notes = { KVCtl.writeError("kvctl check: \(file) \($0)") }
        // Jepsen logs are registers and EDN logs key-value stores: another model cannot read them.
        let fixed = ["jepsen": "register", "edn": "kv"]
        if let m = model, let only = fixed[format], m != only {
            throw InputProblem(message: "--model \(m) does not fit the \(format) format, which is read with the \(only) model; drop --model")
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
                default: throw InputProblem(message: "cannot tell the model of \(file); pass --model register or kv")
                }
            }
        } catch let e as HistoryError {
            throw InputProblem(message: "\(file) \(e): not a \(format) history")
        }
        let (result, reports, modelName) = outcome
        var page: String? = nil
        if result.verdict == .notLinearizable, !noHTML, let bad = reports.first(where: { $0.verdict == .notLinearizable }) {
            let path = file + ".html"
            let html = CounterexamplePage.render(title: String(file.split(separator: "/").last ?? Substring(file)), report: bad)
            if FileManager.default.createFile(atPath: path, contents: Data(html.utf8)) { page = path }
            else { KVCtl.writeError("kvctl: could not write \(path)") }
        }
        return Checked(file: file, format: format, model: modelName, result: result, reports: reports, page: page)
    }

    private func output(_ c: Checked) -> Output {
        Output(file: c.file, format: c.format, model: c.model, verdict: c.result.verdict, elapsedMs: Double(c.result.elapsedNs) / 1e6,
               keys: c.reports, html: c.page)
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

    private func printText(_ c: Checked) {
        let (file, result, reports, format, model, page) = (c.file, c.result, c.reports, c.format, c.model, c.page)
        let verdict = Self.verdictText(result.verdict)
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
