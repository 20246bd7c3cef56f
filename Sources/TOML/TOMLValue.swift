/// A parsed TOML value. Dates and times are refused by the parser: nothing the lab reads uses
/// them, and supporting them is what pulled Foundation's ICU data (about 45 MB) into the daemon.
public indirect enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case boolean(Bool)
    case array([TOMLValue])
    case table(TOMLTable)
    /// `[[name]]` sections: only these may be appended to by a later `[[name]]`.
    case tableArray([TOMLTable])

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var int: Int? { if case .integer(let n) = self { return Int(exactly: n) }; return nil }
    public var double: Double? {
        switch self {
        case .float(let d): return d
        case .integer(let n): return Double(n)
        default: return nil
        }
    }
    public var bool: Bool? { if case .boolean(let b) = self { return b }; return nil }
    public var table: TOMLTable? { if case .table(let t) = self { return t }; return nil }
    /// Elements of a static array, or the tables of a `[[name]]` array.
    public var array: [TOMLValue]? {
        switch self {
        case .array(let a): return a
        case .tableArray(let t): return t.map { .table($0) }
        default: return nil
        }
    }

    /// The type's name as an error message says it ("must be an integer, not a string").
    public var typeName: String {
        switch self {
        case .string: return "a string"
        case .integer: return "an integer"
        case .float: return "a float"
        case .boolean: return "a boolean"
        case .array, .tableArray: return "an array"
        case .table: return "a table"
        }
    }
}

/// A TOML table that remembers its keys' order and the line each key (and its header) is on,
/// so that a refusal of a value can name the line.
public struct TOMLTable: Sendable, Equatable {
    public private(set) var keys: [String] = []
    private var values: [String: TOMLValue] = [:]
    private var lines: [String: Int] = [:]
    /// The line of the `[header]` (or of the first key that made the table implicitly).
    public var line: Int
    /// Defined by its own `[header]`; a second header for it is an error.
    var isExplicit = false
    /// Written inline `{ ... }`: closed to later additions.
    var isInline = false

    init(line: Int) { self.line = line }

    public subscript(key: String) -> TOMLValue? { values[key] }

    /// The line of `key`'s assignment (or of the table it names).
    public func line(of key: String) -> Int? { lines[key] }

    mutating func set(_ key: String, _ value: TOMLValue, line: Int) {
        if values[key] == nil { keys.append(key) }
        values[key] = value
        if lines[key] == nil { lines[key] = line }
    }
}
