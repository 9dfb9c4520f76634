import Foundation
import Testing
@testable import BuildpackSpec

/// toml-test's TOML 1.0.0 cases (Tests/Fixtures/toml-test, see its README): every valid document parses
/// to the value its JSON gives, every invalid one is refused with an error.
@Suite("toml-test")
struct TOMLTestSuiteTests {
    /// Valid TOML 1.0 that Stockade's parser refuses on purpose, with the reason (the README's TOML paragraph
    /// lists them too). A test below checks each is still refused, and for that reason.
    static let deliberatelyRefused: [String: String] = [
        "valid/key/quoted-unicode.toml": nulReason,
        "valid/string/quoted-unicode.toml": nulReason,
        "valid/string/unicode-escape.toml": nulReason,
    ]
    static let nulReason = "a \\u0000 escape: no parsed string may carry a NUL into argv, the environment or a path"

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/toml-test").path

    /// The suite's own list of the TOML 1.0.0 files.
    static let files: [String] = {
        let list = (try? String(contentsOfFile: root + "/files-toml-1.0.0", encoding: .utf8)) ?? ""
        return list.split(separator: "\n").map(String.init)
    }()
    static let validCases = files.filter { $0.hasPrefix("valid/") && $0.hasSuffix(".toml") }
    static let invalidCases = files.filter { $0.hasPrefix("invalid/") && $0.hasSuffix(".toml") }

    @Test func theSuiteIsThere() {
        // 1.0.0 has a few hundred of each; an empty list would make the tests below vacuous.
        #expect(Self.validCases.count > 150)
        #expect(Self.invalidCases.count > 300)
    }

    @Test(arguments: validCases.filter { deliberatelyRefused[$0] == nil })
    func validDocumentParsesToItsJSON(_ name: String) throws {
        let toml = try #require(FileManager.default.contents(atPath: Self.root + "/" + name), "cannot read \(name)")
        let jsonPath = Self.root + "/" + name.dropLast(".toml".count) + ".json"
        let json = try #require(FileManager.default.contents(atPath: jsonPath), "cannot read \(jsonPath)")
        let expected = try JSONSerialization.jsonObject(with: json, options: [.fragmentsAllowed])
        let table = try TOML.parse(Array(toml), file: name)
        if let mismatch = Self.mismatch(.table(table), expected, at: "") {
            Issue.record("\(name): \(mismatch)")
        }
    }

    @Test(arguments: invalidCases.filter { deliberatelyRefused[$0] == nil })
    func invalidDocumentIsRefused(_ name: String) throws {
        let toml = try #require(FileManager.default.contents(atPath: Self.root + "/" + name), "cannot read \(name)")
        #expect(throws: SpecError.self, "\(name) was accepted") { try TOML.parse(Array(toml), file: name) }
    }

    @Test(arguments: deliberatelyRefused.keys.sorted())
    func deliberatelyRefusedDocumentIsRefusedForItsReason(_ name: String) throws {
        let toml = try #require(FileManager.default.contents(atPath: Self.root + "/" + name), "cannot read \(name)")
        let error = #expect(throws: SpecError.self) { try TOML.parse(Array(toml), file: name) }
        #expect(error?.description.contains("a NUL character (\\u0000) is not allowed") == true, "\(String(describing: error))")
    }

    /// Where `value` differs from toml-test's tagged JSON (`{"type": ..., "value": ...}` for scalars), or nil.
    static func mismatch(_ value: TOMLValue, _ expected: Any, at path: String) -> String? {
        switch value {
        case .table(let table):
            guard let object = expected as? [String: Any] else { return "\(path): a table where the JSON has \(expected)" }
            if Set(object.keys) != Set(table.keys) {
                return "\(path): keys \(table.keys.sorted()) where the JSON has \(object.keys.sorted())"
            }
            for (key, child) in table.sortedEntries {
                if let found = mismatch(child, object[key]!, at: path + "." + key) { return found }
            }
            return nil
        case .array(let elements):
            guard let array = expected as? [Any], array.count == elements.count else {
                return "\(path): \(elements.count) elements where the JSON has \(expected)"
            }
            for (index, element) in elements.enumerated() {
                if let found = mismatch(element, array[index], at: path + "[\(index)]") { return found }
            }
            return nil
        default:
            guard let tagged = expected as? [String: Any], tagged.count == 2,
                  let type = tagged["type"] as? String, let text = tagged["value"] as? String else {
                return "\(path): \(value) where the JSON has \(expected)"
            }
            return scalarMatches(value, type: type, text: text) ? nil : "\(path): \(value) where the JSON has \(type) \(text)"
        }
    }

    static func scalarMatches(_ value: TOMLValue, type: String, text: String) -> Bool {
        switch value {
        case .string(let string): return type == "string" && string == text
        case .integer(let integer): return type == "integer" && Int64(text) == integer
        case .boolean(let boolean): return type == "bool" && text == String(boolean)
        case .float(let float):
            guard type == "float" else { return false }
            switch text {
            case "nan", "+nan", "-nan": return float.isNaN
            case "inf", "+inf": return float == .infinity
            case "-inf": return float == -.infinity
            default: return Double(text) == float
            }
        case .dateTime(let dateTime):
            let expectedType = switch (dateTime.date != nil, dateTime.time != nil, dateTime.offsetMinutes != nil) {
            case (true, true, true): "datetime"
            case (true, true, false): "datetime-local"
            case (true, false, _): "date-local"
            default: "time-local"
            }
            return type == expectedType && sameInstantText(dateTime.description, text)
        case .array, .table: return false
        }
    }

    /// RFC 3339 texts equal up to the spellings TOML allows: `t`/space for `T`, `z` or `+00:00` for `Z`,
    /// trailing zeros of the fraction.
    static func sameInstantText(_ a: String, _ b: String) -> Bool {
        func normal(_ text: String) -> String {
            var t = text.uppercased().replacingOccurrences(of: " ", with: "T")
            if t.hasSuffix("+00:00") || t.hasSuffix("-00:00") { t = String(t.dropLast(6)) + "Z" }
            if let dot = t.firstIndex(of: ".") {
                let end = t[dot...].firstIndex(where: { !$0.isNumber && $0 != "." }) ?? t.endIndex
                var fraction = String(t[t.index(after: dot)..<end])
                while fraction.hasSuffix("0") { fraction.removeLast() }
                t = String(t[..<dot]) + (fraction.isEmpty ? "" : "." + fraction) + t[end...]
            }
            return t
        }
        return normal(a) == normal(b)
    }
}
