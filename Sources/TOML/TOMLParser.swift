/// A TOML syntax error with the line it was found on.
public struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var message: String
    public var description: String { "line \(line): \(message)" }
}

/// TOML 1.0 without dates and times (refused with a message that says so): tables, arrays of
/// tables, dotted and quoted keys, inline tables, arrays, all four string forms, integers in every
/// base, floats, booleans. Byte-wise over UTF-8, so a line number is exact even after a bad byte.
public struct TOMLParser {
    private let bytes: [UInt8]
    private var pos = 0
    private var line = 1
    /// Nesting of arrays and inline tables, bounded so that hostile input cannot exhaust the stack.
    private var depth = 0
    static let maxDepth = 64

    public static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        var parser = TOMLParser(bytes: Array(text.utf8))
        return try parser.document()
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    // MARK: Document

    private mutating func document() throws(TOMLError) -> TOMLTable {
        var root = TOMLTable(line: 1)
        var current: [String] = []
        while true {
            skipBlank()
            guard let c = peek() else { return root }
            if c == UInt8(ascii: "#") || isNewline(c) { try endOfLine(); continue }
            if c == UInt8(ascii: "[") {
                let headerLine = line
                pos += 1
                let isArray = peek() == UInt8(ascii: "[")
                if isArray { pos += 1 }
                skipBlank()
                let path = try key()
                skipBlank()
                try expect("]", "']' to close the table header")
                if isArray { try expect("]", "']]' to close the array-of-tables header") }
                try endOfLine()
                try Self.openTable(&root, path: path[...], isArray: isArray, line: headerLine)
                current = path
            } else {
                let (path, v, keyLine) = try keyValue()
                try endOfLine()
                try Self.assign(&root, table: current[...], key: path[...], value: v, line: keyLine)
            }
        }
    }

    /// `[a.b]` or `[[a.b]]`: walks to the parent (creating implicit tables) and opens the last part.
    private static func openTable(_ root: inout TOMLTable, path: ArraySlice<String>, isArray: Bool,
                                  line: Int) throws(TOMLError) {
        let name = path.last!
        try descend(&root, path.dropLast(), line: line) { (parent: inout TOMLTable) throws(TOMLError) in
            switch parent[name] {
            case nil:
                var t = TOMLTable(line: line)
                t.isExplicit = true
                parent.set(name, isArray ? .tableArray([t]) : .table(t), line: line)
            case .table(var t) where !isArray && !t.isExplicit && !t.isInline:
                t.isExplicit = true
                t.line = line
                parent.set(name, .table(t), line: line)
            case .tableArray(var list) where isArray:
                var t = TOMLTable(line: line)
                t.isExplicit = true
                list.append(t)
                parent.set(name, .tableArray(list), line: line)
            case .some(let existing):
                let what = isArray ? "[[\(path.joined(separator: "."))]]" : "[\(path.joined(separator: "."))]"
                throw TOMLError(line: line, message: "\(what) redefines '\(name)', already \(existing.typeName)"
                    + " defined on line \(parent.line(of: name) ?? 0)")
            }
        }
    }

    /// `a.b = v` inside the current table.
    private static func assign(_ root: inout TOMLTable, table: ArraySlice<String>, key: ArraySlice<String>,
                               value: TOMLValue, line: Int) throws(TOMLError) {
        let name = key.last!
        try descend(&root, table + key.dropLast(), line: line) { (t: inout TOMLTable) throws(TOMLError) in
            if t[name] != nil {
                throw TOMLError(line: line, message: "duplicate key '\(key.joined(separator: "."))' (first set on line "
                    + "\(t.line(of: name) ?? 0))")
            }
            t.set(name, value, line: line)
        }
    }

