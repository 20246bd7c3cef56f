/// Finds the line of a key in TOML text. TOMLKit reports positions only for syntax errors, so
/// errors about values are placed by scanning for `key =` inside the right table header.
struct KeyLocator {
    private let lines: [Substring]

    init(text: String) { lines = text.split(separator: "\n", omittingEmptySubsequences: false) }

    /// `table` is "supervisor", "cluster" or "node"; `index` picks the n-th `[[node]]`.
    func line(table: String?, index: Int? = nil, key: String?) -> Int? {
        var current: String? = nil
        var arrayCount = -1
        var fallback: Int? = nil
        for (n, raw) in lines.enumerated() {
            let line = raw.drop(while: { $0 == " " || $0 == "\t" })
            if line.hasPrefix("[[") {
                current = String(line.dropFirst(2).prefix(while: { $0 != "]" })).trimmed()
                if current == table { arrayCount += 1 }
                if key == nil, current == table, index == nil || index == arrayCount { return n + 1 }
                continue
            }
            if line.hasPrefix("[") {
                current = String(line.dropFirst(1).prefix(while: { $0 != "]" })).trimmed()
                if key == nil, current == table { return n + 1 }
                continue
            }
            guard let key, current == table, index == nil || index == arrayCount else { continue }
            let name = line.prefix(while: { $0 != "=" && $0 != " " && $0 != "\t" })
            if name == key || name == "\"\(key)\"" {
                return n + 1
            }
            if fallback == nil, line.hasPrefix(key) { fallback = n + 1 }
        }
        return fallback
    }
}

extension String {
    func trimmed() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
