/// `<layers>/<buildpack>/<layer>.toml`: layer content metadata.
///
/// ```toml
/// [types]
/// launch = true     # exported in the image
/// build = false     # visible to later buildpacks
/// cache = true      # cached for the next build
/// [metadata]        # free-form; 0.12 may hold exec-env = [...]
/// version = "20.1"
/// ```
///
/// Missing flags are false. `launch`, `build` or `cache` at the top level (the pre-0.6 shape) is an error.
/// Restored files contain only `[metadata]` (see `tomlTable(includingTypes:)`).
public struct LayerTOML: TOMLDecodable, TOMLEncodable, Equatable {
    /// Layer metadata has no fixed name (`<layer>.toml`): pass the path to `read(from:at:)`.
    public static let defaultFileName = "layer.toml"

    /// `[types] launch`.
    public var launch: Bool
    /// `[types] build`.
    public var build: Bool
    /// `[types] cache`.
    public var cache: Bool
    /// `[metadata]`.
    public var metadata: TOMLTable

    public init(launch: Bool = false, build: Bool = false, cache: Bool = false, metadata: TOMLTable = TOMLTable()) {
        self.launch = launch
        self.build = build
        self.cache = cache
        self.metadata = metadata
    }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let reader = TableReader(table, context: context)
        for key in ["launch", "build", "cache"] where reader.has(key) {
            throw reader.error(key, "the launch, build and cache flags belong in the [types] table", kind: .invalidValue)
        }
        let types = try reader.table("types")
        launch = try types?.bool("launch") ?? false
        build = try types?.bool("build") ?? false
        cache = try types?.bool("cache") ?? false
        metadata = try reader.freeform("metadata")
    }

    /// Whether every flag is false: after `bin/build`, such a layer's directory is renamed to `<layer>.ignore`.
    public var isIgnored: Bool { !launch && !build && !cache }

    /// `metadata.exec-env` (Buildpack API 0.12): the execution environments the layer is for; empty means all.
    public var execEnv: [String] {
        metadata["exec-env"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    public func tomlTable() -> TOMLTable { tomlTable(includingTypes: true) }

    /// The document; without `[types]` when restoring (restored layers must set their types again).
    public func tomlTable(includingTypes: Bool) -> TOMLTable {
        var b = TableBuilder()
        if includingTypes {
            b.set("types", table: ["launch": .boolean(launch), "build": .boolean(build), "cache": .boolean(cache)])
        }
        b.set("metadata", table: metadata)
        return b.table
    }
}

/// `<layers>/<buildpack>/store.toml`: free-form `[metadata]` kept from one build to the next.
public struct StoreTOML: TOMLDecodable, TOMLEncodable, Equatable {
    public static let defaultFileName = "store.toml"

    /// `[metadata]`.
    public var metadata: TOMLTable

    public init(metadata: TOMLTable = TOMLTable()) { self.metadata = metadata }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        metadata = try TableReader(table, context: context).freeform("metadata")
    }

    public func tomlTable() -> TOMLTable {
        var b = TableBuilder()
        b.set("metadata", table: metadata)
        return b.table
    }
}

/// `<layers>/<buildpack>/build.toml`: requirements the buildpack did not meet, and the deprecated BOM.
///
/// ```toml
/// [[unmet]]
/// name = "npm"
/// [[bom]]            # deprecated since Buildpack API 0.7
/// name = "node"
/// ```
public struct BuildTOML: TOMLDecodable, TOMLEncodable, Equatable {
    public static let defaultFileName = "build.toml"

    /// `[[unmet]] name`.
    public var unmet: [String]
    /// `[[bom]]`, kept as free-form tables.
    public var bom: [TOMLTable]

    public init(unmet: [String] = [], bom: [TOMLTable] = []) {
        self.unmet = unmet
        self.bom = bom
    }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let reader = TableReader(table, context: context)
        var unmet: [String] = []
        for entry in try reader.tables("unmet") {
            let name = try entry.optionalString("name") ?? ""
            if name.isEmpty { throw entry.error("name", "is required", kind: .invalidValue) }
            unmet.append(name)
        }
        self.unmet = unmet
        bom = try reader.tables("bom").map(\.table)
    }

    public func tomlTable() -> TOMLTable {
        var b = TableBuilder()
        b.set("unmet", tables: unmet.map { ["name": .string($0)] })
        b.set("bom", tables: bom)
        return b.table
    }
}
