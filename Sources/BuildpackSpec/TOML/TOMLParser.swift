import TextEncoding

/// TOML 1.0, parsed in Swift: the entry points.
///
/// Why not a C/C++ parser: LebJe/TOMLKit 0.6.0 (toml++) overflows the stack on a deeply dotted table
/// header well under our 10 MiB cap (`[a.a.a…]` with 5,000 parts crashes a 512 KiB thread; 1,000,000 parts
/// crash the 8 MiB main thread), silently ignores everything after a NUL byte (it hands the text over as a
/// C string), and reports type mismatches as missing keys. This parser is iterative except for
/// nesting, and nesting is capped.
///
/// Limits for hostile input:
/// - Nesting depth (tables, arrays, inline tables and dotted-key parts, counted from the root) is capped at
///   `maximumDepth` (64 by default); deeper input fails with `.tooDeep` before any deeper recursion.
/// - The input size is the caller's business: `ConfinedDirectory` refuses files over 10 MiB before parsing.
/// - Invalid UTF-8, NUL and other control characters, duplicate keys, redefined tables, integer overflow and
///   invalid dates are errors with a line and column.
/// - Deliberately stricter than TOML 1.0: a `\u0000` escape is an error, so no parsed string can carry a NUL
///   into argv, the environment or a path.
/// - Memory: about 15 bytes per input byte in the worst case measured (10 MiB of `[[a]]` or `x=[{},{},…]`
///   peaks at ~160 MB), typical documents far less.
public enum TOML {
    /// The default nesting limit.
    public static let maximumDepth = 64

    /// Parses a TOML document.
    /// - Parameters:
    ///   - bytes: the document, UTF-8 (a leading byte-order mark is skipped).
    ///   - file: the name used in error messages.
    ///   - maximumDepth: the nesting limit.
    public static func parse(_ bytes: [UInt8], file: String = "<input>",
                             maximumDepth: Int = TOML.maximumDepth) throws(SpecError) -> TOMLTable
    {
        if let offset = UTF8Check.firstInvalidOffset(bytes) {
            let (line, column) = TOMLParser.location(of: offset, in: bytes)
            throw SpecError(.invalidUTF8, "the document is not valid UTF-8", file: file, line: line, column: column)
        }
        var parser = TOMLParser(bytes: bytes, file: file, maximumDepth: maximumDepth)
        return try parser.parseDocument()
    }

    /// Parses a TOML document held in a `String`.
    public static func parse(_ text: String, file: String = "<input>",
                             maximumDepth: Int = TOML.maximumDepth) throws(SpecError) -> TOMLTable
    {
        try parse(Array(text.utf8), file: file, maximumDepth: maximumDepth)
    }
}

/// The parser's mutable tree. Classes so that tables can be extended in place while parsing;
/// converted to `TOMLTable` values at the end.
private final class TableNode {
    enum Entry {
        case table(TableNode)
        case tableArray(TableArrayNode)
        case value(TOMLValue)
    }
    var entries: [String: Entry] = [:]
    /// Defined by a `[header]` (or the root): a second `[header]` for it is an error.
    var definedByHeader: Bool
    /// Created by a dotted key: only dotted keys may add to it, and no header may define it.
    let createdByDottedKey: Bool
    let depth: Int

    init(depth: Int, definedByHeader: Bool = false, createdByDottedKey: Bool = false) {
        self.depth = depth
        self.definedByHeader = definedByHeader
        self.createdByDottedKey = createdByDottedKey
    }

    func toValue() -> TOMLTable {
        if entries.isEmpty { return TOMLTable() }
        var out: [String: TOMLValue] = [:]
        out.reserveCapacity(entries.count)
        for (key, entry) in entries {
            switch entry {
            case .table(let node): out[key] = .table(node.toValue())
            case .tableArray(let array): out[key] = .array(array.tables.map { .table($0.toValue()) })
            case .value(let value): out[key] = value
            }
        }
        return TOMLTable(out)
    }
}

private final class TableArrayNode {
    var tables: [TableNode] = []
}

