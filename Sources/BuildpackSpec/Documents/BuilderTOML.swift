/// A module a builder or project refers to: `[[buildpacks]] id, version, uri`.
public struct ModuleReference: Sendable, Hashable {
    public var id: String?
    public var version: String?
    /// A directory, `.tgz`, `.cnb`, `docker://…` or `urn:cnb:…` reference, relative to the file.
    public var uri: String?

    public init(id: String? = nil, version: String? = nil, uri: String? = nil) {
        self.id = id; self.version = version; self.uri = uri
    }

    static func decode(_ reader: TableReader) throws(SpecError) -> ModuleReference {
        let id = try reader.optionalString("id")
        if let id {
            try BuildpackID.validate(id, file: reader.context.file, keyPath: reader.keyPath("id"))
        }
        return ModuleReference(id: id, version: try reader.optionalString("version"), uri: try reader.optionalString("uri"))
    }
}

/// `[[build.env]] name, value, suffix, delim` of builder.toml: an operator-set build-config variable,
/// written to `/cnb/build-config/env/<name>.<suffix>` (and `<name>.delim`).
public struct BuildConfigVariable: Sendable, Hashable {
    public var name: String
    public var value: String
    /// `suffix`: default, override, append or prepend; `default` when absent.
    public var action: EnvironmentAction
    /// `delim`, for append and prepend.
    public var delimiter: String?

    public init(name: String, value: String, action: EnvironmentAction = .default, delimiter: String? = nil) {
        self.name = name; self.value = value; self.action = action; self.delimiter = delimiter
    }

    /// The file name in `<build-config>/env/`: `<name>.<suffix>`.
    public var fileName: String { "\(name).\(action.rawValue)" }
    /// The delimiter file name, `<name>.delim`, if there is a delimiter.
    public var delimiterFileName: String? { delimiter == nil ? nil : "\(name).delim" }
}

/// `builder.toml`, the input of `pack builder create`.
///
/// ```toml
/// description = "…"
/// [[buildpacks]]
/// id = "example/node"
/// version = "1.0.0"
/// uri = "./node"
/// [[order]]
/// [[order.group]]
/// id = "example/node"
/// version = "1.0.0"          # optional here
/// optional = false
/// [[extensions]]  /  [[order-extensions]]
/// [build]
/// image = "example/build"
/// [[build.env]]
/// name = "JAVA_OPTS"
/// value = "-Xmx1g"
/// suffix = "default"         # default | override | append | prepend
/// delim = ":"
/// [run]
/// [[run.images]]
/// image = "example/run"
/// mirrors = ["mirror/run"]
/// [stack]                    # legacy
/// id = "io.buildpacks.stacks.jammy"
/// build-image = "…"
/// run-image = "…"
/// run-image-mirrors = ["…"]
/// [lifecycle]
/// version = "0.20.0"         # or uri
/// [[targets]]
/// os = "linux"
/// arch = "amd64"
/// ```
public struct BuilderTOML: TOMLDecodable, Equatable {
    public static let defaultFileName = "builder.toml"

    public var description: String?
    /// `[[buildpacks]]`.
    public var buildpacks: [ModuleReference]
    /// `[[extensions]]`.
    public var extensions: [ModuleReference]
    /// `[[order]]` (versions may be empty: the builder fills them in).
    public var order: [OrderGroup]
    /// `[[order-extensions]]`.
    public var orderExtensions: [OrderGroup]
    /// `[build] image`.
    public var buildImage: String?
    /// `[[build.env]]`.
    public var buildEnv: [BuildConfigVariable]
    /// `[[run.images]]`.
    public var runImages: [RunImage]
    /// `[stack]` (legacy).
    public var stack: Stack?
    /// `[lifecycle] version`.
    public var lifecycleVersion: String?
    /// `[lifecycle] uri`.
    public var lifecycleURI: String?
    /// `[[targets]]`.
    public var targets: [Target]

    /// `[[run.images]] image, mirrors` (written to `/cnb/run.toml` as `[[images]]`).
    public struct RunImage: Sendable, Hashable {
        public var image: String
        public var mirrors: [String]
        public init(image: String, mirrors: [String] = []) { self.image = image; self.mirrors = mirrors }
    }

    /// `[stack] id, build-image, run-image, run-image-mirrors` (written to `/cnb/stack.toml`).
    public struct Stack: Sendable, Hashable {
        public var id: String
        public var buildImage: String?
        public var runImage: String?
        public var runImageMirrors: [String]
    }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let reader = TableReader(table, context: context)
        description = try reader.optionalString("description")
        var buildpacks: [ModuleReference] = []
        for entry in try reader.tables("buildpacks") { buildpacks.append(try ModuleReference.decode(entry)) }
        var extensions: [ModuleReference] = []
        for entry in try reader.tables("extensions") { extensions.append(try ModuleReference.decode(entry)) }
        var order: [OrderGroup] = []
        for group in try reader.tables("order") {
            order.append(try OrderGroup.decode(group, kind: .buildpack, requireVersion: false))
        }
        var orderExtensions: [OrderGroup] = []
        for group in try reader.tables("order-extensions") {
            orderExtensions.append(try OrderGroup.decode(group, kind: .extension, requireVersion: false))
        }
        let build = try reader.table("build")
        buildImage = try build?.optionalString("image")
        var buildEnv: [BuildConfigVariable] = []
        for entry in try build?.tables("env") ?? [] {
            let name = try entry.string("name")
            try EnvironmentVariableName.validateFileName(name, file: context.file, keyPath: entry.keyPath("name"))
            let suffix = try entry.optionalString("suffix") ?? "default"
            guard let action = EnvironmentAction(rawValue: suffix), action != .prependPath else {
                throw entry.error("suffix", "\(quoted(suffix)) is not one of default, override, append, prepend",
                                  kind: .invalidValue)
            }
            buildEnv.append(BuildConfigVariable(name: name, value: try entry.optionalString("value") ?? "",
                                                action: action, delimiter: try entry.optionalString("delim")))
        }
        var runImages: [RunImage] = []
        for image in try reader.table("run")?.tables("images") ?? [] {
            runImages.append(RunImage(image: try image.string("image"), mirrors: try image.strings("mirrors")))
        }
        if let stack = try reader.table("stack") {
            self.stack = Stack(id: try stack.string("id"), buildImage: try stack.optionalString("build-image"),
                               runImage: try stack.optionalString("run-image"),
                               runImageMirrors: try stack.strings("run-image-mirrors"))
        } else {
            self.stack = nil
        }
        let lifecycle = try reader.table("lifecycle")
        lifecycleVersion = try lifecycle?.optionalString("version")
        lifecycleURI = try lifecycle?.optionalString("uri")
        if lifecycleVersion != nil && lifecycleURI != nil {
            throw reader.error("lifecycle", "set either version or uri, not both", kind: .invalidValue)
        }
        var targets: [Target] = []
        for target in try reader.tables("targets") { targets.append(try Target.decode(target)) }
        self.buildpacks = buildpacks
        self.extensions = extensions
        self.order = order
        self.orderExtensions = orderExtensions
        self.buildEnv = buildEnv
        self.runImages = runImages
        self.targets = targets
    }
}
