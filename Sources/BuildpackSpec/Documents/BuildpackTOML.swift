/// `buildpack.toml` (the buildpack descriptor) or `extension.toml` (the image extension descriptor).
///
/// ```toml
/// api = "0.12"
/// [buildpack]
/// id = "example/node"          # letters, digits, ".", "/", "-"; not app/config/generated/sbom
/// version = "1.0.0"
/// name = "Node"
/// homepage = "https://example.com"
/// clear-env = false
/// sbom-formats = ["application/vnd.cyclonedx+json"]
/// exec-env = ["production"]     # or [[buildpack.exec-env]] name = "production"
/// [[order]]                      # composite buildpacks only
/// [[order.group]]
/// id = "example/npm"
/// version = "1.0.0"
/// optional = false
/// [[targets]]
/// os = "linux"
/// arch = "amd64"
/// variant = "v8"                # or arch-variant
/// [[targets.distros]]
/// name = "ubuntu"
/// version = "22.04"
/// [[stacks]]                     # deprecated since 0.10
/// id = "io.buildpacks.stacks.bionic"
/// [metadata]                     # free-form
/// ```
public struct BuildpackTOML: TOMLDecodable, Equatable {
    public static let defaultFileName = "buildpack.toml"

    /// Buildpack (`[buildpack]`) or extension (`[extension]`, in `extension.toml`).
    public var kind: ModuleKind
    /// `api`: the Buildpack API the module implements, within `APIVersion.supportedBuildpackAPIs`.
    public var api: APIVersion
    /// `[buildpack]` (or `[extension]`).
    public var info: Info
    /// `[[order]]`: non-empty for a composite buildpack.
    public var order: [OrderGroup]
    /// `[[targets]]` as declared (see `effectiveTargets(binaries:)` for the inferred ones).
    public var targets: [Target]
    /// `[[stacks]]` (deprecated).
    public var stacks: [Stack]
    /// `[metadata]`, free-form.
    public var metadata: TOMLTable

    /// `[buildpack]`.
    public struct Info: Sendable, Equatable {
        public var id: String
        public var version: String
        public var name: String?
        public var homepage: String?
        public var description: String?
        public var keywords: [String]
        /// `clear-env`: when true, `<platform>/env` is not applied to this buildpack's environment.
        public var clearEnv: Bool
        /// `sbom-formats`: the SBOM media types the buildpack may write.
        public var sbomFormats: [String]
        /// `[[buildpack.licenses]]`.
        public var licenses: [License]
        /// The execution environments the buildpack supports: `exec-env = [...]` (reference lifecycle) or
        /// `[[buildpack.exec-env]] name = ...` (spec), merged. Empty means all.
        public var execEnv: [String]

        public init(id: String, version: String, name: String? = nil, homepage: String? = nil,
                    description: String? = nil, keywords: [String] = [], clearEnv: Bool = false,
                    sbomFormats: [String] = [], licenses: [License] = [], execEnv: [String] = [])
        {
            self.id = id; self.version = version; self.name = name; self.homepage = homepage
            self.description = description; self.keywords = keywords; self.clearEnv = clearEnv
            self.sbomFormats = sbomFormats; self.licenses = licenses; self.execEnv = execEnv
        }
    }

    /// `[[buildpack.licenses]] type, uri`.
    public struct License: Sendable, Equatable {
        public var type: String?
        public var uri: String?
        public init(type: String? = nil, uri: String? = nil) { self.type = type; self.uri = uri }
    }

    /// `[[stacks]] id, mixins`.
    public struct Stack: Sendable, Equatable {
        public var id: String
        public var mixins: [String]
        public init(id: String, mixins: [String] = []) { self.id = id; self.mixins = mixins }
    }

    public init(kind: ModuleKind = .buildpack, api: APIVersion, info: Info, order: [OrderGroup] = [],
                targets: [Target] = [], stacks: [Stack] = [], metadata: TOMLTable = TOMLTable())
    {
        self.kind = kind; self.api = api; self.info = info; self.order = order
        self.targets = targets; self.stacks = stacks; self.metadata = metadata
    }

    /// `id@version`.
    public var reference: String { "\(info.id)@\(info.version)" }

    /// Whether this is a composite buildpack (it has an order and no `bin/`).
    public var isComposite: Bool { !order.isEmpty }