private enum Byte {
    static let tab: UInt8 = 0x09, lf: UInt8 = 0x0A, cr: UInt8 = 0x0D, space: UInt8 = 0x20
    static let quote: UInt8 = 0x22, hash: UInt8 = 0x23, apostrophe: UInt8 = 0x27
    static let plus: UInt8 = 0x2B, comma: UInt8 = 0x2C, minus: UInt8 = 0x2D, dot: UInt8 = 0x2E
    static let zero: UInt8 = 0x30, nine: UInt8 = 0x39, colon: UInt8 = 0x3A, equals: UInt8 = 0x3D
    static let openBracket: UInt8 = 0x5B, backslash: UInt8 = 0x5C, closeBracket: UInt8 = 0x5D
    static let underscore: UInt8 = 0x5F, openBrace: UInt8 = 0x7B, closeBrace: UInt8 = 0x7D, del: UInt8 = 0x7F

    static func isDigit(_ b: UInt8) -> Bool { b >= zero && b <= nine }
    static func isBareKey(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || isDigit(b) || b == minus || b == underscore
    }
    /// Control characters TOML forbids in comments and strings (everything below 0x20 but tab, and DEL).
    static func isForbiddenControl(_ b: UInt8) -> Bool { (b < 0x20 && b != tab) || b == del }
}

struct TOMLParser {
    private let bytes: [UInt8]
    private var i = 0
    private let file: String
    private let maximumDepth: Int
    private let root: TableNode
    private var current: TableNode

    init(bytes: [UInt8], file: String, maximumDepth: Int) {
        self.bytes = bytes
        self.file = file
        self.maximumDepth = maximumDepth
        self.root = TableNode(depth: 0, definedByHeader: true)
        self.current = root
    }

    // MARK: - Errors and positions

    static func location(of offset: Int, in bytes: [UInt8]) -> (line: Int, column: Int) {
        var line = 1, column = 1
        var k = 0
        let end = min(offset, bytes.count)
        while k < end {
            let b = bytes[k]
            if b == Byte.lf { line += 1; column = 1 } else if b & 0xC0 != 0x80 { column += 1 }
            k += 1
        }
        return (line, column)
    }

    private func fail(_ message: String, at offset: Int? = nil, kind: SpecError.Kind = .syntax) -> SpecError {
        let (line, column) = Self.location(of: offset ?? i, in: bytes)
        return SpecError(kind, message, file: file, line: line, column: column)
    }

    private var atEnd: Bool { i >= bytes.count }
    private func peek(_ ahead: Int = 0) -> UInt8? {
        let k = i + ahead
        return k < bytes.count ? bytes[k] : nil
    }

    private func describeHere() -> String {
        guard let b = peek() else { return "the end of the document" }
        switch b {
        case Byte.lf, Byte.cr: return "the end of the line"
        case 0x20...0x7E: return "\"\(Character(Unicode.Scalar(b)))\""
        default: return "byte 0x\(String(b, radix: 16))"
        }
    }

    // MARK: - Document

    mutating func parseDocument() throws(SpecError) -> TOMLTable {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
        while true {
            skipWhitespace()
            guard let b = peek() else { break }
            switch b {
            case Byte.hash, Byte.lf, Byte.cr:
                break
            case Byte.openBracket:
                try parseHeader()
            default:
                try parseKeyValue(into: current, depth: current.depth)
            }
            try expectLineEnd()
        }
        return root.toValue()
    }

    private mutating func skipWhitespace() {
        while let b = peek(), b == Byte.space || b == Byte.tab { i += 1 }
    }

    /// Skips a comment (if there is one) up to, not including, the line break.
    private mutating func skipComment() throws(SpecError) {
        guard peek() == Byte.hash else { return }
        i += 1
        while let b = peek() {
            if b == Byte.lf { return }
            if b == Byte.cr {
                if peek(1) == Byte.lf { return }
                throw fail("a carriage return must be followed by a line feed")
            }
            if Byte.isForbiddenControl(b) {
                throw fail("control character 0x\(String(b, radix: 16)) is not allowed in a comment")
            }
            i += 1
        }
    }

