/// Why a config file was refused. The description names the file, the line and the key.
public struct ConfigError: Error, Sendable, CustomStringConvertible, Equatable {
    public var file: String
    public var line: Int?
    public var key: String?
    public var problem: String

    public init(file: String, line: Int? = nil, key: String? = nil, problem: String) {
        self.file = file; self.line = line; self.key = key; self.problem = problem
    }

    public var description: String {
        var s = file
        if let line { s += " line \(line)" }
        s += ": "
        if let key { s += "key '\(key)': " }
        return s + problem
    }
}
