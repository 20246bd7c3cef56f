/// Jepsen's etcd register logs: `INFO  jepsen.util - 3<TAB>:invoke<TAB>:write<TAB>4`.
/// :ok completes, :fail completes without effect (a read that failed :timed-out is unknown),
/// :info means the outcome is unknown; an invocation never completed is unknown too. Other lines
/// (nemesis, setup) are not operations.
public enum JepsenLog {
    public static func parse(_ text: String) throws(HistoryError) -> [Operation<RegisterModel.Input, RegisterModel.Output>] {
        var pairing = Pairing<RegisterModel.Input, RegisterModel.Output>()
        for (n, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = n + 1
            guard let dash = rawLine.firstRange(of: "jepsen.util - ") else { continue }
            let fields = rawLine[dash.upperBound...].split(separator: "\t", omittingEmptySubsequences: false).map {
                $0.trimmingSpaces()
            }
            guard fields.count >= 4, let client = Int(fields[0]) else { continue }  // nemesis lines
            let type = fields[1], f = fields[2], value = fields[3]
            switch type {
            case ":invoke":
                pairing.invoke(client: client, key: "", input: try input(f, value, line: line), line: line)
            case ":ok":
                var output = RegisterModel.Output.done
                if f == ":read" { output = .value(try integerOrNil(value, line: line)) }
                guard pairing.complete(client: client, outcome: .ok, output: output, line: line) else {
                    throw HistoryError(line: line, message: "client \(client) completed \(f) that it never invoked")
                }
            case ":fail":
                // A failed cas found another value; a failed read (timed out) says nothing.
                let outcome: Outcome = f == ":cas" || f == ":write" ? .fail : .unknown
                _ = pairing.complete(client: client, outcome: outcome, output: .done, line: line)
            case ":info":
                _ = pairing.complete(client: client, outcome: .unknown, output: nil, line: line)
            default:
                continue
            }
        }
        return pairing.operations
    }

    private static func input(_ f: String, _ value: String, line: Int) throws(HistoryError) -> RegisterModel.Input {
        switch f {
        case ":read": return .read
        case ":write":
            guard let v = Int(value) else { throw HistoryError(line: line, message: "write of '\(value)': not an integer") }
            return .write(v)
        case ":cas":
            let parts = value.trimmingCharacters(in: "[]").split(separator: " ").compactMap { Int($0) }
            guard parts.count == 2 else { throw HistoryError(line: line, message: "cas of '\(value)': expected [from to]") }
            return .cas(from: parts[0], to: parts[1])
        default:
            throw HistoryError(line: line, message: "unknown operation '\(f)' (expected :read, :write or :cas)")
        }
    }

    private static func integerOrNil(_ value: String, line: Int) throws(HistoryError) -> Int? {
        if value == "nil" { return nil }
        guard let v = Int(value) else { throw HistoryError(line: line, message: "read returned '\(value)': not an integer or nil") }
        return v
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var s = self
        while let c = s.first, c == " " || c == "\r" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\r" { s = s.dropLast() }
        return String(s)
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }
}