    /// Consumes a line break, if there is one; returns whether it did.
    private mutating func consumeNewline() throws(SpecError) -> Bool {
        if peek() == Byte.lf { i += 1; return true }
        if peek() == Byte.cr {
            guard peek(1) == Byte.lf else { throw fail("a carriage return must be followed by a line feed") }
            i += 2
            return true
        }
        return false
    }

    private mutating func expectLineEnd() throws(SpecError) {
        skipWhitespace()
        try skipComment()
        if atEnd { return }
        if try consumeNewline() { return }
        throw fail("expected the end of the line, found \(describeHere())")
    }

    /// Whitespace, comments and line breaks (inside arrays).
    private mutating func skipWhitespaceCommentsAndNewlines() throws(SpecError) {
        while true {
            skipWhitespace()
            try skipComment()
            if try !consumeNewline() { return }
        }
    }

    // MARK: - Keys

    private mutating func parseKey() throws(SpecError) -> [String] {
        var keys = [try parseSimpleKey()]
        while true {
            let save = i
            skipWhitespace()
            guard peek() == Byte.dot else { i = save; break }
            i += 1
            skipWhitespace()
            keys.append(try parseSimpleKey())
            if keys.count > maximumDepth {
                throw fail("the dotted key has more than \(maximumDepth) parts", kind: .tooDeep)
            }
        }
        return keys
    }

    private mutating func parseSimpleKey() throws(SpecError) -> String {
        guard let b = peek() else { throw fail("expected a key, found the end of the document") }
        if b == Byte.quote {
            if peek(1) == Byte.quote && peek(2) == Byte.quote {
                throw fail("a multi-line string cannot be a key")
            }
            return try parseBasicString()
        }
        if b == Byte.apostrophe {
            if peek(1) == Byte.apostrophe && peek(2) == Byte.apostrophe {
                throw fail("a multi-line string cannot be a key")
            }
            return try parseLiteralString()
        }
        let start = i
        while let c = peek(), Byte.isBareKey(c) { i += 1 }
        if i == start { throw fail("expected a key, found \(describeHere())") }
        return String(decoding: bytes[start..<i], as: UTF8.self)
    }

    private static func render(_ keys: some Collection<String>) -> String {
        keys.map { key in
            key.utf8.allSatisfy(Byte.isBareKey) && !key.isEmpty ? key : "\"\(key)\""
        }.joined(separator: ".")
    }

    // MARK: - Tables

    private mutating func parseHeader() throws(SpecError) {
        let start = i
        i += 1  // [
        let isArray = peek() == Byte.openBracket
        if isArray { i += 1 }
        skipWhitespace()
        let keys = try parseKey()
        skipWhitespace()
        guard peek() == Byte.closeBracket else {
            throw fail("expected \"]\" to close the table header, found \(describeHere())")
        }
        i += 1
        if isArray {
            guard peek() == Byte.closeBracket else {
                throw fail("expected \"]]\" to close the array-of-tables header, found \(describeHere())")
            }
            i += 1
        }
        let name = Self.render(keys)

        var table = root
        for (index, key) in keys.dropLast().enumerated() {
            switch table.entries[key] {
            case nil:
                let node = try newTable(in: table, at: start)
                table.entries[key] = .table(node)
                table = node
            case .table(let node)?:
                table = node
            case .tableArray(let array)?:
                table = array.tables[array.tables.count - 1]
            case .value(let value)?:
                throw fail("cannot define table \(name): \(Self.render(keys[...index])) is already \(value.typeDescription)",
                           at: start)
            }
        }
        let last = keys[keys.count - 1]
        if isArray {
            switch table.entries[last] {
            case nil:
                let array = TableArrayNode()
                let node = try newTable(in: table, at: start, definedByHeader: true)
                array.tables.append(node)
                table.entries[last] = .tableArray(array)
                current = node
            case .tableArray(let array)?:
                let node = try newTable(in: table, at: start, definedByHeader: true)
                array.tables.append(node)
                current = node
            case .table?:
                throw fail("cannot define array of tables \(name): it is already a table", at: start)
            case .value(let value)?:
                throw fail("cannot define array of tables \(name): it is already \(value.typeDescription)", at: start)
            }
        } else {
            switch table.entries[last] {
            case nil:
                let node = try newTable(in: table, at: start, definedByHeader: true)
                table.entries[last] = .table(node)
                current = node
            case .table(let node)?:
                if node.definedByHeader || node.createdByDottedKey {
                    throw fail("table \(name) is defined more than once", at: start)
                }
                node.definedByHeader = true
                current = node
            case .tableArray?:
                throw fail("cannot define table \(name): it is already an array of tables", at: start)
            case .value(let value)?:
                throw fail("cannot define table \(name): it is already \(value.typeDescription)", at: start)
            }
        }
    }