    /// This module as a group element (api and homepage filled in), with the given optionality.
    public func groupElement(optional: Bool = false) -> GroupElement {
        GroupElement(id: info.id, version: info.version, optional: optional, kind: kind,
                     api: api.description, homepage: info.homepage)
    }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let root = TableReader(table, context: context)
        let section = table["extension"] != nil && table["buildpack"] == nil ? "extension" : "buildpack"
        kind = section == "extension" ? .extension : .buildpack
        // The API comes first: an unsupported API is reported as such (exit 12), whatever else is wrong.
        let apiText = try root.string("api")
        // The buildpack as messages name it, before it is validated: control characters escaped.
        let idForMessages = (table[section]?.tableValue?["id"]?.stringValue).map { id in
            printable(id + ((table[section]?.tableValue?["version"]?.stringValue).map { "@" + $0 } ?? ""))
        } ?? context.buildpack
        api = try APIVersion.buildpackAPI(apiText, file: context.file, buildpack: idForMessages)

        guard let infoReader = try root.table(section) else {
            throw root.error(nil, "the [\(section)] table is required but missing")
        }
        let context = DocumentContext(file: context.file, buildpack: idForMessages, buildpackAPI: api)
        let reader = TableReader(infoReader.table, context: context, path: section)
        let id = try reader.string("id")
        try BuildpackID.validate(id, file: context.file, keyPath: reader.keyPath("id"), buildpack: idForMessages)
        let version = try reader.string("version")
        try BuildpackVersion.validate(version, file: context.file, keyPath: reader.keyPath("version"),
                                      buildpack: idForMessages)

        var licenses: [License] = []
        for license in try reader.tables("licenses") {
            licenses.append(License(type: try license.optionalString("type"), uri: try license.optionalString("uri")))
        }
        var execEnv: [String] = []
        if let value = reader.value("exec-env") {
            guard case .array(let items) = value else {
                throw reader.typeError("exec-env", expected: "an array", found: value)
            }
            for (index, item) in items.enumerated() {
                switch item {
                case .string(let s):
                    execEnv.append(s)
                case .table(let t):
                    let entry = TableReader(t, context: context, path: reader.keyPath("exec-env") + "[\(index)]")
                    execEnv.append(try entry.string("name"))
                default:
                    throw reader.error(nil, "expected a string or a table with a name, found \(item.typeDescription)")
                        .withKeyPath(reader.keyPath("exec-env") + "[\(index)]")
                }
            }
        }
        info = Info(id: id, version: version,
                    name: try reader.optionalString("name"),
                    homepage: try reader.optionalString("homepage"),
                    description: try reader.optionalString("description"),
                    keywords: try reader.strings("keywords"),
                    clearEnv: try reader.bool("clear-env"),
                    sbomFormats: try reader.strings("sbom-formats"),
                    licenses: licenses,
                    execEnv: execEnv)

        let outer = TableReader(table, context: context)
        var order: [OrderGroup] = []
        for group in try outer.tables("order") {
            order.append(try OrderGroup.decode(group, kind: .buildpack))
        }
        self.order = order
        if kind == .extension && !order.isEmpty {
            throw outer.error("order", "an image extension cannot have an order", kind: .invalidValue)
        }
        var targets: [Target] = []
        for target in try outer.tables("targets") {
            targets.append(try Target.decode(target))
        }
        self.targets = targets
        var stacks: [Stack] = []
        for stack in try outer.tables("stacks") {
            stacks.append(Stack(id: try stack.string("id"), mixins: try stack.strings("mixins")))
        }
        self.stacks = stacks
        metadata = try outer.freeform("metadata")
    }

    /// The targets the platform checks, as the reference lifecycle derives them:
    /// 1. the declared `[[targets]]`;
    /// 2. else from `[[stacks]]`: `io.buildpacks.stacks.bionic` → linux/amd64 ubuntu 18.04 (if API ≥ 0.10 or it
    ///    is the only stack), `*` → a target matching anything;
    /// 3. else from `bin/`: `build` → linux; `build.bat` or `build.exe` → windows.
    /// - Parameter binaries: the names of the entries in the buildpack's `bin/` directory.
    public func effectiveTargets(binaries: [String]) -> [Target] {
        if !targets.isEmpty { return targets }
        var out: [Target] = []
        for stack in stacks {
            if stack.id == "io.buildpacks.stacks.bionic" {
                if api >= APIVersion(0, 10) || stacks.count == 1 {
                    out.append(Target(os: "linux", arch: "amd64", distros: [Distro(name: "ubuntu", version: "18.04")]))
                }
            } else if stack.id == "*" {
                out.append(Target())
            }
        }
        if !out.isEmpty { return out }
        if binaries.contains("build") { out.append(Target(os: "linux")) }
        if binaries.contains("build.bat") || binaries.contains("build.exe") { out.append(Target(os: "windows")) }
        return out
    }

    /// The execution environments that select this module, as detection reads them: `info.execEnv`
    /// for API ≥ 0.12, otherwise none (meaning all).
    public var effectiveExecEnv: [String] {
        api >= APIVersion(0, 12) ? info.execEnv : []
    }
}

