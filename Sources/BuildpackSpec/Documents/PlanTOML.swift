/// A dependency a buildpack requires: `[[requires]] name, [requires.metadata]`
/// (also an `[[entries]]` element of the buildpack plan, and `[[entries.requires]]` of plan.toml).
public struct Require: Sendable, Equatable {
    /// `name`.
    public var name: String
    /// `[metadata]`, free-form (versions go in `metadata.version`).
    public var metadata: TOMLTable

    public init(name: String, metadata: TOMLTable = TOMLTable()) {
        self.name = name
        self.metadata = metadata
    }

    static func decode(_ reader: TableReader) throws(SpecError) -> Require {
        Require(name: try reader.string("name"), metadata: try reader.freeform("metadata"))
    }

    func tomlTable() -> TOMLTable {
        var b = TableBuilder()
        b.set("name", name)
        b.set("metadata", table: metadata)
        return b.table
    }
}

/// A dependency a buildpack provides: `[[provides]] name`.
public struct Provide: Sendable, Hashable {
    public var name: String
    public init(name: String) { self.name = name }
}

/// `plan.toml` (written by the detector): for each dependency, who provides it and who requires it.
///
/// ```toml
/// [[entries]]
/// [[entries.providers]]
/// id = "example/node"
/// version = "1.0.0"
/// [[entries.requires]]
/// name = "node"
/// [entries.requires.metadata]
/// version = "20"
/// ```
///
/// The reference lifecycle builds entries from a Go map, so their order is random: compare plans with
/// `hasSameEntries(as:)`, not `==`. This type keeps entries in the order each dependency name first
/// appeared in the group, which makes the written file deterministic.
public struct PlanTOML: TOMLDecodable, TOMLEncodable, Equatable {
    public static let defaultFileName = "plan.toml"

    /// `[[entries]]`.
    public var entries: [Entry]

    /// One dependency: at least one provider and at least one requirement.
    public struct Entry: Sendable, Equatable {
        /// `[[entries.providers]] id, version, extension`.
        public var providers: [GroupElement]
        /// `[[entries.requires]] name, [entries.requires.metadata]`.
        public var requires: [Require]

        public init(providers: [GroupElement], requires: [Require]) {
            self.providers = providers.map(\.asProvider)
            self.requires = requires
        }

        /// The dependency's name (that of its first requirement).
        public var name: String? { requires.first?.name }
    }

    public init(entries: [Entry] = []) { self.entries = entries }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let reader = TableReader(table, context: context)
        var entries: [Entry] = []
        for entry in try reader.tables("entries") {
            var providers: [GroupElement] = []
            for provider in try entry.tables("providers") {
                providers.append(try GroupElement.decode(provider, kind: .buildpack).asProvider)
            }
            var requires: [Require] = []
            for require in try entry.tables("requires") { requires.append(try Require.decode(require)) }
            entries.append(Entry(providers: providers, requires: requires))
        }
        self.entries = entries
    }

    public func tomlTable() -> TOMLTable {
        var b = TableBuilder()
        b.set("entries", tables: entries.map { entry in
            var e = TableBuilder()
            e.set("providers", tables: entry.providers.map { $0.providerTable() })
            e.set("requires", tables: entry.requires.map { $0.tomlTable() })
            return e.table
        })
        return b.table
    }

    /// Whether both plans have the same entries, in any order (entries compared whole).
    public func hasSameEntries(as other: PlanTOML) -> Bool {
        guard entries.count == other.entries.count else { return false }
        var remaining = other.entries
        for entry in entries {
            guard let index = remaining.firstIndex(of: entry) else { return false }
            remaining.remove(at: index)
        }
        return true
    }
}

/// The buildpack plan given to `bin/build` (`CNB_BP_PLAN_PATH`): the requirements this buildpack is
/// expected to provide.
///
/// ```toml
/// [[entries]]
/// name = "node"
/// [entries.metadata]
/// version = "20"
/// ```
public struct BuildpackPlan: TOMLDecodable, TOMLEncodable, Equatable {
    public static let defaultFileName = "plan.toml"

    /// `[[entries]]`.
    public var entries: [Require]

    public init(entries: [Require] = []) { self.entries = entries }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let reader = TableReader(table, context: context)
        var entries: [Require] = []
        for entry in try reader.tables("entries") { entries.append(try Require.decode(entry)) }
        self.entries = entries
    }

    public func tomlTable() -> TOMLTable {
        var b = TableBuilder()
        b.set("entries", tables: entries.map { $0.tomlTable() })
        return b.table
    }

    /// The distinct entry names, in order.
    public var names: [String] {
        var seen = Set<String>()
        return entries.map(\.name).filter { seen.insert($0).inserted }
    }
}

/// What `bin/detect` writes to its plan path (`CNB_BUILD_PLAN_PATH`): what it provides and requires,
/// with alternatives.
///
/// ```toml
/// [[provides]]
/// name = "node"
/// [[requires]]
/// name = "node"
/// [requires.metadata]
/// version = "20"
/// [[or]]
/// [[or.provides]]
/// name = "node"
/// [[or.requires]]
/// name = "npm"
/// ```
///
/// These make detection an **error** for the buildpack (not a failure): a file that is not valid TOML or
/// has the wrong shape, a `version` key next to `name` in any requirement (with or without a
/// `metadata.version`), and, for an image extension, any `requires` (see `validate(for:)`).
public struct DetectPlan: TOMLDecodable, Equatable {
    public static let defaultFileName = "plan.toml"

    /// One alternative: `provides` and `requires`.
    public struct Sections: Sendable, Equatable {
        public var provides: [Provide]
        public var requires: [Require]

        public init(provides: [Provide] = [], requires: [Require] = []) {
            self.provides = provides
            self.requires = requires
        }

        static func decode(_ reader: TableReader) throws(SpecError) -> Sections {
            var provides: [Provide] = []
            for p in try reader.tables("provides") { provides.append(Provide(name: try p.string("name"))) }
            var requires: [Require] = []
            for r in try reader.tables("requires") {
                if r.has("version") {
                    let both = (try r.table("metadata"))?.has("version") ?? false
                    throw r.error("version", both
                        ? "has a \"version\" key and a \"metadata.version\", which cannot be specified together; use \"metadata.version\""
                        : "a \"version\" key is not supported; use \"metadata.version\"", kind: .invalidValue)
                }
                requires.append(try Require.decode(r))
            }
            return Sections(provides: provides, requires: requires)
        }
    }

    /// The top-level `[[provides]]` and `[[requires]]`.
    public var sections: Sections
    /// `[[or]]`: alternatives, tried after the top-level sections, in order.
    public var or: [Sections]

    public init(provides: [Provide] = [], requires: [Require] = [], or: [Sections] = []) {
        self.sections = Sections(provides: provides, requires: requires)
        self.or = or
    }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let reader = TableReader(table, context: context)
        sections = try Sections.decode(reader)
        var or: [Sections] = []
        for alternative in try reader.tables("or") { or.append(try Sections.decode(alternative)) }
        self.or = or
    }

    /// The alternatives in trial order: the top-level sections, then `or[0]`, `or[1]`, ...
    public var alternatives: [Sections] { [sections] + or }

    /// Checks the rules that depend on the module kind: an image extension may only provide.
    public func validate(for kind: ModuleKind, context: DocumentContext) throws(SpecError) {
        guard kind == .extension else { return }
        if !sections.requires.isEmpty || or.contains(where: { !$0.requires.isEmpty }) {
            throw SpecError(.invalidValue, "an image extension cannot output \"requires\"",
                            file: context.file, keyPath: "requires", buildpack: context.buildpack)
        }
    }
}