    private func newTable(in parent: TableNode, at offset: Int, definedByHeader: Bool = false,
                          createdByDottedKey: Bool = false) throws(SpecError) -> TableNode
    {
        let depth = parent.depth + 1
        if depth > maximumDepth {
            throw fail("tables nest deeper than \(maximumDepth) levels", at: offset, kind: .tooDeep)
        }
        return TableNode(depth: depth, definedByHeader: definedByHeader, createdByDottedKey: createdByDottedKey)
    }

    /// `key = value`, where the key may be dotted, added to `table` (the current table or an inline table).
    private mutating func parseKeyValue(into table: TableNode, depth: Int) throws(SpecError) {
        let start = i
        let keys = try parseKey()
        skipWhitespace()
        guard peek() == Byte.equals else { throw fail("expected \"=\" after the key, found \(describeHere())") }
        i += 1
        skipWhitespace()

        var target = table
        for (index, key) in keys.dropLast().enumerated() {
            switch target.entries[key] {
            case nil:
                let node = try newTable(in: target, at: start, createdByDottedKey: true)
                target.entries[key] = .table(node)
                target = node
            case .table(let node)?:
                guard node.createdByDottedKey else {
                    throw fail("cannot add \(Self.render(keys)) with a dotted key: table \(Self.render(keys[...index])) is defined elsewhere",
                               at: start)
                }
                target = node
            case .tableArray?:
                throw fail("cannot add \(Self.render(keys)): \(Self.render(keys[...index])) is an array of tables", at: start)
            case .value(let value)?:
                throw fail("cannot add \(Self.render(keys)): \(Self.render(keys[...index])) is already \(value.typeDescription)",
                           at: start)
            }
        }
        let last = keys[keys.count - 1]
        if target.entries[last] != nil {
            throw fail("key \(Self.render(keys)) is defined more than once", at: start)
        }
        let value = try parseValue(depth: target.depth + 1)
        target.entries[last] = .value(value)
    }

    // MARK: - Values

    private mutating func parseValue(depth: Int) throws(SpecError) -> TOMLValue {
        guard let b = peek() else { throw fail("expected a value, found the end of the document") }
        switch b {
        case Byte.quote:
            if peek(1) == Byte.quote && peek(2) == Byte.quote { return .string(try parseMultilineBasicString()) }
            return .string(try parseBasicString())
        case Byte.apostrophe:
            if peek(1) == Byte.apostrophe && peek(2) == Byte.apostrophe {
                return .string(try parseMultilineLiteralString())
            }
            return .string(try parseLiteralString())
        case Byte.openBracket:
            if depth > maximumDepth { throw fail("values nest deeper than \(maximumDepth) levels", kind: .tooDeep) }
            return try parseArray(depth: depth)
        case Byte.openBrace:
            if depth > maximumDepth { throw fail("values nest deeper than \(maximumDepth) levels", kind: .tooDeep) }
            return try parseInlineTable(depth: depth)
        case 0x74 /* t */:
            if bytes[i...].starts(with: Array("true".utf8)) { i += 4; return try checkValueEnd(.boolean(true)) }
        case 0x66 /* f */:
            if bytes[i...].starts(with: Array("false".utf8)) { i += 5; return try checkValueEnd(.boolean(false)) }
        default:
            break
        }
        if Byte.isDigit(b) || b == Byte.plus || b == Byte.minus || b == 0x69 /* i */ || b == 0x6E /* n */ {
            return try parseNumberOrDateTime()
        }
        throw fail("expected a value, found \(describeHere())")
    }

