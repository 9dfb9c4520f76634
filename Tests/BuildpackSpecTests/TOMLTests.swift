import Foundation
import Testing
@testable import BuildpackSpec

@Suite("TOML parser")
struct TOMLParserTests {
    @Test func parsesEveryValueType() throws {
        let table = try TOML.parse(#"""
        # comment
        str = "a\tb \"q\" \u00e9 \U0001F600"
        lit = 'C:\path'
        ml = """
        line1
          line2 \
            joined"""
        mll = '''
        raw \n '' '''
        int = +1_000
        neg = -17
        hex = 0xDEAD_beef
        oct = 0o755
        bin = 0b1101
        flt = 6.626e-34
        flt2 = -0.5
        inf = -inf
        nan = nan
        yes = true
        no = false
        odt = 1979-05-27T07:32:00.999-07:00
        odt2 = 1979-05-27 07:32:00Z
        ldt = 1979-05-27T07:32:00
        ld = 1979-05-27
        lt = 07:32:00.5
        arr = [ 1, "two", [3.0], { four = 4 }, ]
        multi = [
          1, # one
          2,
        ]
        inline = { a.b = 1, c = "d" }
        "quoted key" = 1
        dotted.key."with quotes" = 2
        [table]
        x = 1
        [table.sub]
        y = 2
        [[aot]]
        n = 1
        [[aot]]
        n = 2
        [aot.child]
        z = 3
        """#)
        #expect(table["str"] == .string("a\tb \"q\" é 😀"))
        #expect(table["lit"] == .string(#"C:\path"#))
        #expect(table["ml"] == .string("line1\n  line2 joined"))
        #expect(table["mll"] == .string("raw \\n '' "))
        #expect(table["int"] == .integer(1000))
        #expect(table["neg"] == .integer(-17))
        #expect(table["hex"] == .integer(0xDEADBEEF))
        #expect(table["oct"] == .integer(0o755))
        #expect(table["bin"] == .integer(13))
        #expect(table["flt"] == .float(6.626e-34))
        #expect(table["flt2"] == .float(-0.5))
        #expect(table["inf"] == .float(-.infinity))
        #expect(table["nan"]?.floatValue?.isNaN == true)
        #expect(table["yes"] == .boolean(true))
        #expect(table["no"] == .boolean(false))
        guard case .dateTime(let odt)? = table["odt"], case .dateTime(let odt2)? = table["odt2"],
              case .dateTime(let ldt)? = table["ldt"], case .dateTime(let ld)? = table["ld"],
              case .dateTime(let lt)? = table["lt"]
        else { Issue.record("date-times did not parse"); return }
        #expect(odt.description == "1979-05-27T07:32:00.999-07:00")
        #expect(odt2.description == "1979-05-27T07:32:00Z")
        #expect(ldt.description == "1979-05-27T07:32:00")
        #expect(ld.description == "1979-05-27")
        #expect(lt.description == "07:32:00.5")
        #expect(table["arr"] == [1, "two", [3.0], ["four": 4]])
        #expect(table["multi"] == [1, 2])
        #expect(table["inline"] == ["a": ["b": 1], "c": "d"])
        #expect(table["quoted key"] == 1)
        #expect(table["dotted"] == ["key": ["with quotes": 2]])
        #expect(table["table"] == ["x": 1, "sub": ["y": 2]])
        #expect(table["aot"] == [["n": 1], ["n": 2, "child": ["z": 3]]])
    }

    @Test func specExamplesOfTableRules() throws {
        // From the TOML 1.0 spec: sub-tables of dotted-key tables may be added by header.
        let table = try TOML.parse("""
        [fruit]
        apple.color = "red"
        apple.taste.sweet = true
        [fruit.apple.texture]
        smooth = true
        """)
        #expect(table["fruit"] == ["apple": ["color": "red", "taste": ["sweet": true], "texture": ["smooth": true]]])
        // Super-tables may be defined after their sub-tables.
        let later = try TOML.parse("[x.y.z.w]\n[x]\na = 1\n")
        #expect(later["x"] == ["a": 1, "y": ["z": ["w": [:]]]])
    }

    @Test(arguments: [
        ("a = 1\na = 2", "defined more than once"),
        ("[a]\n[a]", "defined more than once"),
        ("[a]\nb=1\n[a.b]", "already an integer"),
        ("a = {}\n[a]", "already a table"),
        ("a = [1]\n[[a]]", "already an array"),
        ("[[a]]\n[a]", "already an array of tables"),
        ("[a]\n[[a]]", "already a table"),
        ("[fruit]\napple.color = 'red'\n[fruit.apple]", "defined more than once"),
        ("a = {b = 1}\na.c = 2", "already a table"),
        ("a = { b = 1, b = 2 }", "defined more than once"),
        ("a = { b = 1, }", "expected a key"),
        ("a = { b = 1\n}", "expected \",\" or \"}\""),
        ("a = 1 b = 2", "expected the end of the line"),
        ("a = ", "expected a value"),
        ("= 1", "expected a key"),
        ("a = \"unterminated", "unterminated string"),
        ("a = \"line\nbreak\"", "cannot span lines"),
        ("a = \"\\x41\"", "invalid escape"),
        ("a = \"\\uD800\"", "not a Unicode scalar"),
        ("a = 01", "leading zero"),
        ("a = 1__0", "not a valid number"),
        ("a = _1", "expected a value"),
        ("a = 1.", "not a valid number"),
        ("a = .5", "expected a value"),
        ("a = +0x10", "cannot have a sign"),
        ("a = 9223372036854775808", "does not fit"),
        ("a = 0x8000000000000000", "does not fit"),
        ("a = 1979-02-30", "day 30"),
        ("a = 1979-13-01", "month 13"),
        ("a = 24:00:00", "hour 24"),
        ("a = 07:32:00Z", "cannot have an offset"),
        ("a = tru", "expected a value"),
        ("a = truee", "after a value"),
        ("a = [1 2]", "expected \",\" or \"]\""),
        ("a = \"\u{01}\"", "control character"),
        ("# comment \u{7F}\n", "control character"),
        ("a = 1\r", "carriage return"),
        ("[a", "expected \"]\""),
        ("[[a]", "expected \"]]\""),
        ("a = \"\"\"x\"\"\"\"\"\"", "too many quotes"),
        ("\"\"\"k\"\"\" = 1", "multi-line string cannot be a key"),
        ("a = \"x\\u0000y\"", "NUL character"),
        ("a = \"\"\"x\\U00000000\"\"\"", "NUL character"),
    ])
    func rejectsInvalidTOML(input: String, message: String) {
        guard let error = specError({ () throws(SpecError) in try TOML.parse(input, file: "bad.toml") }) else { return }
        #expect(error.kind == .syntax, "\(input.debugDescription): \(error)")
        #expect(error.message.contains(message), "\(input.debugDescription): \(error)")
        #expect(error.file == "bad.toml")
        #expect(error.line != nil && error.column != nil)
    }

    @Test func reportsLineAndColumn() {
        let error = specError { () throws(SpecError) in try TOML.parse("a = 1\nb = [1,\n  2,\n  x]\n", file: "f.toml") }
        #expect(error?.line == 4)
        #expect(error?.column == 3)
        #expect(error?.description.hasPrefix("f.toml:4:3: ") == true)
    }

    @Test func rejectsInvalidUTF8() {
        let bytes: [UInt8] = Array("a = \"".utf8) + [0xFF, 0xFE] + Array("\"\n".utf8)
        let error = specError { () throws(SpecError) in try TOML.parse(bytes, file: "bad.toml") }
        #expect(error?.kind == .invalidUTF8)
        #expect(error?.line == 1 && error?.column == 6)
        // Overlong encodings and surrogates are invalid too.
        #expect(specError { () throws(SpecError) in try TOML.parse([0x61, 0x3D, 0x22, 0xC0, 0xAF, 0x22]) }?.kind == .invalidUTF8)
        #expect(specError { () throws(SpecError) in try TOML.parse([0x61, 0x3D, 0x22, 0xED, 0xA0, 0x80, 0x22]) }?.kind == .invalidUTF8)
    }

    @Test func rejectsNULInsteadOfTruncating() {
        // A C-string based parser would see only "a = 1" and ignore the rest.
        let error = specError { () throws(SpecError) in try TOML.parse("a = 1\n\u{0}b = [") }
        #expect(error?.kind == .syntax)
        #expect(specError { () throws(SpecError) in try TOML.parse("a = \"x\u{0}y\"") }?.message.contains("control character") == true)
    }

    @Test(arguments: [
        ("arrays", String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)),
        ("inline tables", String(repeating: "{a=", count: 10_000) + "1" + String(repeating: "}", count: 10_000)),
    ])
    func refusesDeeplyNestedValues(name: String, value: String) {
        let error = specError { () throws(SpecError) in try TOML.parse("x = " + value) }
        #expect(error?.kind == .tooDeep, "\(name)")
    }

    @Test func refusesDeeplyNestedTablesAndKeys() {
        let header = "[" + Array(repeating: "a", count: 10_000).joined(separator: ".") + "]\nx = 1\n"
        #expect(specError { () throws(SpecError) in try TOML.parse(header) }?.kind == .tooDeep)
        let arrayHeader = "[[" + Array(repeating: "a", count: 10_000).joined(separator: ".") + "]]\n"
        #expect(specError { () throws(SpecError) in try TOML.parse(arrayHeader) }?.kind == .tooDeep)
        let key = Array(repeating: "a", count: 10_000).joined(separator: ".") + " = 1\n"
        #expect(specError { () throws(SpecError) in try TOML.parse(key) }?.kind == .tooDeep)
        // Depth is counted from the root: a header of 40 parts plus a dotted key of 40 parts is too deep.
        let combined = "[" + Array(repeating: "a", count: 40).joined(separator: ".") + "]\n"
            + Array(repeating: "b", count: 40).joined(separator: ".") + " = 1\n"
        #expect(specError { () throws(SpecError) in try TOML.parse(combined) }?.kind == .tooDeep)
        // A million-part header (the input that crashes toml++) is refused, not a stack overflow.
        let huge = "[" + Array(repeating: "a", count: 1_000_000).joined(separator: ".") + "]\n"
        #expect(specError { () throws(SpecError) in try TOML.parse(huge) }?.kind == .tooDeep)
    }

    @Test func acceptsNestingUpToTheLimit() throws {
        let depth = TOML.maximumDepth
        let value = String(repeating: "[", count: depth - 1) + String(repeating: "]", count: depth - 1)
        _ = try TOML.parse("x = " + value)
        let header = "[" + Array(repeating: "a", count: depth).joined(separator: ".") + "]\n"
        _ = try TOML.parse(header)
    }

    @Test func parsesLargeDocumentsQuickly() throws {
        // 8 MiB in one string and 100,000 keys: under the 10 MiB cap, parsed in well under a few seconds.
        let big = "s = \"" + String(repeating: "x", count: 8 << 20) + "\"\n"
        let start = ContinuousClock.now
        let table = try TOML.parse(big)
        #expect(table["s"]?.stringValue?.utf8.count == 8 << 20)
        let many = (0..<100_000).map { "k\($0) = \($0)" }.joined(separator: "\n")
        let keys = try TOML.parse(many)
        #expect(keys.count == 100_000)
        #expect(ContinuousClock.now - start < .seconds(30))
    }

    @Test func skipsByteOrderMarkAndAcceptsCRLF() throws {
        let table = try TOML.parse([0xEF, 0xBB, 0xBF] + Array("a = 1\r\nb = \"\"\"x\r\ny\"\"\"\r\n".utf8))
        #expect(table == ["a": 1, "b": "x\ny"])
    }
}

@Suite("TOML writer")
struct TOMLWriterTests {
    @Test func rendersDeterministicallyWithSortedKeys() throws {
        let table: TOMLTable = [
            "zeta": 1, "alpha": "a", "needs quotes": true, "empty": [:],
            "nested": ["b": 2, "a": ["deep": [1, 2]]],
            "list": [["name": "x", "metadata": ["v": "1"]], ["name": "y"]],
            "mixed": [1, ["k": "v"]],
            "floats": [1.0, 1e300, -0.0, .float(.infinity), .float(-.infinity)],
        ]
        let text = TOML.render(table)
        #expect(text == """
        alpha = "a"
        floats = [1.0, 1e+300, -0.0, inf, -inf]
        mixed = [1, { k = "v" }]
        "needs quotes" = true
        zeta = 1

        [empty]

        [[list]]
        name = "x"

        [list.metadata]
        v = "1"

        [[list]]
        name = "y"

        [nested]
        b = 2

        [nested.a]
        deep = [1, 2]

        """)
        #expect(TOML.render(table) == text)
        #expect(try TOML.parse(text) == table)
    }

    @Test func escapesStringsAndRoundTrips() throws {
        let tricky = "quote \" backslash \\ tab \t newline \n cr \r bell \u{07} del \u{7F} é 😀"
        let table: TOMLTable = ["s": .string(tricky), "k\"ey": 1, "": 2, "a.b": 3]
        let text = TOML.render(table)
        #expect(text.contains(#"\u0007"#))
        #expect(text.contains(#"\u007F"#))
        #expect(try TOML.parse(text) == table)
    }

    @Test func roundTripsParsedDocuments() throws {
        let source = """
        api = "0.12"
        [buildpack]
        id = "x"
        [[order]]
        [[order.group]]
        id = "a"
        version = "1"
        [metadata]
        when = 1979-05-27T07:32:00Z
        n = nan
        nested = { a = [ { b = 1 } ], c = {} }
        """
        let table = try TOML.parse(source)
        let rendered = TOML.render(table)
        #expect(try TOML.parse(rendered) == table)
        #expect(TOML.render(try TOML.parse(rendered)) == rendered)
    }
}
