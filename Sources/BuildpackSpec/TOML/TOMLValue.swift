/// A TOML value, held as plain Swift data: what free-form `[metadata]` tables (layer metadata,
/// `store.toml`, `requires.metadata`, buildpack metadata) are kept as, and what the writer renders.
public enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case boolean(Bool)
    indirect case dateTime(TOMLDateTime)
    case array([TOMLValue])
    case table(TOMLTable)

    /// "a string", "an integer", ... for error messages.
    public var typeDescription: String {
        switch self {
        case .string: return "a string"
        case .integer: return "an integer"
        case .float: return "a float"
        case .boolean: return "a boolean"
        case .dateTime: return "a date-time"
        case .array: return "an array"
        case .table: return "a table"
        }
    }

    public var stringValue: String? { if case .string(let v) = self { return v } else { return nil } }
    public var integerValue: Int64? { if case .integer(let v) = self { return v } else { return nil } }
    public var floatValue: Double? { if case .float(let v) = self { return v } else { return nil } }
    public var booleanValue: Bool? { if case .boolean(let v) = self { return v } else { return nil } }
    public var arrayValue: [TOMLValue]? { if case .array(let v) = self { return v } else { return nil } }
    public var tableValue: TOMLTable? { if case .table(let v) = self { return v } else { return nil } }

    /// Equality where two NaNs are equal (so a document equals itself after a round trip).
    public static func == (lhs: TOMLValue, rhs: TOMLValue) -> Bool {
        switch (lhs, rhs) {
        case let (.string(a), .string(b)): return a == b
        case let (.integer(a), .integer(b)): return a == b
        case let (.float(a), .float(b)): return a == b || (a.isNaN && b.isNaN)
        case let (.boolean(a), .boolean(b)): return a == b
        case let (.dateTime(a), .dateTime(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.table(a), .table(b)): return a == b
        default: return false
        }
    }
}

extension TOMLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .float(value) }
    public init(booleanLiteral value: Bool) { self = .boolean(value) }
    public init(arrayLiteral elements: TOMLValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, TOMLValue)...) {
        self = .table(TOMLTable(uniqueKeysWithValues: elements))
    }
}

/// A TOML table: keys to values. Key order is not kept; the writer sorts keys.
public struct TOMLTable: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    public var storage: [String: TOMLValue]

    public init() { storage = [:] }
    public init(_ storage: [String: TOMLValue]) { self.storage = storage }
    public init(uniqueKeysWithValues pairs: some Sequence<(String, TOMLValue)>) {
        storage = Dictionary(pairs, uniquingKeysWith: { _, last in last })
    }
    public init(dictionaryLiteral elements: (String, TOMLValue)...) {
        self.init(uniqueKeysWithValues: elements)
    }

    public subscript(key: String) -> TOMLValue? {
        get { storage[key] }
        set { storage[key] = newValue }
    }

    /// The keys, sorted by their UTF-8 bytes.
    public var keys: [String] { storage.keys.sorted(by: utf8Less) }
    public var isEmpty: Bool { storage.isEmpty }
    public var count: Int { storage.count }

    /// The entries, sorted by key.
    public var sortedEntries: [(key: String, value: TOMLValue)] {
        keys.map { ($0, storage[$0]!) }
    }
}

/// Byte-wise ordering of strings (Go's string order, and the order the writer uses).
public func utf8Less(_ a: String, _ b: String) -> Bool {
    a.utf8.lexicographicallyPrecedes(b.utf8)
}

/// An RFC 3339 date, time or date-time as TOML has them: offset date-time, local date-time,
/// local date, or local time.
public struct TOMLDateTime: Sendable, Hashable, CustomStringConvertible {
    public struct LocalDate: Sendable, Hashable {
        public var year: Int, month: Int, day: Int
        public init(year: Int, month: Int, day: Int) { self.year = year; self.month = month; self.day = day }
    }
    public struct LocalTime: Sendable, Hashable {
        public var hour: Int, minute: Int, second: Int
        /// The fractional-second digits exactly as written (empty if none), so nothing is rounded.
        public var fraction: String
        public init(hour: Int, minute: Int, second: Int, fraction: String = "") {
            self.hour = hour; self.minute = minute; self.second = second; self.fraction = fraction
        }
    }

    public var date: LocalDate?
    public var time: LocalTime?
    /// The UTC offset in minutes; `nil` for local values. Only with both a date and a time.
    public var offsetMinutes: Int?

    public init(date: LocalDate?, time: LocalTime?, offsetMinutes: Int? = nil) {
        self.date = date
        self.time = time
        self.offsetMinutes = offsetMinutes
    }

    /// The RFC 3339 text (`T` between date and time, `Z` for a zero offset).
    public var description: String {
        func pad(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        var out = ""
        if let date { out += "\(pad(date.year, 4))-\(pad(date.month, 2))-\(pad(date.day, 2))" }
        if let time {
            if date != nil { out += "T" }
            out += "\(pad(time.hour, 2)):\(pad(time.minute, 2)):\(pad(time.second, 2))"
            if !time.fraction.isEmpty { out += "." + time.fraction }
        }
        if let offsetMinutes {
            if offsetMinutes == 0 {
                out += "Z"
            } else {
                let magnitude = abs(offsetMinutes)
                out += (offsetMinutes < 0 ? "-" : "+") + pad(magnitude / 60, 2) + ":" + pad(magnitude % 60, 2)
            }
        }
        return out
    }
}
