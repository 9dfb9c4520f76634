/// Command-line flags parsed as Go's `flag` package parses them, which is what every CNB platform
/// speaks to the lifecycle: `-name value`, `-name=value`, `--name` too, an empty `-name=`, booleans
/// bare or spelled out (`-skip-layers=false`), a flag given twice (the last wins, or, for a list,
/// each is kept), `--` or the first argument that is not a flag ending the flags.
public struct GoFlagSet: Sendable {
    public enum Kind: Sendable, Equatable {
        case string
        case bool
        case int
        /// Every occurrence is kept, in order (the lifecycle's `-tag`).
        case list
    }

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public let message: String
        /// `-h` or `-help` that no flag defines: Go prints the usage and exits 0.
        public let isHelp: Bool
        public var description: String { message }

        public init(message: String, isHelp: Bool) {
            self.message = message
            self.isHelp = isHelp
        }
    }

    /// The flags given, by name: the last value given, or every value of a list.
    public struct Values: Sendable, Equatable {
        public var strings: [String: String] = [:]
        public var lists: [String: [String]] = [:]
        /// The arguments after the flags.
        public var positional: [String] = []

        public func string(_ name: String) -> String? { strings[name] }
        public func list(_ name: String) -> [String] { lists[name] ?? [] }
        public func isSet(_ name: String) -> Bool { strings[name] != nil || lists[name] != nil }

        /// A boolean flag's value; the parser has already checked its spelling.
        public func bool(_ name: String) -> Bool? { strings[name].flatMap(GoFlagSet.parseBool) }

        public func int(_ name: String) -> Int? { strings[name].flatMap(GoFlagSet.parseInt) }
    }

    private var kinds: [String: Kind] = [:]

    public init() {}

    public init(_ flags: [String: Kind]) { kinds = flags }

    public mutating func define(_ name: String, _ kind: Kind) { kinds[name] = kind }

    public func kind(of name: String) -> Kind? { kinds[name] }

    /// Go's `FlagSet.Parse`, with its messages, so that the line a platform logs reads the same.
    public func parse(_ arguments: [String]) throws(ParseError) -> Values {
        var values = Values()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let bytes = Array(argument.utf8)
            guard bytes.count >= 2, bytes[0] == UInt8(ascii: "-") else { break }
            var dashes = 1
            if bytes[1] == UInt8(ascii: "-") {
                dashes = 2
                if bytes.count == 2 {
                    index += 1
                    break
                }
            }
            let body = String(decoding: bytes[dashes...], as: UTF8.self)
            guard let first = body.utf8.first, first != UInt8(ascii: "-"), first != UInt8(ascii: "=") else {
                throw ParseError(message: "bad flag syntax: \(argument)", isHelp: false)
            }
            index += 1
            var name = body
            var inline: String?
            if let eq = body.firstIndex(of: "=") {
                name = String(body[..<eq])
                inline = String(body[body.index(after: eq)...])
            }
            guard let kind = kinds[name] else {
                if name == "h" || name == "help" { throw ParseError(message: "flag: help requested", isHelp: true) }
                throw ParseError(message: "flag provided but not defined: -\(name)", isHelp: false)
            }
            let value: String
            switch kind {
            case .bool:
                value = inline ?? "true"
                guard Self.parseBool(value) != nil else {
                    throw ParseError(message: "invalid boolean value \(Self.quoted(value)) for -\(name): parse error", isHelp: false)
                }
            case .string, .int, .list:
                if let inline {
                    value = inline
                } else if index < arguments.count {
                    value = arguments[index]
                    index += 1
                } else {
                    throw ParseError(message: "flag needs an argument: -\(name)", isHelp: false)
                }
                if kind == .int && Self.parseInt(value) == nil {
                    throw ParseError(message: "invalid value \(Self.quoted(value)) for flag -\(name): parse error", isHelp: false)
                }
            }
            if kind == .list {
                values.lists[name, default: []].append(value)
            } else {
                values.strings[name] = value
            }
        }
        values.positional = Array(arguments[index...])
        return values
    }

    /// `strconv.ParseBool`.
    public static func parseBool(_ text: String) -> Bool? {
        switch text {
        case "1", "t", "T", "TRUE", "true", "True": true
        case "0", "f", "F", "FALSE", "false", "False": false
        default: nil
        }
    }

    /// A decimal integer with an optional sign, as ids are written.
    public static func parseInt(_ text: String) -> Int? {
        var digits = Substring(text)
        var negative = false
        if let sign = digits.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let magnitude = Int(digits) else { return nil }
        return negative ? -magnitude : magnitude
    }

    /// Go's `%q` for what people type: quotes and backslashes escaped, control bytes as `\x..`.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