/// `[[targets]]`: a runtime environment a buildpack supports. An empty field matches anything.
public struct Target: Sendable, Hashable {
    public var os: String
    public var arch: String
    /// `variant` (spec) or `arch-variant` (reference lifecycle).
    public var variant: String
    /// `[[targets.distros]]`: if not empty, one must match the image.
    public var distros: [Distro]

    public init(os: String = "", arch: String = "", variant: String = "", distros: [Distro] = []) {
        self.os = os; self.arch = arch; self.variant = variant; self.distros = distros
    }

    static func decode(_ reader: TableReader) throws(SpecError) -> Target {
        let variant = try reader.optionalString("variant")
        let archVariant = try reader.optionalString("arch-variant")
        if let variant, let archVariant, variant != archVariant {
            throw reader.error("variant", "\"variant\" and \"arch-variant\" disagree (\"\(variant)\" and \"\(archVariant)\")",
                               kind: .invalidValue)
        }
        var distros: [Distro] = []
        for distro in try reader.tables("distros") {
            distros.append(Distro(name: try distro.optionalString("name") ?? "",
                                  version: try distro.optionalString("version") ?? ""))
        }
        return Target(os: try reader.optionalString("os") ?? "", arch: try reader.optionalString("arch") ?? "",
                      variant: variant ?? archVariant ?? "", distros: distros)
    }

    func tomlTable() -> TOMLTable {
        var b = TableBuilder()
        b.setNonEmpty("os", os)
        b.setNonEmpty("arch", arch)
        b.setNonEmpty("arch-variant", variant)
        b.set("distros", tables: distros.map { d in
            var t = TableBuilder()
            t.setNonEmpty("name", d.name)
            t.setNonEmpty("version", d.version)
            return t.table
        })
        return b.table
    }

    /// Whether this (a module's) target is satisfied by the image `platform` (reference lifecycle rules):
    /// os, arch and variant must be equal where both are non-empty; if this target lists distros, the image
    /// must have a distro and one of them must match (again with empty fields matching anything).
    public func matches(_ platform: TargetPlatform) -> Bool {
        func same(_ a: String, _ b: String) -> Bool { a.isEmpty || b.isEmpty || a == b }
        guard same(platform.os, os), same(platform.arch, arch), same(platform.archVariant, variant) else {
            return false
        }
        if distros.isEmpty { return true }
        guard let distro = platform.distro else { return false }
        return distros.contains { same(distro.name, $0.name) && same(distro.version, $0.version) }
    }
}

/// `[[targets.distros]] name, version`.
public struct Distro: Sendable, Hashable {
    public var name: String
    public var version: String
    public init(name: String = "", version: String = "") { self.name = name; self.version = version }
}

/// The image a build targets (`analyzed.toml [run-image.target]`, completed from `/etc/os-release`).
public struct TargetPlatform: Sendable, Hashable {
    public var os: String
    public var arch: String
    public var archVariant: String
    public var distro: Distro?

    public init(os: String, arch: String, archVariant: String = "", distro: Distro? = nil) {
        self.os = os; self.arch = arch; self.archVariant = archVariant; self.distro = distro
    }

    /// `CNB_TARGET_OS`, `CNB_TARGET_ARCH` (always) and `CNB_TARGET_ARCH_VARIANT`, `CNB_TARGET_DISTRO_NAME`,
    /// `CNB_TARGET_DISTRO_VERSION` (only if not empty), for Buildpack API ≥ 0.10.
    public var environment: [(name: String, value: String)] {
        var out: [(String, String)] = [("CNB_TARGET_OS", os), ("CNB_TARGET_ARCH", arch)]
        if !archVariant.isEmpty { out.append(("CNB_TARGET_ARCH_VARIANT", archVariant)) }
        if let distro, !distro.name.isEmpty { out.append(("CNB_TARGET_DISTRO_NAME", distro.name)) }
        if let distro, !distro.version.isEmpty { out.append(("CNB_TARGET_DISTRO_VERSION", distro.version)) }
        return out
    }
}