    /// A bare value must be followed by whitespace, a comment, a line break, `,`, `]` or `}`.
    private func checkValueEnd(_ value: TOMLValue) throws(SpecError) -> TOMLValue {
        guard let b = peek() else { return value }
        switch b {
        case Byte.space, Byte.tab, Byte.lf, Byte.cr, Byte.hash, Byte.comma, Byte.closeBracket, Byte.closeBrace:
            return value
        default:
            throw fail("unexpected \(describeHere()) after a value")
        }
    }

    private mutating func parseArray(depth: Int) throws(SpecError) -> TOMLValue {
        i += 1  // [
        var items: [TOMLValue] = []
        while true {
            try skipWhitespaceCommentsAndNewlines()
            if peek() == Byte.closeBracket { i += 1; return .array(items) }
            items.append(try parseValue(depth: depth + 1))
            try skipWhitespaceCommentsAndNewlines()
            switch peek() {
            case Byte.comma?: i += 1
            case Byte.closeBracket?: i += 1; return .array(items)
            default: throw fail("expected \",\" or \"]\" in an array, found \(describeHere())")
            }
        }
    }

    private mutating func parseInlineTable(depth: Int) throws(SpecError) -> TOMLValue {
        i += 1  // {
        // depth is the inline table's own depth; its keys' values sit one level deeper.
        let table = TableNode(depth: depth)
        skipWhitespace()
        if peek() == Byte.closeBrace { i += 1; return .table(table.toValue()) }
        while true {
            skipWhitespace()
            try parseKeyValue(into: table, depth: depth)
            skipWhitespace()
            switch peek() {
            case Byte.comma?: i += 1
            case Byte.closeBrace?: i += 1; return .table(table.toValue())
            default: throw fail("expected \",\" or \"}\" in an inline table, found \(describeHere())")
            }
        }
    }

    // MARK: - Strings

    private mutating func parseBasicString() throws(SpecError) -> String {
        i += 1  // "
        var out: [UInt8] = []
        while true {
            guard let b = peek() else { throw fail("unterminated string") }
            switch b {
            case Byte.quote:
                i += 1
                return String(decoding: out, as: UTF8.self)
            case Byte.backslash:
                try parseEscape(into: &out)
            case Byte.lf, Byte.cr:
                throw fail("a basic string cannot span lines (use \"\"\" for a multi-line string)")
            default:
                if Byte.isForbiddenControl(b) {
                    throw fail("control character 0x\(String(b, radix: 16)) must be escaped in a string")
                }
                out.append(b)
                i += 1
            }
        }
    }

    private mutating func parseMultilineBasicString() throws(SpecError) -> String {
        i += 3
        _ = try consumeNewline()  // a line break right after the opening quotes is trimmed
        var out: [UInt8] = []
        while true {
            guard let b = peek() else { throw fail("unterminated multi-line string") }
            switch b {
            case Byte.quote:
                if try consumeDelimiterRun(Byte.quote, into: &out, tooMany: "too many quotes at the end of a multi-line string") {
                    return String(decoding: out, as: UTF8.self)
                }
            case Byte.backslash:
                // A backslash at the end of a line trims the line break and following whitespace.
                var k = 1
                while let c = peek(k), c == Byte.space || c == Byte.tab { k += 1 }
                if peek(k) == Byte.lf || (peek(k) == Byte.cr && peek(k + 1) == Byte.lf) {
                    i += k
                    while true {
                        skipWhitespace()
                        if try !consumeNewline() { break }
                    }
                } else {
                    try parseEscape(into: &out)
                }
            default:
                try appendMultilineContent(b, into: &out, control: "must be escaped in a string")
            }
        }
    }

