#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ConfigFile
import Core
import Experiments
#if canImport(Glibc)
import Glibc
#endif

/// What `run.json` says about a run: enough to list it and to resume it.
struct RunManifest: Codable, Sendable {
    struct Session: Codable, Sendable {
        var number: Int
        var startedWallMs: Int64
        var endedWallMs: Int64?
        var host: String
        /// Trials already done when the session began.
        var doneAtStart: Int
    }
    var runID: String
    var kind: String
    /// A "running" run whose supervisor is gone lists as interrupted (`RunState.asListed`).
    var state: ControlProtocol.RunState
    var createdWallMs: Int64
    var total: Int
    var sessions: [Session]
    var reason: String?
}

/// `runs/<run_id>/` under the state directory: the spec, the manifest, the trials as they finish
/// (each row synced before the next trial starts, so a crash loses at most the trial under way),
/// and the tables and reports written at the end.
struct RunDirectory: Sendable {
    let path: String
    let runID: String

    struct IOError: Error, CustomStringConvertible {
        var description: String
    }

    static func root(stateDir: String) -> String { stateDir + "/runs" }

    static func create(stateDir: String, runID: String, specText: String, manifest: RunManifest,
                       csvHeader: String = TrialsCSV.header) throws(IOError) -> RunDirectory {
        let root = root(stateDir: stateDir)
        for dir in [root, root + "/" + runID] where mkdir(dir, 0o755) != 0 && errno != EEXIST {
            throw IOError(description: "cannot create \(dir): \(String(cString: strerror(errno)))")
        }
        let dir = RunDirectory(path: root + "/" + runID, runID: runID)
        try dir.write("spec.toml", specText)
        // A linearizability run has one history, not trials.
        if !csvHeader.isEmpty { try dir.write("trials.csv", csvHeader + "\n") }
        try dir.save(manifest)
        return dir
    }

    static func open(stateDir: String, runID: String) -> RunDirectory? {
        guard RunIDs.isValid(runID) else { return nil }
        let path = root(stateDir: stateDir) + "/" + runID
        return access(path + "/run.json", R_OK) == 0 ? RunDirectory(path: path, runID: runID) : nil
    }

    static func list(stateDir: String) -> [String] {
        names(in: root(stateDir: stateDir)).filter(RunIDs.isValid).sorted()
    }

    /// The names in a directory, but . and ..
    static func names(in path: String) -> [String] { directoryNames(path) }

    func manifest() throws(IOError) -> RunManifest {
        do { return try JSONDecoder().decode(RunManifest.self, from: Data(try read("run.json").utf8)) }
        catch let e as IOError { throw e } catch { throw IOError(description: "\(path)/run.json: \(error)") }
    }

    func save(_ m: RunManifest) throws(IOError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(m) else { throw IOError(description: "cannot encode run.json") }
        try write("run.json", String(decoding: data, as: UTF8.self) + "\n")
    }

    func trials() throws(IOError) -> [TrialRecord] {
        do { return try TrialsCSV.parse(try read("trials.csv")) } catch let e as IOError { throw e } catch {
            throw IOError(description: "\(path)/\(error)")
        }
    }

    /// trials.csv, with final-reads.csv merged in when there is one.
    func failoverTrials() throws(IOError) -> [FailoverTrial] {
        let trials: [FailoverTrial]
        do { trials = try FailoverCSV.parse(try read("trials.csv")) } catch let e as IOError { throw e } catch {
            throw IOError(description: "\(path)/\(error)")
        }
        guard access(path + "/final-reads.csv", R_OK) == 0 else { return trials }
        return FinalReadsCSV.merge(try read("final-reads.csv"), into: trials)
    }

    /// Appends a session's final reads (the file begins with its header) and syncs them.
    func append(finalReads lines: [String]) throws(IOError) {
        if access(path + "/final-reads.csv", F_OK) != 0 { try write("final-reads.csv", FinalReadsCSV.header + "\n") }
        for line in lines { try append(line: line, to: "final-reads.csv") }
    }

    func append(_ record: TrialRecord) throws(IOError) { try append(line: TrialsCSV.row(record)) }
    func append(failover record: FailoverTrial) throws(IOError) { try append(line: FailoverCSV.row(record)) }

    /// Appends one row and syncs it.
    private func append(line: String, to name: String = "trials.csv") throws(IOError) {
        let fd = Glibc.open(path + "/" + name, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw IOError(description: "cannot open \(path)/\(name): \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        let bytes = Array((line + "\n").utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count, fdatasync(fd) == 0 else {
            throw IOError(description: "cannot write \(path)/\(name): \(String(cString: strerror(errno)))")
        }
    }

    /// A torn last row (the supervisor died mid-append) is cut off before a resumed run appends.
    func truncateTornTail() throws(IOError) {
        let text = try read("trials.csv")
        guard !text.hasSuffix("\n"), let cut = text.lastIndex(of: "\n") else { return }
        try write("trials.csv", String(text[...cut]))
    }

    /// Writes a whole file: temp, fsync, rename, so a reader never sees half of one.
    func write(_ name: String, _ text: String) throws(IOError) {
        let final = path + "/" + name, temp = final + ".tmp"
        let fd = Glibc.open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOError(description: "cannot write \(final): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { break }
            offset += n
        }
        let synced = fsync(fd) == 0
        Glibc.close(fd)
        guard offset == bytes.count, synced, rename(temp, final) == 0 else {
            unlink(temp)
            throw IOError(description: "cannot write \(final): \(String(cString: strerror(errno)))")
        }
    }

    /// The names in the run's directory.
    func entries() -> [String] { Self.names(in: path) }

    func read(_ name: String) throws(IOError) -> String {
        guard let text = readWholeFile(path + "/" + name, limit: 256 << 20) else {
            throw IOError(description: "cannot read \(path)/\(name): \(String(cString: strerror(errno)))")
        }
        return text
    }
}

enum RunIDs {
    /// `exp-<wall ms>`; letters, digits, '-' and '_' only, so a run id is a safe directory name.
    static func make() -> String { "exp-\(Stamp.now().wallMs)" }
    static func isValid(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 64 && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }
}
