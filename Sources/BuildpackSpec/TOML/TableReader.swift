import Glibc

/// Where a document came from, for decoding and for error messages.
public struct DocumentContext: Sendable, Hashable {
    /// The file name used in messages (e.g. `launch.toml` or `<layers>/example_node/launch.toml`).
    public var file: String
    /// The buildpack the file belongs to, as `id@version`, if any.
    public var buildpack: String?
    /// The Buildpack API of that buildpack, for documents whose shape depends on it (launch.toml).
    public var buildpackAPI: APIVersion?

    public init(file: String, buildpack: String? = nil, buildpackAPI: APIVersion? = nil) {
        self.file = file
        self.buildpack = buildpack
        self.buildpackAPI = buildpackAPI
    }
}

/// A document of the spec that can be read from TOML.
public protocol TOMLDecodable: Sendable {
    /// The file name the spec gives the document (e.g. `buildpack.toml`).
    static var defaultFileName: String { get }
    /// Decodes the document from a parsed table.
    init(table: TOMLTable, context: DocumentContext) throws(SpecError)
}

/// A document the platform writes as TOML.
public protocol TOMLEncodable: Sendable {
    /// The document as a table (the writer sorts keys).
    func tomlTable() -> TOMLTable
}

extension TOMLDecodable {
    /// Parses and decodes the document from bytes.
    public init(parsing bytes: [UInt8], context: DocumentContext) throws(SpecError) {
        let table: TOMLTable
        do {
            table = try TOML.parse(bytes, file: context.file)
        } catch {
            throw error.attributed(to: context.buildpack)
        }
        try self.init(table: table, context: context)
    }

    /// Parses and decodes the document from text.
    public init(parsing text: String, context: DocumentContext) throws(SpecError) {
        try self.init(parsing: Array(text.utf8), context: context)
    }

    /// Parses and decodes the document from text, naming it by its default file name.
    public init(parsing text: String) throws(SpecError) {
        try self.init(parsing: Array(text.utf8), context: DocumentContext(file: Self.defaultFileName))
    }

    /// Reads the document from `directory` through the confined reader (10 MiB cap, no symbolic links).
    /// - Parameters:
    ///   - relative: the path below the directory; the default file name if omitted.
    ///   - buildpack: the buildpack to attribute errors to (`id@version`).
    ///   - buildpackAPI: for documents whose shape depends on it.
    public static func read(from directory: ConfinedDirectory, at relative: String? = nil,
                            buildpack: String? = nil, buildpackAPI: APIVersion? = nil) throws(SpecError) -> Self
    {
        let path = relative ?? defaultFileName
        let bytes: [UInt8]
        do {
            bytes = try directory.readFile(path)
        } catch {
            throw error.attributed(to: buildpack)
        }
        return try Self(parsing: bytes, context: DocumentContext(file: directory.displayPath(path),
                                                                 buildpack: buildpack, buildpackAPI: buildpackAPI))
    }

    /// Reads the document from `directory` through the confined reader, decoding with a context the caller
    /// made (its `file` is what messages call the file; its `buildpack` gets read errors too).
    public static func read(from directory: ConfinedDirectory, at relative: String? = nil,
                            context: DocumentContext) throws(SpecError) -> Self
    {
        let bytes: [UInt8]
        do {
            bytes = try directory.readFile(relative ?? defaultFileName)
        } catch {
            throw error.attributed(to: context.buildpack)
        }
        return try Self(parsing: bytes, context: context)
    }

    /// Like `read(from:at:buildpack:buildpackAPI:)`, but `nil` when the file does not exist.
    public static func readIfPresent(from directory: ConfinedDirectory, at relative: String? = nil,
                                     buildpack: String? = nil, buildpackAPI: APIVersion? = nil)
        throws(SpecError) -> Self?
    {
        do {
            return try read(from: directory, at: relative, buildpack: buildpack, buildpackAPI: buildpackAPI)
        } catch {
            if error.kind == .notFound { return nil }
            throw error
        }
    }
}

extension TOMLEncodable {
    /// The document as deterministic TOML text.
    public func rendered() -> String { TOML.render(tomlTable()) }

    /// Writes the document atomically into `directory` (see `ConfinedDirectory.writeFile`).
    public func write(to directory: ConfinedDirectory, at relative: String, mode: mode_t = 0o644)
        throws(SpecError)
    {
        try directory.writeFile(relative, contents: Array(rendered().utf8), mode: mode)
    }
}

/// Reads typed values out of a table, naming the file and key path when something is missing or
/// has the wrong type. Unknown keys are ignored, as the reference lifecycle does.
struct TableReader {
    let table: TOMLTable
    let context: DocumentContext
    /// The key path of `table` itself (`""` for the document root).
    let path: String

