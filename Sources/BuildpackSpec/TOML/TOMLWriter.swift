import TextEncoding

extension TOML {
    /// Renders a table as a TOML document, deterministically.
    ///
    /// - Keys are sorted by their UTF-8 bytes at every level (arrays keep their order).
    /// - In each table, plain values come first, then sub-tables (`[a.b]`) and arrays of tables
    ///   (`[[a.b]]`) in key order. A header is written for a table only if it has plain values or is
    ///   empty; otherwise its sub-tables define it.
    /// - An array whose elements are all tables (and which is not empty) becomes an array of tables;
    ///   other arrays, and tables inside them, are written inline.
    /// - Strings are basic strings with escapes; floats use Swift's shortest round-trip form
    ///   (`inf`, `-inf`, `nan` as TOML spells them).
    public static func render(_ table: TOMLTable) -> String {
        var out = ""
        TOMLWriter.emitBody(table, path: [], into: &out)
        return out
    }
}

enum TOMLWriter {
    static func isTableArray(_ value: TOMLValue) -> Bool {
        guard case .array(let items) = value, !items.isEmpty else { return false }
        return items.allSatisfy { if case .table = $0 { return true } else { return false } }
    }

    static func isSection(_ value: TOMLValue) -> Bool {
        if case .table = value { return true }
        return isTableArray(value)
    }

    static func emitBody(_ table: TOMLTable, path: [String], into out: inout String) {
        let entries = table.sortedEntries
        for (key, value) in entries where !isSection(value) {
            out += renderKey(key) + " = " + renderInline(value) + "\n"
        }
        for (key, value) in entries where isSection(value) {
            let subpath = path + [key]
            let header = subpath.map(renderKey).joined(separator: ".")
            switch value {
            case .table(let sub):
                let hasPlainValues = sub.storage.values.contains { !isSection($0) }
                if hasPlainValues || sub.isEmpty {
                    if !out.isEmpty { out += "\n" }
                    out += "[\(header)]\n"
                }
                emitBody(sub, path: subpath, into: &out)
            case .array(let items):
                for case .table(let element) in items {
                    if !out.isEmpty { out += "\n" }
                    out += "[[\(header)]]\n"
                    emitBody(element, path: subpath, into: &out)
                }
            default:
                break
            }
        }
    }

    static func renderKey(_ key: String) -> String {
        let bare = !key.isEmpty && key.utf8.allSatisfy { b in
            (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2D || b == 0x5F
        }
        return bare ? key : renderString(key)
    }

    static func renderString(_ s: String) -> String { StringEscaping.toml.quote(s) }

    static func renderFloat(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        let text = d.description
        if text.contains(".") || text.contains("e") || text.contains("E") { return text }
        return text + ".0"
    }

    static func renderInline(_ value: TOMLValue) -> String {
        switch value {
        case .string(let s): return renderString(s)
        case .integer(let v): return String(v)
        case .float(let d): return renderFloat(d)
        case .boolean(let b): return b ? "true" : "false"
        case .dateTime(let dt): return dt.description
        case .array(let items): return "[" + items.map(renderInline).joined(separator: ", ") + "]"
        case .table(let table):
            if table.isEmpty { return "{}" }
            return "{ " + table.sortedEntries.map { renderKey($0.key) + " = " + renderInline($0.value) }
                .joined(separator: ", ") + " }"
        }
    }
}