    private mutating func parseEscape(into out: inout [UInt8]) throws(SpecError) {
        let start = i
        i += 1  // backslash
        guard let e = peek() else { throw fail("unterminated escape sequence") }
        i += 1
        switch e {
        case 0x62: out.append(0x08)        // \b
        case 0x74: out.append(Byte.tab)     // \t
        case 0x6E: out.append(Byte.lf)      // \n
        case 0x66: out.append(0x0C)         // \f
        case 0x72: out.append(Byte.cr)      // \r
        case Byte.quote: out.append(Byte.quote)
        case Byte.backslash: out.append(Byte.backslash)
        case 0x75, 0x55:                    // \uXXXX, \UXXXXXXXX
            let count = e == 0x75 ? 4 : 8
            var value: UInt32 = 0
            for _ in 0..<count {
                guard let h = peek(), let digit = Self.hexValue(h) else {
                    throw fail("\\\(e == 0x75 ? "u" : "U") needs \(count) hexadecimal digits", at: start)
                }
                value = value << 4 | UInt32(digit)
                i += 1
            }
            if value == 0 {
                // Deliberately stricter than TOML: no string here may reach argv, the environment or a path
                // with a NUL in it, where it would silently cut the value short.
                throw fail("a NUL character (\\u0000) is not allowed in a string", at: start)
            }
            guard let scalar = Unicode.Scalar(value) else {
                throw fail("\\\(e == 0x75 ? "u" : "U")\(String(value, radix: 16, uppercase: true)) is not a Unicode scalar value",
                           at: start)
            }
            out.append(contentsOf: String(Character(scalar)).utf8)
        default:
            throw fail("invalid escape sequence", at: start)
        }
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }

    private mutating func parseLiteralString() throws(SpecError) -> String {
        i += 1
        let start = i
        while true {
            guard let b = peek() else { throw fail("unterminated literal string") }
            if b == Byte.apostrophe {
                let s = String(decoding: bytes[start..<i], as: UTF8.self)
                i += 1
                return s
            }
            if b == Byte.lf || b == Byte.cr {
                throw fail("a literal string cannot span lines (use ''' for a multi-line string)")
            }
            if Byte.isForbiddenControl(b) {
                throw fail("control character 0x\(String(b, radix: 16)) is not allowed in a literal string")
            }
            i += 1
        }
    }

    /// One byte of a multi-line string's content, neither delimiter nor escape: CRLF is kept as LF,
    /// a lone CR and other controls are errors (`control` says which rule they break).
    private mutating func appendMultilineContent(_ b: UInt8, into out: inout [UInt8], control: String) throws(SpecError) {
        switch b {
        case Byte.cr:
            guard peek(1) == Byte.lf else { throw fail("a carriage return must be followed by a line feed") }
            out.append(Byte.lf)
            i += 2
        case Byte.lf:
            out.append(b)
            i += 1
        default:
            if Byte.isForbiddenControl(b) { throw fail("control character 0x\(String(b, radix: 16)) \(control)") }
            out.append(b)
            i += 1
        }
    }

    /// At a run of `delimiter`s in a multi-line string: three close it, and up to two more before
    /// them belong to the content; a shorter run is content. Returns whether the string closed.
    private mutating func consumeDelimiterRun(_ delimiter: UInt8, into out: inout [UInt8],
                                              tooMany: String) throws(SpecError) -> Bool {
        var run = 0
        while peek(run) == delimiter { run += 1 }
        if run > 5 { throw fail(tooMany) }
        let closes = run >= 3
        out.append(contentsOf: repeatElement(delimiter, count: closes ? run - 3 : run))
        i += run
        return closes
    }

    private mutating func parseMultilineLiteralString() throws(SpecError) -> String {
        i += 3
        _ = try consumeNewline()
        var out: [UInt8] = []
        while true {
            guard let b = peek() else { throw fail("unterminated multi-line literal string") }
            switch b {
            case Byte.apostrophe:
                if try consumeDelimiterRun(Byte.apostrophe, into: &out, tooMany: "too many apostrophes at the end of a multi-line literal string") {
                    return String(decoding: out, as: UTF8.self)
                }
            default:
                try appendMultilineContent(b, into: &out, control: "is not allowed in a literal string")
            }
        }
    }

