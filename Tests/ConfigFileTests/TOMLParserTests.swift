import Testing
@testable import TOML

private func parse(_ text: String) throws(TOMLError) -> TOMLTable { try TOMLParser.parse(text) }

@Test func scalarsOfEveryKind() throws {
    let t = try parse("""
        # comment
        s = "a\\tb\\u00e9\\U0001F600"   # trailing comment
        l = 'C:\\no\\escapes'
        i = +1_000
        n = -17
        h = 0xdead_BEEF
        o = 0o755
        b = 0b1010
        f = 6.626e-34
        g = -0.5
        inf1 = inf
        yes = true
        no = false
        """)
    #expect(t["s"] == .string("a\tb\u{e9}\u{1F600}"))
    #expect(t["l"] == .string("C:\\no\\escapes"))
    #expect(t["i"] == .integer(1000) && t["n"] == .integer(-17))
    #expect(t["h"] == .integer(0xdeadbeef) && t["o"] == .integer(0o755) && t["b"] == .integer(10))
    #expect(t["f"] == .float(6.626e-34) && t["g"] == .float(-0.5) && t["inf1"] == .float(.infinity))
    #expect(t["yes"] == .boolean(true) && t["no"] == .boolean(false))
    #expect(t.keys == ["s", "l", "i", "n", "h", "o", "b", "f", "g", "inf1", "yes", "no"])
    #expect(t.line(of: "n") == 5)
}

@Test func multilineStrings() throws {
    let t = try parse("a = \"\"\"\nline one\nline \\\n    two\"\"\"\nb = '''\nraw \\n ''text'''''\nc = 1\n")
    #expect(t["a"] == .string("line one\nline two"))
    #expect(t["b"] == .string("raw \\n ''text''"))
    #expect(t.line(of: "c") == 7)
}

@Test func tablesDottedKeysAndArraysOfTables() throws {
    let t = try parse("""
        [cluster]
        timing.hb = 100
        "quoted key" = 1
        [[node]]
        id = "A"
        [node.extra]
        x = 1
        [[node]]
        id = "B"
        [a.b.c]
        d = [1, [2, 3], { e = "f", g.h = 2 }, ]
        m = [
          1,  # one
          2,
        ]
        """)
    let cluster = try #require(t["cluster"]?.table)
    #expect(cluster["timing"]?.table?["hb"] == .integer(100))
    #expect(cluster["quoted key"] == .integer(1))
    let nodes = try #require(t["node"]?.array)
    #expect(nodes.count == 2)
    #expect(nodes[0].table?["id"] == .string("A"))
    #expect(nodes[0].table?["extra"]?.table?["x"] == .integer(1))
    #expect(nodes[1].table?["id"] == .string("B"))
    #expect(nodes[1].table?.line == 8)
    let d = try #require(t["a"]?.table?["b"]?.table?["c"]?.table?["d"]?.array)
    #expect(d[0] == .integer(1) && d[1] == .array([.integer(2), .integer(3)]))
    #expect(d[2].table?["g"]?.table?["h"] == .integer(2))
    #expect(t["a"]?.table?["b"]?.table?["c"]?.table?["m"] == .array([.integer(1), .integer(2)]))
}

@Test(arguments: [
    ("a = 1\na = 2\n", 2, "duplicate key"),
    ("[t]\n[t]\n", 2, "redefines"),
    ("a = 1\n[a]\n", 2, "redefines"),
    ("a = \"open\n", 1, "unterminated"),
    ("a = 1 b = 2\n", 1, "after the value"),
    ("\n\nwhen = 2024-01-01\n", 3, "dates and times are not supported"),
    ("t = 07:30:00\n", 1, "dates and times"),
    ("a = 012\n", 1, "not a value"),
    ("a = 1__0\n", 1, "not a value"),
    ("a = .5\n", 1, "not a value"),
    ("a = \"\\q\"\n", 1, "unknown escape"),
    ("a = [1, 2\n", 2, "expected ',' or ']'"),
    ("a = { b = 1\n", 1, "inline table"),
    ("x = { a = 1 }\n[x.b]\n", 2, "inline table"),
    ("= 1\n", 1, "expected a key"),
    ("a =\n", 1, "expected a value"),
    ("[t\n", 1, "']'"),
    ("a = hello\n", 1, "strings need quotes"),
])
func syntaxErrorsNameTheLine(text: String, line: Int, fragment: String) {
    do {
        _ = try parse(text)
        Issue.record("accepted \(text.debugDescription)")
    } catch {
        #expect(error.line == line, "\(error)")
        #expect(error.message.contains(fragment), "\(error)")
    }
}

@Test func deepNestingIsRefusedNotACrash() {
    let text = "a = " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "\n"
    #expect(throws: TOMLError.self) { try parse(text) }
}

@Test func theShippedConfigParses() throws {
    // Every line of packaging/kvsupervisor.toml, with its comments, is valid TOML for this parser.
    let t = try parse("""
        [supervisor]
        socket_group = "kvsupervisor"             # members may use kvctl; root always may
        event_log = "/var/lib/kvsupervisor/events.jsonl"
        [cluster]
        # hb_interval_ms = 100
        """)
    #expect(t["supervisor"]?.table?["socket_group"] == .string("kvsupervisor"))
}
