import Testing
@testable import Seccomp
@testable import JSON

private func parse(_ text: String) throws(JSONError) -> JSONValue {
    try JSONParser.parse(Array(text.utf8))
}

private func parseError(_ bytes: [UInt8]) -> JSONError? {
    do {
        _ = try JSONParser.parse(bytes)
        return nil
    } catch {
        return error
    }
}

private func parseError(_ text: String) -> JSONError? { parseError(Array(text.utf8)) }

@Suite struct JSONParserTests {
    @Test func scalarsAndContainers() throws {
        #expect(try parse(" null ") == .null)
        #expect(try parse("true") == .bool(true))
        #expect(try parse("\"a\"") == .string("a"))
        #expect(try parse("[1, [], {}]") == .array([.number(JSONNumber("1")), .array([]), .object(JSONObject([]))]))
    }

    @Test func objectsKeepKeyOrder() throws {
        guard case .object(let object) = try parse(#"{"z": 1, "a": 2, "m": 3}"#) else {
            Issue.record("not an object")
            return
        }
        #expect(object.members.map(\.key) == ["z", "a", "m"])
        #expect(object["a"] == .number(JSONNumber("2")))
        #expect(object["b"] == nil)
    }

    @Test(arguments: [
        ("0", UInt64(0)),
        ("18446744073709551615", UInt64.max),
        ("9007199254740993", UInt64(9_007_199_254_740_993)),  // 2^53 + 1: lost through Double
        ("4294967295", UInt64(0xFFFF_FFFF)),
    ])
    func integersAreExact(literal: String, value: UInt64) throws {
        guard case .number(let number) = try parse(literal) else {
            Issue.record("not a number")
            return
        }
        #expect(number.uint64 == value)
        #expect(number.literal == literal)
    }

    @Test func integerAccessorsRejectWhatDoesNotFit() throws {
        #expect(JSONNumber("18446744073709551616").uint64 == nil)
        #expect(JSONNumber("-1").uint64 == nil)
        #expect(JSONNumber("-1").int64 == -1)
        #expect(JSONNumber("-9223372036854775808").int64 == Int64.min)
        #expect(JSONNumber("-9223372036854775809").int64 == nil)
        #expect(JSONNumber("9223372036854775808").int64 == nil)
        #expect(JSONNumber("1.0").uint64 == nil)
        #expect(JSONNumber("1e2").uint64 == nil)
        #expect(JSONNumber("1e2").double == 100)
        // A number beyond UInt64 still parses; only reading it as an integer fails.
        #expect(try parse("18446744073709551616") == .number(JSONNumber("18446744073709551616")))
    }

    @Test func stringEscapes() throws {
        #expect(try parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{8}\u{C}\n\r\t"))
        #expect(try parse(#""\u00e9\u4e2d""#) == .string("é中"))
        #expect(try parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try parse("\"é😀\"") == .string("é😀"))
    }

    @Test func depthLimit() throws {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(throws: Never.self) { try parse(ok) }
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(parseError(deep)?.reason == "nesting is deeper than 64 levels")
        // Deep nesting far past the limit fails the same way instead of exhausting the stack.
        #expect(parseError(String(repeating: "{\"a\":", count: 100_000)) != nil)
    }

    @Test func sizeLimit() {
        let big = [UInt8](repeating: 0x20, count: (1 << 20) + 1)
        #expect(parseError(big)?.reason.contains("at most 1048576") == true)
        var justFits = [UInt8](repeating: 0x20, count: 1 << 20)
        justFits[0] = UInt8(ascii: "0")
        #expect(parseError(justFits) == nil)
    }

    @Test(arguments: [
        // (input, line, column, part of the reason)
        ("[1, 2,]", 1, 7, "expected a value"),
        ("{\"a\": 1,}", 1, 9, "expected a string key"),
        ("[1, 2", 1, 6, "expected ',' or ']'"),
        ("{\"a\": ", 1, 7, "unexpected end of input"),
        ("\"abc", 1, 5, "end of input inside a string"),
        ("tru", 1, 1, "expected a value"),
        ("// c\n{}", 1, 1, "unexpected '/'"),
        ("{}\n/* c */", 2, 1, "after the document"),
        ("{\"a\": 1, \"a\": 2}", 1, 10, "duplicate key \"a\""),
        (#"{"a\nb": 1, "a\nb": 2}"#, 1, 13, #"duplicate key "a?b""#),  // messages stay on one line
        ("01", 1, 2, "leading zeros"),
        ("-", 1, 2, "expected a digit"),
        ("1.", 1, 3, "after '.'"),
        ("1e", 1, 3, "exponent"),
        ("+1", 1, 1, "unexpected '+'"),
        ("NaN", 1, 1, "unexpected 'N'"),
        ("\"a\tb\"", 1, 3, "control character 0x09"),
        (#""\x""#, 1, 2, "invalid escape '\\x'"),
        (#""\ud83d""#, 1, 2, "not followed by a low surrogate"),
        (#""\ud83d\u0041""#, 1, 2, "not followed by a low surrogate"),
        (#""\ude00""#, 1, 2, "lone low surrogate"),
        (#""\u12G4""#, 1, 6, "hex digit"),
        ("[\n  1,\n  x\n]", 3, 3, "unexpected 'x'"),
        ("\"é\" x", 1, 5, "after the document"),  // columns count characters, not bytes
        ("", 1, 1, "expected a value"),
    ])
    func syntaxErrors(input: String, line: Int, column: Int, reason: String) {
        let error = parseError(input)
        #expect(error?.line == line, "\(String(describing: error))")
        #expect(error?.column == column, "\(String(describing: error))")
        #expect(error?.reason.contains(reason) == true, "\(String(describing: error))")
    }

    @Test(arguments: [
        [0x22, 0xFF, 0x22],  // never valid in UTF-8
        [0x22, 0xC0, 0xAF, 0x22],  // overlong '/'
        [0x22, 0xE0, 0x80, 0xAF, 0x22],  // overlong three-byte form
        [0x22, 0xED, 0xA0, 0x80, 0x22],  // an encoded surrogate (U+D800)
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
        [0x22, 0xC3, 0x22],  // continuation byte missing
        [0x22, 0xE2, 0x82],  // truncated at end of input
        [0x22, 0x80, 0x22],  // lone continuation byte
    ] as [[UInt8]])
    func invalidUTF8(bytes: [UInt8]) {
        let error = parseError(bytes)
        #expect(error?.reason.contains("UTF-8") == true, "\(String(describing: error))")
    }

    @Test func byteOrderMarkIsIgnored() throws {
        #expect(try JSONParser.parse([0xEF, 0xBB, 0xBF] + Array("[]".utf8)) == .array([]))
    }
}