    // MARK: - Numbers and dates

    private mutating func parseNumberOrDateTime() throws(SpecError) -> TOMLValue {
        let start = i
        func isTokenByte(_ b: UInt8) -> Bool {
            Byte.isBareKey(b) || b == Byte.plus || b == Byte.dot || b == Byte.colon
        }
        while let b = peek(), isTokenByte(b) { i += 1 }
        // A date followed by a space and a time: "1979-05-27 07:32:00".
        if i - start == 10, bytes[start + 4] == Byte.minus, peek() == Byte.space,
           let h1 = peek(1), let h2 = peek(2), Byte.isDigit(h1), Byte.isDigit(h2), peek(3) == Byte.colon
        {
            i += 1
            while let b = peek(), isTokenByte(b) { i += 1 }
        }
        let token = Array(bytes[start..<i])
        let value: TOMLValue
        if Self.looksLikeDateTime(token) {
            value = .dateTime(try parseDateTime(token, at: start))
        } else {
            value = try parseNumber(token, at: start)
        }
        return try checkValueEnd(value)
    }

    private static func looksLikeDateTime(_ t: [UInt8]) -> Bool {
        if t.count >= 5, t[0...3].allSatisfy(Byte.isDigit), t[4] == Byte.minus { return true }
        if t.count >= 3, Byte.isDigit(t[0]), Byte.isDigit(t[1]), t[2] == Byte.colon { return true }
        return false
    }

    private func parseNumber(_ token: [UInt8], at start: Int) throws(SpecError) -> TOMLValue {
        let text = String(decoding: token, as: UTF8.self)
        func invalid() -> SpecError { fail("\"\(text)\" is not a valid number", at: start) }
        var body = token[...]
        var negative = false
        var signed = false
        if let first = body.first, first == Byte.plus || first == Byte.minus {
            negative = first == Byte.minus
            signed = true
            body = body.dropFirst()
        }
        if body.elementsEqual("inf".utf8) { return .float(negative ? -.infinity : .infinity) }
        if body.elementsEqual("nan".utf8) { return .float(negative ? -.nan : .nan) }

        // 0x, 0o, 0b
        if body.count > 2, body.first == Byte.zero, let p = body.dropFirst().first, p == 0x78 || p == 0x6F || p == 0x62 {
            if signed { throw fail("a hexadecimal, octal or binary integer cannot have a sign", at: start) }
            let radix: UInt64 = p == 0x78 ? 16 : (p == 0x6F ? 8 : 2)
            let digits = body.dropFirst(2)
            guard Self.underscoresValid(digits) else { throw invalid() }
            var value: UInt64 = 0
            for d in digits where d != Byte.underscore {
                guard let v = Self.hexValue(d), UInt64(v) < radix else { throw invalid() }
                let (m, o1) = value.multipliedReportingOverflow(by: radix)
                let (s, o2) = m.addingReportingOverflow(UInt64(v))
                if o1 || o2 || s > UInt64(Int64.max) {
                    throw fail("\"\(text)\" does not fit in a 64-bit signed integer", at: start)
                }
                value = s
            }
            return .integer(Int64(value))
        }

        // Decimal integer or float: int [. frac] [e exp]
        var k = body.startIndex
        let end = body.endIndex
        func scanDigits() -> Range<Int> {
            let s = k
            while k < end, Byte.isDigit(body[k]) || body[k] == Byte.underscore { k += 1 }
            return s..<k
        }
        let intPart = body[scanDigits()]
        guard !intPart.isEmpty, Self.underscoresValid(intPart) else { throw invalid() }
        if intPart.count > 1, intPart.first == Byte.zero { throw fail("\"\(text)\" has a leading zero", at: start) }
        var isFloat = false
        if k < end, body[k] == Byte.dot {
            k += 1
            let frac = body[scanDigits()]
            guard !frac.isEmpty, Self.underscoresValid(frac) else { throw invalid() }
            isFloat = true
        }
        if k < end, body[k] == 0x65 || body[k] == 0x45 {
            k += 1
            if k < end, body[k] == Byte.plus || body[k] == Byte.minus { k += 1 }
            let exp = body[scanDigits()]
            guard !exp.isEmpty, Self.underscoresValid(exp) else { throw invalid() }
            isFloat = true
        }
        guard k == end else { throw invalid() }

        let cleaned = String(decoding: token.filter { $0 != Byte.underscore }, as: UTF8.self)
        if isFloat {
            guard let d = Double(cleaned) else { throw invalid() }
            return .float(d)
        }
        guard let v = Int64(cleaned) else {
            throw fail("\"\(text)\" does not fit in a 64-bit signed integer", at: start)
        }
        return .integer(v)
    }

