import TextEncoding

/// A JSON value as written: numbers keep their literal, so 64-bit integers stay exact,
/// and objects keep their key order.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// A JSON number kept as its literal. Integers are read from the digits, never through `Double`.
public struct JSONNumber: Sendable, Equatable, CustomStringConvertible {
    /// The number exactly as written; the parser has checked it against RFC 8259's grammar.
    public let literal: String

    public init(_ literal: String) { self.literal = literal }

    public var description: String { literal }

    /// The value if the literal is a non-negative integer (no fraction or exponent) that fits.
    public var uint64: UInt64? {
        guard !literal.isEmpty else { return nil }
        var value: UInt64 = 0
        for byte in literal.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            if o1 || o2 { return nil }
            value = sum
        }
        return value
    }

    /// The value if the literal is an integer (no fraction or exponent) that fits.
    public var int64: Int64? {
        guard literal.utf8.first == UInt8(ascii: "-") else {
            return uint64.flatMap { $0 <= UInt64(Int64.max) ? Int64($0) : nil }
        }
        guard let magnitude = JSONNumber(String(literal.dropFirst())).uint64 else { return nil }
        if magnitude <= UInt64(Int64.max) { return -Int64(magnitude) }
        return magnitude == UInt64(Int64.max) + 1 ? Int64.min : nil
    }

    /// The nearest `Double`.
    public var double: Double? { Double(literal) }
}

/// A JSON object whose members stay in document order. Keys are unique (the parser rejects duplicates).
public struct JSONObject: Sendable, Equatable {
    /// One `"key": value` pair.
    public struct Member: Sendable, Equatable {
        public let key: String
        public let value: JSONValue

        public init(key: String, value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    public let members: [Member]

    public init(_ members: [Member]) { self.members = members }

    public subscript(key: String) -> JSONValue? {
        members.first { $0.key == key }?.value
    }
}

/// A syntax error, with the 1-based line and column (in Unicode scalars) where it was found.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    public let line: Int
    public let column: Int
    public let reason: String

    public init(line: Int, column: Int, reason: String) {
        self.line = line
        self.column = column
        self.reason = reason
    }

    public var description: String { "\(line):\(column): \(reason)" }
}

/// A strict RFC 8259 parser: no comments, no trailing commas, valid UTF-8, no duplicate keys.
/// Input is bounded so that a hostile profile costs little memory and stack.
public struct JSONParser {
    public static let maxInputBytes = 1 << 20
    static let maxDepth = 64

    private let bytes: [UInt8]
    private var offset = 0
    private var depth = 0

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    public static func parse(_ bytes: [UInt8], maxBytes: Int = maxInputBytes) throws(JSONError) -> JSONValue {
        var parser = JSONParser(bytes)
        guard bytes.count <= maxBytes else {
            throw JSONError(line: 1, column: 1,
                            reason: "input is \(bytes.count) bytes; at most \(maxBytes) are allowed")
        }
        // RFC 8259 §8.1 lets a parser ignore a byte order mark; editors on some systems add one.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { parser.offset = 3 }
        parser.skipWhitespace()
        let value = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.offset == bytes.count else {
            throw parser.error("unexpected \(parser.found) after the document")
        }
        return value
    }

    // MARK: Values

    private mutating func parseValue() throws(JSONError) -> JSONValue {
        guard let byte = peek() else { throw error("unexpected end of input, expected a value") }
        switch byte {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw error("unexpected \(found), expected a value")
        }
    }

