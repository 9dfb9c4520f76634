import TextEncoding

/// Writing JSON text without Foundation.
public enum JSONText {
    /// A JSON string literal: quotes, backslashes and control characters escaped.
    public static func quote(_ string: String) -> String { StringEscaping.json.quote(string) }
}

/// A value from the input, for a one-line message: quoted, with control characters replaced
/// and anything past 64 characters elided.
public func quoted(_ string: String) -> String {
    let clipped = string.unicodeScalars.prefix(64).map { $0.value < 0x20 || $0.value == 0x7F ? "?" : String($0) }
    return "\"" + clipped.joined() + (string.unicodeScalars.count > 64 ? "…" : "") + "\""
}

extension JSONValue {
    /// Compact JSON text, members in their stored order: the same value always gives the same bytes,
    /// which content-addressed documents (OCI configs and manifests) depend on.
    public var text: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n.literal
        case .string(let s): out += JSONText.quote(s)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case .object(let object):
            out += "{"
            for (i, member) in object.members.enumerated() {
                if i > 0 { out += "," }
                out += JSONText.quote(member.key)
                out += ":"
                member.value.write(to: &out)
            }
            out += "}"
        }
    }

    public static func number(_ value: Int) -> JSONValue { .number(JSONNumber(String(value))) }

    public static func object(_ members: KeyValuePairs<String, JSONValue>) -> JSONValue {
        .object(JSONObject(members.map { JSONObject.Member(key: $0.key, value: $0.value) }))
    }

    /// An object of string values, keys in byte order.
    public static func sortedStrings(_ dictionary: [String: String]) -> JSONValue {
        .object(JSONObject(dictionary.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            .map { JSONObject.Member(key: $0, value: .string(dictionary[$0]!)) }))
    }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    public var objectValue: JSONObject? { if case .object(let o) = self { o } else { nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var int64Value: Int64? { if case .number(let n) = self { n.int64 } else { nil } }

    public subscript(key: String) -> JSONValue? { objectValue?[key] }
}
