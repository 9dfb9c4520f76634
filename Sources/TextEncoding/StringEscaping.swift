/// How a format writes a string literal: in double quotes, `"` and `\` escaped, every C0 control
/// and DEL escaped, the rest as it is. JSON and TOML share that and differ in which controls have
/// a short escape and in the case of `\uXXXX`'s digits; both stay as they were, since JSON output
/// is hashed into content-addressed documents.
public struct StringEscaping: Sendable {
    /// Controls written as `\` and a letter; the other controls become `\uXXXX`.
    let shortEscapes: [Unicode.Scalar: String]
    let uppercaseHex: Bool

    /// RFC 8259, as Stockade has always written it: `\n`, `\r`, `\t`, lower-case hex.
    public static let json = StringEscaping(shortEscapes: ["\n": "\\n", "\r": "\\r", "\t": "\\t"], uppercaseHex: false)
    /// TOML 1.0 basic strings: also `\b` and `\f`, upper-case hex.
    public static let toml = StringEscaping(
        shortEscapes: ["\u{08}": "\\b", "\t": "\\t", "\n": "\\n", "\u{0C}": "\\f", "\r": "\\r"], uppercaseHex: true)

    /// `string` as a double-quoted literal of this format.
    public func quote(_ string: String) -> String {
        if !string.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || $0 == 0x7F }) {
            return "\"" + string + "\""
        }
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                if let short = shortEscapes[scalar] {
                    out += short
                } else {
                    let hex = String(scalar.value, radix: 16, uppercase: uppercaseHex)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                }
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
