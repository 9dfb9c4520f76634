/// Whether a module is a buildpack or an image extension.
public enum ModuleKind: String, Sendable, Hashable {
    case buildpack
    case `extension`
}

/// A reference to a buildpack or extension, as it appears in an order (`[[order.group]]`),
/// a group (`[[group]]`) or a plan (`[[entries.providers]]`).
public struct GroupElement: Sendable, Hashable, CustomStringConvertible {
    /// `id`.
    public var id: String
    /// `version`.
    public var version: String
    /// `optional`: in orders only; never written to group.toml.
    public var optional: Bool
    /// Buildpack or extension (`extension = true` in plan providers).
    public var kind: ModuleKind
    /// `api`: the module's Buildpack API, written to group.toml.
    public var api: String?
    /// `homepage`: written to group.toml.
    public var homepage: String?
    /// `exec-env` on an `[[order.group]]` element (read, but ignored by the reference lifecycle).
    public var execEnv: [String]

    public init(id: String, version: String, optional: Bool = false, kind: ModuleKind = .buildpack,
                api: String? = nil, homepage: String? = nil, execEnv: [String] = [])
    {
        self.id = id
        self.version = version
        self.optional = optional
        self.kind = kind
        self.api = api
        self.homepage = homepage
        self.execEnv = execEnv
    }

    /// `id@version`, as the spec and the reference lifecycle print elements.
    public var description: String { "\(id)@\(version)" }

    /// What detection results are memoised by: kind, ID and version.
    public var key: ModuleKey { ModuleKey(kind: kind, id: id, version: version) }

    /// This element as group.toml lists it: no `optional`.
    public var withoutOptional: GroupElement {
        var copy = self
        copy.optional = false
        return copy
    }

    /// This element as plan.toml lists a provider: only id, version and kind.
    public var asProvider: GroupElement {
        GroupElement(id: id, version: version, kind: kind)
    }

    // MARK: Decoding and encoding

    /// The `[[key]]` elements of a group as it ran (group.toml, metadata.toml): every one required.
    static func decodeGroup(_ reader: TableReader, _ key: String, kind: ModuleKind) throws(SpecError) -> [GroupElement] {
        var group: [GroupElement] = []
        for element in try reader.tables(key) { group.append(try decode(element, kind: kind).withoutOptional) }
        return group
    }

    /// Reads an element of an order or group. `version` may be missing (builder.toml allows it).
    static func decode(_ reader: TableReader, kind: ModuleKind, requireVersion: Bool = true) throws(SpecError) -> GroupElement {
        let id = try reader.string("id")
        try BuildpackID.validate(id, file: reader.context.file, keyPath: reader.keyPath("id"),
                                 buildpack: reader.context.buildpack)
        let version = requireVersion ? try reader.string("version") : (try reader.optionalString("version") ?? "")
        if !version.isEmpty {
            try BuildpackVersion.validate(version, file: reader.context.file, keyPath: reader.keyPath("version"),
                                          buildpack: reader.context.buildpack)
        }
        let isExtension = try reader.bool("extension")
        return GroupElement(
            id: id, version: version,
            optional: kind == .extension ? true : try reader.bool("optional"),
            kind: isExtension ? .extension : kind,
            api: try reader.optionalString("api"),
            homepage: try reader.optionalString("homepage"),
            execEnv: try reader.strings("exec-env"))
    }

    /// The element as an order lists it: id, version, optional (when true), exec-env (when set).
    func orderTable() -> TOMLTable {
        var b = TableBuilder()
        b.set("id", id)
        b.setNonEmpty("version", version)
        b.setIfTrue("optional", optional && kind == .buildpack)
        b.setNonEmpty("exec-env", strings: execEnv)
        return b.table
    }

    /// The element as group.toml lists it: id, version, api, homepage.
    func groupTable() -> TOMLTable {
        var b = TableBuilder()
        b.set("id", id)
        b.set("version", version)
        b.setNonEmpty("api", api)
        b.setNonEmpty("homepage", homepage)
        return b.table
    }

    /// The element as plan.toml lists a provider: id, version, and `extension = true` for extensions.
    func providerTable() -> TOMLTable {
        var b = TableBuilder()
        b.set("id", id)
        b.set("version", version)
        b.setIfTrue("extension", kind == .extension)
        return b.table
    }
}

/// Identifies a module for memoising detection: kind, ID and version.
public struct ModuleKey: Sendable, Hashable, CustomStringConvertible {
    public var kind: ModuleKind
    public var id: String
    public var version: String

    public init(kind: ModuleKind = .buildpack, id: String, version: String) {
        self.kind = kind
        self.id = id
        self.version = version
    }

    public var description: String { "\(kind == .extension ? "extension " : "")\(id)@\(version)" }
}

/// One group of an order (`[[order]]` with its `[[order.group]]` elements).
public struct OrderGroup: Sendable, Hashable {
    public var group: [GroupElement]

    public init(_ group: [GroupElement]) { self.group = group }

    static func decode(_ reader: TableReader, kind: ModuleKind, requireVersion: Bool = true) throws(SpecError) -> OrderGroup {
        var elements: [GroupElement] = []
        for element in try reader.tables("group") {
            elements.append(try GroupElement.decode(element, kind: kind, requireVersion: requireVersion))
        }
        return OrderGroup(elements)
    }

    func orderTable() -> TOMLTable {
        var b = TableBuilder()
        b.set("group", .array(group.map { .table($0.orderTable()) }))
        return b.table
    }
}