    init(_ table: TOMLTable, context: DocumentContext, path: String = "") {
        self.table = table
        self.context = context
        self.path = path
    }

    func keyPath(_ key: String) -> String {
        let rendered = TOMLWriter.renderKey(key)
        return path.isEmpty ? rendered : path + "." + rendered
    }

    func error(_ key: String?, _ message: String, kind: SpecError.Kind = .schema) -> SpecError {
        SpecError(kind, message, file: context.file, keyPath: key.map(keyPath) ?? path, buildpack: context.buildpack)
    }

    func typeError(_ key: String, expected: String, found: TOMLValue) -> SpecError {
        error(key, "expected \(expected), found \(found.typeDescription)")
    }

    func has(_ key: String) -> Bool { table[key] != nil }
    func value(_ key: String) -> TOMLValue? { table[key] }

    func string(_ key: String) throws(SpecError) -> String {
        guard let value = try optionalString(key) else { throw error(key, "is required but missing") }
        return value
    }

    func optionalString(_ key: String) throws(SpecError) -> String? {
        guard let value = table[key] else { return nil }
        guard case .string(let s) = value else { throw typeError(key, expected: "a string", found: value) }
        return s
    }

    func bool(_ key: String, default defaultValue: Bool = false) throws(SpecError) -> Bool {
        try optionalBool(key) ?? defaultValue
    }

    func optionalBool(_ key: String) throws(SpecError) -> Bool? {
        guard let value = table[key] else { return nil }
        guard case .boolean(let b) = value else { throw typeError(key, expected: "a boolean", found: value) }
        return b
    }

    func strings(_ key: String) throws(SpecError) -> [String] {
        try optionalStrings(key) ?? []
    }

    func optionalStrings(_ key: String) throws(SpecError) -> [String]? {
        guard let value = table[key] else { return nil }
        guard case .array(let items) = value else { throw typeError(key, expected: "an array of strings", found: value) }
        var out: [String] = []
        out.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            guard case .string(let s) = item else {
                throw error(nil, "expected a string, found \(item.typeDescription)")
                    .withKeyPath(keyPath(key) + "[\(index)]")
            }
            out.append(s)
        }
        return out
    }

    /// A sub-table; `nil` if missing.
    func table(_ key: String) throws(SpecError) -> TableReader? {
        guard let value = table[key] else { return nil }
        guard case .table(let t) = value else { throw typeError(key, expected: "a table", found: value) }
        return TableReader(t, context: context, path: keyPath(key))
    }

    /// A free-form sub-table (`[metadata]`); empty if missing.
    func freeform(_ key: String) throws(SpecError) -> TOMLTable {
        try table(key)?.table ?? TOMLTable()
    }

    /// An array of tables (`[[key]]`); empty if missing.
    func tables(_ key: String) throws(SpecError) -> [TableReader] {
        guard let value = table[key] else { return [] }
        guard case .array(let items) = value else { throw typeError(key, expected: "an array of tables", found: value) }
        var out: [TableReader] = []
        out.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            let itemPath = keyPath(key) + "[\(index)]"
            guard case .table(let t) = item else {
                throw error(nil, "expected a table, found \(item.typeDescription)").withKeyPath(itemPath)
            }
            out.append(TableReader(t, context: context, path: itemPath))
        }
        return out
    }
}

extension SpecError {
    func withKeyPath(_ keyPath: String) -> SpecError {
        var copy = self
        copy.keyPath = keyPath
        return copy
    }
}

/// Builds tables for the writer, leaving out empty optional values.
struct TableBuilder {
    var table = TOMLTable()

    mutating func set(_ key: String, _ value: TOMLValue) { table[key] = value }
    mutating func set(_ key: String, _ value: String?) { if let value { table[key] = .string(value) } }
    mutating func setNonEmpty(_ key: String, _ value: String?) {
        if let value, !value.isEmpty { table[key] = .string(value) }
    }
    mutating func set(_ key: String, _ value: Bool) { table[key] = .boolean(value) }
    mutating func setIfTrue(_ key: String, _ value: Bool) { if value { table[key] = .boolean(true) } }
    mutating func set(_ key: String, strings: [String]) { table[key] = .array(strings.map(TOMLValue.string)) }
    mutating func setNonEmpty(_ key: String, strings: [String]) {
        if !strings.isEmpty { table[key] = .array(strings.map(TOMLValue.string)) }
    }
    mutating func set(_ key: String, tables: [TOMLTable]) {
        if !tables.isEmpty { table[key] = .array(tables.map(TOMLValue.table)) }
    }
    mutating func set(_ key: String, table sub: TOMLTable) { table[key] = .table(sub) }
}