    /// Runs `body` on the table at `path`, creating implicit tables and entering the last element
    /// of an array of tables, as TOML resolves a path.
    private static func descend(_ table: inout TOMLTable, _ path: ArraySlice<String>, line: Int,
                                _ body: (inout TOMLTable) throws(TOMLError) -> Void) throws(TOMLError) {
        guard let first = path.first else {
            if table.isInline { throw TOMLError(line: line, message: "an inline table cannot be extended") }
            return try body(&table)
        }
        let rest = path.dropFirst()
        switch table[first] {
        case nil:
            var t = TOMLTable(line: line)
            try descend(&t, rest, line: line, body)
            table.set(first, .table(t), line: line)
        case .table(var t):
            if t.isInline { throw TOMLError(line: line, message: "'\(first)' is an inline table and cannot be extended") }
            try descend(&t, rest, line: line, body)
            table.set(first, .table(t), line: line)
        case .tableArray(var list):
            try descend(&list[list.count - 1], rest, line: line, body)
            table.set(first, .tableArray(list), line: line)
        case .some(let v):
            throw TOMLError(line: line, message: "'\(first)' is \(v.typeName) (line \(table.line(of: first) ?? 0)), not a table")
        }
    }

    // MARK: Keys

    /// `key = value`, with the line the key is on.
    private mutating func keyValue() throws(TOMLError) -> (key: [String], value: TOMLValue, line: Int) {
        let keyLine = line
        let path = try key()
        skipBlank()
        try expect("=", "'=' after the key '\(path.joined(separator: "."))'")
        skipBlank()
        return (path, try value(), keyLine)
    }

    private mutating func key() throws(TOMLError) -> [String] {
        var parts = [try simpleKey()]
        while true {
            let save = pos
            skipBlank()
            guard peek() == UInt8(ascii: ".") else { pos = save; return parts }
            pos += 1
            skipBlank()
            parts.append(try simpleKey())
        }
    }

    private mutating func simpleKey() throws(TOMLError) -> String {
        switch peek() {
        case UInt8(ascii: "\""): pos += 1; return try basicString()
        case UInt8(ascii: "'"): pos += 1; return try literalString()
        default:
            let start = pos
            while let c = peek(), isBareKeyByte(c) { pos += 1 }
            guard pos > start else { throw error("expected a key (letters, digits, '_' or '-', or a quoted key)") }
            return String(decoding: bytes[start..<pos], as: UTF8.self)
        }
    }

    // MARK: Values

    private mutating func value() throws(TOMLError) -> TOMLValue {
        guard let c = peek() else { throw error("expected a value, found the end of the file") }
        switch c {
        case UInt8(ascii: "\""):
            if starts(with: "\"\"\"") { pos += 3; return .string(try multilineString(UInt8(ascii: "\""))) }
            pos += 1
            return .string(try basicString())
        case UInt8(ascii: "'"):
            if starts(with: "'''") { pos += 3; return .string(try multilineString(UInt8(ascii: "'"))) }
            pos += 1
            return .string(try literalString())
        case UInt8(ascii: "["): return try nested { (p: inout TOMLParser) throws(TOMLError) in try p.array() }
        case UInt8(ascii: "{"): return try nested { (p: inout TOMLParser) throws(TOMLError) in try p.inlineTable() }
        default:
            if starts(with: "true") && !isTokenByte(at: pos + 4) { pos += 4; return .boolean(true) }
            if starts(with: "false") && !isTokenByte(at: pos + 5) { pos += 5; return .boolean(false) }
            return try number()
        }
    }

