import Foundation

/// One command of a scenario script: `name arg key=value key="quoted value"`.
public struct ScenarioCommand: Sendable {
    public var name: String
    public var args: [String]
    public var options: [String: String]
    public var line: Int
    public var text: String

    public func value(_ key: String) -> String? { options[key] }
    public func int(_ key: String, default d: Int? = nil) throws -> Int {
        if let raw = options[key] {
            guard let n = Int(raw) else { throw ScenarioError("\(key)=\(raw) is not an integer") }
            return n
        }
        if let d { return d }
        throw ScenarioError("\(name) needs \(key)=")
    }
    public func arg(_ i: Int) throws -> String {
        guard i < args.count else { throw ScenarioError("\(name) needs argument #\(i + 1)") }
        return args[i]
    }
}

public struct ScenarioError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Scenario scripts in the spirit of etcd-io/raft's datadriven testdata: blocks of one command,
/// a `----` line, and the expected output lines, separated by a blank line; `#` lines outside a
/// block are comments. `KV_REWRITE=1 swift test` rewrites the files with the actual output.
public enum ScenarioScript {
    struct Block { var command: ScenarioCommand; var expected: [String]; var leading: [String] }

    /// Runs every `*.txt` under `directory`, a fresh `makeRunner()` per file; returns a report
    /// for each block whose output differs (empty: all as expected).
    public static func runAll(in directory: String, makeRunner: () -> (ScenarioCommand) throws -> [String]) throws -> [String] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".txt") }.sorted()
        guard !files.isEmpty else { return ["no scenario scripts in \(directory)"] }
        var failures: [String] = []
        for file in files {
            failures += try run(file: directory + "/" + file, runner: makeRunner())
        }
        return failures
    }

    public static func run(file: String, runner: (ScenarioCommand) throws -> [String]) throws -> [String] {
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let (blocks, trailing) = try parse(text, file: file)
        var rewritten: [String] = []
        var failures: [String] = []
        for block in blocks {
            var actual: [String]
            do { actual = try runner(block.command) } catch { actual = ["error: \(error)"] }
            if actual.isEmpty { actual = ["(none)"] }
            if actual != block.expected {
                failures.append("""
                    \(file):\(block.command.line): \(block.command.text)
                    expected:
                    \(block.expected.map { "  " + $0 }.joined(separator: "\n"))
                    actual:
                    \(actual.map { "  " + $0 }.joined(separator: "\n"))
                    """)
            }
            rewritten += block.leading + [block.command.text, "----"] + actual + [""]
        }
        if !failures.isEmpty, ProcessInfo.processInfo.environment["KV_REWRITE"] == "1" {
            try (rewritten + trailing).joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        }
        return failures
    }

    static func parse(_ text: String, file: String) throws -> ([Block], [String]) {
        var blocks: [Block] = []
        var leading: [String] = []
        let lines = text.components(separatedBy: "\n")
        var i = 0
        while i < lines.count {
            let line = lines[i]
            if line.trimmingCharacters(in: .whitespaces).isEmpty || line.hasPrefix("#") {
                leading.append(line)
                i += 1
                continue
            }
            let command = try tokenize(line, line: i + 1, file: file)
            i += 1
            guard i < lines.count, lines[i] == "----" else { throw ScenarioError("\(file):\(i + 1): expected ----") }
            i += 1
            var expected: [String] = []
            while i < lines.count, !lines[i].isEmpty { expected.append(lines[i]); i += 1 }
            if i < lines.count { i += 1 }  // the blank line that ends the block
            blocks.append(Block(command: command, expected: expected, leading: leading))
            leading = []
        }
        return (blocks, leading)
    }

    static func tokenize(_ line: String, line number: Int, file: String) throws -> ScenarioCommand {
        var tokens: [String] = []
        var current = ""
        var quoted = false
        var hasToken = false
        for ch in line {
            if ch == "\"" { quoted.toggle(); hasToken = true; continue }
            if ch == " " && !quoted {
                if hasToken { tokens.append(current); current = ""; hasToken = false }
                continue
            }
            current.append(ch)
            hasToken = true
        }
        if quoted { throw ScenarioError("\(file):\(number): unbalanced quote") }
        if hasToken { tokens.append(current) }
        var args: [String] = []
        var options: [String: String] = [:]
        for t in tokens.dropFirst() {
            if let eq = t.firstIndex(of: "="), !t.hasPrefix("=") {
                options[String(t[..<eq])] = String(t[t.index(after: eq)...])
            } else {
                args.append(t)
            }
        }
        return ScenarioCommand(name: tokens.first ?? "", args: args, options: options, line: number, text: line)
    }
}