    /// Underscores only between two digits.
    private static func underscoresValid(_ s: ArraySlice<UInt8>) -> Bool {
        guard let first = s.first, let last = s.last else { return false }
        if first == Byte.underscore || last == Byte.underscore { return false }
        var previous: UInt8 = 0
        for b in s {
            if b == Byte.underscore && previous == Byte.underscore { return false }
            previous = b
        }
        return true
    }

    private func parseDateTime(_ token: [UInt8], at start: Int) throws(SpecError) -> TOMLDateTime {
        let text = String(decoding: token, as: UTF8.self)
        func invalid(_ why: String = "") -> SpecError {
            fail("\"\(text)\" is not a valid date or time\(why.isEmpty ? "" : ": " + why)", at: start)
        }
        var k = 0
        func number(_ width: Int) throws(SpecError) -> Int {
            guard k + width <= token.count else { throw invalid() }
            var v = 0
            for j in k..<(k + width) {
                guard Byte.isDigit(token[j]) else { throw invalid() }
                v = v * 10 + Int(token[j] - Byte.zero)
            }
            k += width
            return v
        }
        func expect(_ b: UInt8) throws(SpecError) {
            guard k < token.count, token[k] == b else { throw invalid() }
            k += 1
        }

        var date: TOMLDateTime.LocalDate?
        if token.count >= 5, token[4] == Byte.minus {
            let year = try number(4); try expect(Byte.minus)
            let month = try number(2); try expect(Byte.minus)
            let day = try number(2)
            guard (1...12).contains(month) else { throw invalid("month \(month)") }
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
            let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
            guard (1...days).contains(day) else { throw invalid("day \(day)") }
            date = .init(year: year, month: month, day: day)
            if k == token.count { return TOMLDateTime(date: date, time: nil) }
            guard token[k] == 0x54 || token[k] == 0x74 || token[k] == Byte.space else { throw invalid() }
            k += 1
        }
        let hour = try number(2); try expect(Byte.colon)
        let minute = try number(2); try expect(Byte.colon)
        let second = try number(2)
        guard hour < 24 else { throw invalid("hour \(hour)") }
        guard minute < 60 else { throw invalid("minute \(minute)") }
        guard second <= 60 else { throw invalid("second \(second)") }
        var fraction = ""
        if k < token.count, token[k] == Byte.dot {
            k += 1
            let s = k
            while k < token.count, Byte.isDigit(token[k]) { k += 1 }
            guard k > s else { throw invalid() }
            fraction = String(decoding: token[s..<k], as: UTF8.self)
        }
        let time = TOMLDateTime.LocalTime(hour: hour, minute: minute, second: second, fraction: fraction)
        var offset: Int?
        if k < token.count {
            guard date != nil else { throw invalid("a local time cannot have an offset") }
            if token[k] == 0x5A || token[k] == 0x7A {
                k += 1
                offset = 0
            } else if token[k] == Byte.plus || token[k] == Byte.minus {
                let negative = token[k] == Byte.minus
                k += 1
                let oh = try number(2); try expect(Byte.colon)
                let om = try number(2)
                guard oh < 24, om < 60 else { throw invalid("offset") }
                offset = (negative ? -1 : 1) * (oh * 60 + om)
            } else {
                throw invalid()
            }
        }
        guard k == token.count else { throw invalid() }
        return TOMLDateTime(date: date, time: time, offsetMinutes: offset)
    }
}