    private mutating func nested(_ body: (inout TOMLParser) throws(TOMLError) -> TOMLValue) throws(TOMLError) -> TOMLValue {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw error("arrays and inline tables nested deeper than \(Self.maxDepth)") }
        return try body(&self)
    }

    private mutating func array() throws(TOMLError) -> TOMLValue {
        pos += 1
        var items: [TOMLValue] = []
        while true {
            try skipBlankLinesAndComments()
            if peek() == UInt8(ascii: "]") { pos += 1; return .array(items) }
            items.append(try value())
            try skipBlankLinesAndComments()
            switch peek() {
            case UInt8(ascii: ","): pos += 1
            case UInt8(ascii: "]"): pos += 1; return .array(items)
            default: throw error("expected ',' or ']' in the array")
            }
        }
    }

    private mutating func inlineTable() throws(TOMLError) -> TOMLValue {
        let startLine = line
        pos += 1
        var table = TOMLTable(line: startLine)
        skipBlank()
        if peek() == UInt8(ascii: "}") { pos += 1; table.isInline = true; return .table(table) }
        while true {
            skipBlank()
            let (path, v, keyLine) = try keyValue()
            try Self.assign(&table, table: [], key: path[...], value: v, line: keyLine)
            skipBlank()
            switch peek() {
            case UInt8(ascii: ","): pos += 1
            case UInt8(ascii: "}"): pos += 1; table.isInline = true; return .table(table)
            default: throw error("expected ',' or '}' in the inline table (it must fit on one line)")
            }
        }
    }

    private mutating func number() throws(TOMLError) -> TOMLValue {
        let start = pos
        while isTokenByte(at: pos) { pos += 1 }
        let token = String(decoding: bytes[start..<pos], as: UTF8.self)
        guard !token.isEmpty else {
            throw error("expected a value (a string, number, boolean, array or inline table)")
        }
        if looksLikeDate(token) {
            throw error("'\(token)': dates and times are not supported here; write the value as a string or a number")
        }
        if let n = Self.integer(token) { return .integer(n) }
        if let d = Self.float(token) { return .float(d) }
        throw error("'\(token)' is not a value: strings need quotes, numbers look like 42, -7, 0x2A, 1_000 or 3.5e2")
    }

    private func looksLikeDate(_ token: String) -> Bool {
        let b = Array(token.utf8)
        if b.count >= 5, b[0...3].allSatisfy(isDigit), b[4] == UInt8(ascii: "-") { return true }
        if b.count >= 3, b[0...1].allSatisfy(isDigit), b[2] == UInt8(ascii: ":") { return true }
        return false
    }

    static func integer(_ token: String) -> Int64? {
        var s = Substring(token)
        var radix = 10
        var sign: Int64 = 1
        if s.hasPrefix("0x") || s.hasPrefix("0o") || s.hasPrefix("0b") {
            radix = s.hasPrefix("0x") ? 16 : s.hasPrefix("0o") ? 8 : 2
            s = s.dropFirst(2)
        } else {
            if s.first == "+" || s.first == "-" { sign = s.first == "-" ? -1 : 1; s = s.dropFirst() }
            if s.count > 1 && s.first == "0" { return nil }  // no leading zeros
        }
        guard let digits = withoutUnderscores(s), !digits.isEmpty else { return nil }
        if sign < 0 { return Int64("-" + digits, radix: radix) }
        return Int64(digits, radix: radix)
    }

    static func float(_ token: String) -> Double? {
        switch token {
        case "inf", "+inf": return .infinity
        case "-inf": return -.infinity
        case "nan", "+nan", "-nan": return .nan
        default: break
        }
        guard let plain = withoutUnderscores(Substring(token)),
              plain.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else { return nil }
        // TOML wants a digit on both sides of '.', and no leading zero in the integer part.
        let u = Array(plain.utf8)
        for (i, c) in u.enumerated() where c == UInt8(ascii: ".") {
            guard i > 0, i + 1 < u.count, isDigitByte(u[i - 1]), isDigitByte(u[i + 1]) else { return nil }
        }
        var intPart = Substring(plain)
        if intPart.first == "+" || intPart.first == "-" { intPart = intPart.dropFirst() }
        intPart = intPart.prefix { $0.isNumber }
        if intPart.count > 1 && intPart.first == "0" { return nil }
        return Double(plain)
    }

    /// Underscores only between digits ("1_000"), as TOML allows.
    private static func withoutUnderscores(_ s: Substring) -> String? {
        let u = Array(s.utf8)
        for (i, c) in u.enumerated() where c == UInt8(ascii: "_") {
            guard i > 0, i + 1 < u.count, isHexByte(u[i - 1]), isHexByte(u[i + 1]) else { return nil }
        }
        return String(decoding: u.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
    }

    // MARK: Strings

    private mutating func basicString() throws(TOMLError) -> String {
        var out: [UInt8] = []
        while true {
            guard let c = peek(), !isNewline(c) else { throw error("unterminated string: a \" string must end on its line") }
            pos += 1
            if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
            if c == UInt8(ascii: "\\") { try escape(into: &out) } else { try plain(c, into: &out) }
        }
    }

    private mutating func literalString() throws(TOMLError) -> String {
        let start = pos
        while let c = peek(), c != UInt8(ascii: "'") {
            if isNewline(c) { throw error("unterminated string: a ' string must end on its line") }
            pos += 1
        }
        guard peek() != nil else { throw error("unterminated string") }
        defer { pos += 1 }
        return String(decoding: bytes[start..<pos], as: UTF8.self)
    }

    /// `"""` (escapes, line-ending backslash) and `'''` (raw) strings; the opening quotes are consumed.
    private mutating func multilineString(_ quote: UInt8) throws(TOMLError) -> String {
        let isBasic = quote == UInt8(ascii: "\"")
        let startLine = line
        skipOneNewline()  // a newline right after the opening quotes is not part of the string
        var out: [UInt8] = []
        while true {
            guard let c = peek() else {
                let q = String(repeating: Character(Unicode.Scalar(quote)), count: 3)
                throw TOMLError(line: startLine, message: "unterminated \(q) string (opened on this line)")
            }
            if closesMultiline(quote, into: &out) { return String(decoding: out, as: UTF8.self) }
            pos += 1
            if isBasic && c == UInt8(ascii: "\\") {
                // A backslash at the end of a line trims the newline and the blanks that follow.
                var look = pos
                while look < bytes.count, bytes[look] == 32 || bytes[look] == 9 { look += 1 }
                if look < bytes.count, bytes[look] == 10 || (bytes[look] == 13 && look + 1 < bytes.count && bytes[look + 1] == 10) {
                    pos = look
                    while let w = peek(), w == 32 || w == 9 || isNewline(w) { advanceCountingLines() }
                    continue
                }
                try escape(into: &out)
            } else if c == 10 {
                line += 1
                out.append(c)
            } else if c == 13, peek() == 10 {
                // CRLF in the file is a newline in the value: keep only LF.
            } else if isBasic {
                try plain(c, into: &out)
            } else {
                out.append(c)
            }
        }
    }

    /// At three `quote`s: consumes them (and up to two more right before them, which belong to
    /// the string, as in `"""""`) and says the string ended.
    private mutating func closesMultiline(_ quote: UInt8, into out: inout [UInt8]) -> Bool {
        guard pos + 3 <= bytes.count, bytes[pos] == quote, bytes[pos + 1] == quote, bytes[pos + 2] == quote else { return false }
        var extra = 0
        while extra < 2, pos + 3 + extra < bytes.count, bytes[pos + 3 + extra] == quote { extra += 1 }
        out.append(contentsOf: [UInt8](repeating: quote, count: extra))
        pos += 3 + extra
        return true
    }

    private mutating func escape(into out: inout [UInt8]) throws(TOMLError) {
        guard let e = peek() else { throw error("unterminated escape sequence") }
        pos += 1
        switch e {
        case UInt8(ascii: "b"): out.append(8)
        case UInt8(ascii: "t"): out.append(9)
        case UInt8(ascii: "n"): out.append(10)
        case UInt8(ascii: "f"): out.append(12)
        case UInt8(ascii: "r"): out.append(13)
        case UInt8(ascii: "\""): out.append(34)
        case UInt8(ascii: "\\"): out.append(92)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let count = e == UInt8(ascii: "u") ? 4 : 8
            guard pos + count <= bytes.count,
                  let scalarValue = UInt32(String(decoding: bytes[pos..<pos + count], as: UTF8.self), radix: 16),
                  let scalar = Unicode.Scalar(scalarValue) else {
                throw error("\\\(Character(Unicode.Scalar(e))) needs \(count) hex digits naming a Unicode scalar")
            }
            pos += count
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
        default:
            throw error("unknown escape '\\\(Character(Unicode.Scalar(e)))' (use \\\\ for a backslash)")
        }
    }

    /// A literal byte inside a string: control characters other than tab must be escaped.
    private func plain(_ c: UInt8, into out: inout [UInt8]) throws(TOMLError) {
        if c < 32 && c != 9 || c == 127 {
            throw error("control character 0x\(String(c, radix: 16)) in a string; escape it")
        }
        out.append(c)
    }

    // MARK: Lexing

    private func peek() -> UInt8? { pos < bytes.count ? bytes[pos] : nil }

    private func starts(with s: String) -> Bool {
        let u = Array(s.utf8)
        return pos + u.count <= bytes.count && Array(bytes[pos..<pos + u.count]) == u
    }

    private func isTokenByte(at i: Int) -> Bool {
        guard i < bytes.count else { return false }
        let c = bytes[i]
        return isBareKeyByte(c) || c == UInt8(ascii: "+") || c == UInt8(ascii: ".") || c == UInt8(ascii: ":")
    }

    private mutating func skipBlank() { while let c = peek(), c == 32 || c == 9 { pos += 1 } }

    private mutating func skipOneNewline() {
        if peek() == 10 { pos += 1; line += 1 }
        else if peek() == 13, pos + 1 < bytes.count, bytes[pos + 1] == 10 { pos += 2; line += 1 }
    }

    private mutating func advanceCountingLines() {
        if peek() == 10 { line += 1 }
        pos += 1
    }

    private mutating func skipComment() throws(TOMLError) {
        guard peek() == UInt8(ascii: "#") else { return }
        while let c = peek(), !isNewline(c) {
            if c < 32 && c != 9 || c == 127 { throw error("control character 0x\(String(c, radix: 16)) in a comment") }
            pos += 1
        }
    }

    private mutating func skipBlankLinesAndComments() throws(TOMLError) {
        while true {
            skipBlank()
            try skipComment()
            guard let c = peek(), isNewline(c) else { return }
            if c == 13 && (pos + 1 >= bytes.count || bytes[pos + 1] != 10) { return }
            skipOneNewline()
        }
    }

    /// After a header or a key/value: blanks, an optional comment, then a newline or the end.
    private mutating func endOfLine() throws(TOMLError) {
        skipBlank()
        try skipComment()
        guard let c = peek() else { return }
        guard isNewline(c) else { throw error("unexpected '\(printable(c))' after the value; one key = value per line") }
        if c == 13 && (pos + 1 >= bytes.count || bytes[pos + 1] != 10) { throw error("a lone carriage return") }
        skipOneNewline()
    }

    private mutating func expect(_ s: Character, _ what: String) throws(TOMLError) {
        guard peek() == s.asciiValue else {
            throw error("expected \(what), found " + (peek().map { "'\(printable($0))'" } ?? "the end of the file"))
        }
        pos += 1
    }

    private func printable(_ c: UInt8) -> String {
        c >= 32 && c < 127 ? String(Character(Unicode.Scalar(c))) : "0x" + String(c, radix: 16)
    }

    private func error(_ message: String) -> TOMLError { TOMLError(line: line, message: message) }
}

private func isNewline(_ c: UInt8) -> Bool { c == 10 || c == 13 }
private func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
private func isDigitByte(_ c: UInt8) -> Bool { isDigit(c) }
private func isHexByte(_ c: UInt8) -> Bool {
    isDigit(c) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "f")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "F"))
}
private func isBareKeyByte(_ c: UInt8) -> Bool {
    isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
}