    private mutating func parseObject() throws(JSONError) -> JSONValue {
        try enterContainer()
        offset += 1
        var members: [JSONObject.Member] = []
        var keys: Set<String> = []
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            offset += 1
            depth -= 1
            return .object(JSONObject(members))
        }
        while true {
            guard peek() == UInt8(ascii: "\"") else {
                throw error("unexpected \(found), expected a string key")
            }
            let keyOffset = offset
            let key = try parseString()
            guard keys.insert(key).inserted else {
                throw error("duplicate key \(quoted(key))", at: keyOffset)
            }
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else {
                throw error("unexpected \(found), expected ':' after the key")
            }
            offset += 1
            skipWhitespace()
            members.append(JSONObject.Member(key: key, value: try parseValue()))
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","):
                offset += 1
                skipWhitespace()
            case UInt8(ascii: "}"):
                offset += 1
                depth -= 1
                return .object(JSONObject(members))
            default:
                throw error("unexpected \(found), expected ',' or '}' in an object")
            }
        }
    }

    private mutating func parseArray() throws(JSONError) -> JSONValue {
        try enterContainer()
        offset += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            offset += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            elements.append(try parseValue())
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","):
                offset += 1
                skipWhitespace()
            case UInt8(ascii: "]"):
                offset += 1
                depth -= 1
                return .array(elements)
            default:
                throw error("unexpected \(found), expected ',' or ']' in an array")
            }
        }
    }

    private mutating func enterContainer() throws(JSONError) {
        depth += 1
        guard depth <= Self.maxDepth else {
            throw error("nesting is deeper than \(Self.maxDepth) levels")
        }
    }

    private mutating func expectLiteral(_ word: StaticString) throws(JSONError) {
        let start = offset
        let matches = word.withUTF8Buffer { expected in
            bytes.count - offset >= expected.count && bytes[offset..<offset + expected.count].elementsEqual(expected)
        }
        guard matches else { throw error("unexpected \(found), expected a value", at: start) }
        offset += word.utf8CodeUnitCount
    }

    // MARK: Numbers

    private mutating func parseNumber() throws(JSONError) -> JSONNumber {
        let start = offset
        if peek() == UInt8(ascii: "-") { offset += 1 }
        switch peek() {
        case UInt8(ascii: "0"):
            offset += 1
            if let next = peek(), isDigit(next) {
                throw error("a number must not have leading zeros")
            }
        case let byte? where isDigit(byte):
            skipDigits()
        default:
            throw error("unexpected \(found), expected a digit")
        }
        if peek() == UInt8(ascii: ".") {
            offset += 1
            guard let byte = peek(), isDigit(byte) else {
                throw error("unexpected \(found), expected a digit after '.'")
            }
            skipDigits()
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            offset += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { offset += 1 }
            guard let byte = peek(), isDigit(byte) else {
                throw error("unexpected \(found), expected a digit in the exponent")
            }
            skipDigits()
        }
        return JSONNumber(String(decoding: bytes[start..<offset], as: UTF8.self))
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private mutating func skipDigits() {
        while let byte = peek(), isDigit(byte) { offset += 1 }
    }

    // MARK: Strings

    private mutating func parseString() throws(JSONError) -> String {
        offset += 1  // opening quote
        let start = offset
        var unescaped: [UInt8]? = nil  // built only once an escape turns up
        var runStart = start
        while true {
            guard let byte = peek() else { throw error("unexpected end of input inside a string") }
            switch byte {
            case UInt8(ascii: "\""):
                let string: String
                if var buffer = unescaped {
                    buffer.append(contentsOf: bytes[runStart..<offset])
                    string = String(decoding: buffer, as: UTF8.self)
                } else {
                    string = String(decoding: bytes[start..<offset], as: UTF8.self)
                }
                offset += 1
                return string
            case UInt8(ascii: "\\"):
                var buffer = unescaped ?? []
                buffer.append(contentsOf: bytes[runStart..<offset])
                try parseEscape(into: &buffer)
                unescaped = buffer
                runStart = offset
            case 0..<0x20:
                throw error("control character 0x\(hex(byte)) must be escaped inside a string")
            case 0..<0x80:
                offset += 1
            default:
                offset += try utf8SequenceLength()
            }
        }
    }

    private mutating func parseEscape(into buffer: inout [UInt8]) throws(JSONError) {
        let escapeStart = offset
        offset += 1
        guard let byte = peek() else { throw error("unexpected end of input inside a string") }
        offset += 1
        switch byte {
        case UInt8(ascii: "\""): buffer.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): buffer.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "/"): buffer.append(UInt8(ascii: "/"))
        case UInt8(ascii: "b"): buffer.append(0x08)
        case UInt8(ascii: "f"): buffer.append(0x0C)
        case UInt8(ascii: "n"): buffer.append(0x0A)
        case UInt8(ascii: "r"): buffer.append(0x0D)
        case UInt8(ascii: "t"): buffer.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = UInt32(try parseHex4())
            if (0xD800...0xDBFF).contains(scalar) {
                let unpaired = "high surrogate \\u\(hex16(scalar)) is not followed by a low surrogate"
                guard peek() == UInt8(ascii: "\\"), offset + 1 < bytes.count,
                      bytes[offset + 1] == UInt8(ascii: "u") else { throw error(unpaired, at: escapeStart) }
                offset += 2
                let low = UInt32(try parseHex4())
                guard (0xDC00...0xDFFF).contains(low) else { throw error(unpaired, at: escapeStart) }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw error("lone low surrogate \\u\(hex16(scalar))", at: escapeStart)
            }
            // The checks above leave no surrogate, so this is a valid scalar.
            UTF8.encode(Unicode.Scalar(scalar)!) { buffer.append($0) }
        default:
            throw error("invalid escape '\\\(printable(byte))'", at: escapeStart)
        }
    }

    private mutating func parseHex4() throws(JSONError) -> UInt16 {
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard let byte = peek() else { throw error("unexpected end of input in a \\u escape") }
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("unexpected \(found), expected a hex digit in a \\u escape")
            }
            value = value << 4 | UInt16(digit)
            offset += 1
        }
        return value
    }

    /// Validates one multi-byte UTF-8 sequence at `offset` (`UTF8Check`) and returns its length.
    private func utf8SequenceLength() throws(JSONError) -> Int {
        switch bytes.withUnsafeBufferPointer({ UTF8Check.sequence(in: $0, at: offset) }) {
        case .valid(let length): return length
        case .invalidLead: throw error("invalid UTF-8 byte 0x\(hex(bytes[offset]))")
        case .truncated: throw error("truncated UTF-8 sequence at end of input")
        case .invalidContinuation: throw error("invalid UTF-8 sequence starting with byte 0x\(hex(bytes[offset]))")
        }
    }

    // MARK: Scanning and errors

    private func peek() -> UInt8? {
        offset < bytes.count ? bytes[offset] : nil
    }

    private mutating func skipWhitespace() {
        while let byte = peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
            offset += 1
        }
    }

    /// What is at `offset`, for messages: a quoted character, a byte value, or the end.
    private var found: String {
        guard let byte = peek() else { return "end of input" }
        return (0x20..<0x7F).contains(byte) ? "'\(printable(byte))'" : "byte 0x\(hex(byte))"
    }

    private func printable(_ byte: UInt8) -> String {
        (0x20..<0x7F).contains(byte) ? String(UnicodeScalar(byte)) : "0x\(hex(byte))"
    }

    private func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }

    private func hex16(_ value: UInt32) -> String {
        hex(UInt8(value >> 8 & 0xFF)) + hex(UInt8(value & 0xFF))
    }

    private func error(_ reason: String, at position: Int? = nil) -> JSONError {
        let end = min(position ?? offset, bytes.count)
        var line = 1
        var column = 1
        for byte in bytes[..<end] {
            if byte == 0x0A {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {  // count scalars, not continuation bytes
                column += 1
            }
        }
        return JSONError(line: line, column: column, reason: reason)
    }
}
