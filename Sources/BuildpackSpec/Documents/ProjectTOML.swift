/// `project.toml`, the project descriptor (schema 0.2; schema 0.1 is read too).
///
/// Schema 0.2:
/// ```toml
/// [_]
/// schema-version = "0.2"
/// id = "com.example.app"
/// name = "App"
/// version = "1.0"
/// authors = ["…"]
/// documentation-url = "…"
/// source-url = "…"
/// [[_.licenses]]
/// type = "MIT"
/// [_.metadata]                # free-form
/// [io.buildpacks]
/// builder = "example/builder"
/// include = ["src/"]          # or exclude, not both (gitignore patterns)
/// [[io.buildpacks.group]]     # exactly one of version (with id), uri, or script
/// id = "example/node"
/// version = "1.0.0"
/// [io.buildpacks.group.script]
/// api = "0.12"
/// shell = "/bin/sh"
/// inline = "echo hi"
/// [[io.buildpacks.pre.group]]  /  [[io.buildpacks.post.group]]
/// [[io.buildpacks.build.env]]
/// name = "JAVA_OPTS"
/// value = "-Xmx1g"
/// ```
///
/// Schema 0.1 (no `[_]` table): `[project]`, `[build] include/exclude`, `[[build.buildpacks]] id/version | uri | script`,
/// `[[build.env]]`, `[metadata]`.
public struct ProjectTOML: TOMLDecodable, Equatable {
    public static let defaultFileName = "project.toml"

    /// `schema-version`: 0.2, or 0.1 when there is no `[_]` table.
    public var schemaVersion: APIVersion
    public var id: String?
    public var name: String?
    public var version: String?
    public var authors: [String]
    public var documentationURL: String?
    public var sourceURL: String?
    public var licenses: [BuildpackTOML.License]
    /// `[_.metadata]` (0.2) or `[metadata]` (0.1).
    public var metadata: TOMLTable
    /// `[io.buildpacks] builder`.
    public var builder: String?
    /// `include`: gitignore patterns of what to copy into `<app>` (exclusive with `exclude`).
    public var include: [String]
    /// `exclude`: gitignore patterns of what not to copy.
    public var exclude: [String]
    /// `[[io.buildpacks.group]]` (0.2) or `[[build.buildpacks]]` (0.1).
    public var group: [Buildpack]
    /// `[[io.buildpacks.pre.group]]`: added to the front of every group of the order.
    public var pre: [Buildpack]
    /// `[[io.buildpacks.post.group]]`: added to the end of every group.
    public var post: [Buildpack]
    /// `[[io.buildpacks.build.env]]` (0.2) or `[[build.env]]` (0.1): files for `<platform>/env`.
    public var buildEnv: [Variable]

    /// A buildpack of a project group.
    public enum Buildpack: Sendable, Equatable {
        /// `id` and optional `version` (a missing version means the builder's).
        case registry(id: String, version: String?)
        /// `uri` (with an optional `id`).
        case uri(String, id: String?)
        /// `[script] api, shell, inline`: an inline buildpack (its `id` is required).
        case inline(id: String, api: String, shell: String, script: String)
    }

    /// `name`, `value`.
    public struct Variable: Sendable, Hashable {
        public var name: String
        public var value: String
        public init(name: String, value: String) { self.name = name; self.value = value }
    }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let reader = TableReader(table, context: context)
        if let project = try reader.table("_") {
            let text = try project.string("schema-version")
            guard let schema = APIVersion(text), schema == APIVersion(0, 2) else {
                throw project.error("schema-version", "\(quoted(text)) is not a supported schema version (0.1 or 0.2)",
                                    kind: .invalidValue)
            }
            schemaVersion = schema
            id = try project.optionalString("id")
            name = try project.optionalString("name")
            version = try project.optionalString("version")
            authors = try project.strings("authors")
            documentationURL = try project.optionalString("documentation-url")
            sourceURL = try project.optionalString("source-url")
            licenses = try Self.licenses(project)
            metadata = try project.freeform("metadata")
            let io = try reader.table("io")?.table("buildpacks")
            builder = try io?.optionalString("builder")
            include = try io?.strings("include") ?? []
            exclude = try io?.strings("exclude") ?? []
            group = try Self.buildpacks(io, "group")
            pre = try Self.buildpacks(try io?.table("pre"), "group")
            post = try Self.buildpacks(try io?.table("post"), "group")
            buildEnv = try Self.variables(try io?.table("build"))
            if io?.has("include") == true && io?.has("exclude") == true {
                throw io!.error(nil, "set either include or exclude, not both", kind: .invalidValue)
            }
        } else {
            schemaVersion = APIVersion(0, 1)
            let project = try reader.table("project")
            id = try project?.optionalString("id")
            name = try project?.optionalString("name")
            version = try project?.optionalString("version")
            authors = try project?.strings("authors") ?? []
            documentationURL = try project?.optionalString("documentation-url")
            sourceURL = try project?.optionalString("source-url")
            licenses = try project.map { p throws(SpecError) in try Self.licenses(p) } ?? []
            metadata = try reader.freeform("metadata")
            let build = try reader.table("build")
            builder = try build?.optionalString("builder")
            include = try build?.strings("include") ?? []
            exclude = try build?.strings("exclude") ?? []
            group = try Self.buildpacks(build, "buildpacks")
            pre = []
            post = []
            buildEnv = try Self.variables(build)
            if build?.has("include") == true && build?.has("exclude") == true {
                throw build!.error(nil, "set either include or exclude, not both", kind: .invalidValue)
            }
        }
    }

    private static func licenses(_ reader: TableReader) throws(SpecError) -> [BuildpackTOML.License] {
        var out: [BuildpackTOML.License] = []
        for license in try reader.tables("licenses") {
            out.append(BuildpackTOML.License(type: try license.optionalString("type"), uri: try license.optionalString("uri")))
        }
        return out
    }

    private static func variables(_ reader: TableReader?) throws(SpecError) -> [Variable] {
        var out: [Variable] = []
        for entry in try reader?.tables("env") ?? [] {
            let name = try entry.string("name")
            try EnvironmentVariableName.validateFileName(name, file: entry.context.file, keyPath: entry.keyPath("name"))
            out.append(Variable(name: name, value: try entry.optionalString("value") ?? ""))
        }
        return out
    }

    private static func buildpacks(_ reader: TableReader?, _ key: String) throws(SpecError) -> [Buildpack] {
        var out: [Buildpack] = []
        for entry in try reader?.tables(key) ?? [] {
            let id = try entry.optionalString("id")
            if let id {
                try BuildpackID.validate(id, file: entry.context.file, keyPath: entry.keyPath("id"))
            }
            let version = try entry.optionalString("version")
            let uri = try entry.optionalString("uri")
            let script = try entry.table("script")
            let count = (version == nil ? 0 : 1) + (uri == nil ? 0 : 1) + (script == nil ? 0 : 1)
            if count > 1 {
                throw entry.error(nil, "set only one of version, uri and script", kind: .invalidValue)
            }
            if let script {
                guard let id else { throw entry.error("id", "an inline buildpack needs an id") }
                let shell = try script.optionalString("shell") ?? "/bin/sh"
                try validateShell(shell, script)
                let inline = try script.string("inline")
                if inline.utf8.count > inlineScriptLimit {
                    throw script.error("inline", "an inline script may hold at most \(inlineScriptLimit) bytes", kind: .invalidValue)
                }
                out.append(.inline(id: id, api: try script.string("api"), shell: shell, script: inline))
            } else if let uri {
                out.append(.uri(uri, id: id))
            } else if let id {
                out.append(.registry(id: id, version: version))
            } else {
                throw entry.error(nil, "set an id (with an optional version), a uri or a script", kind: .invalidValue)
            }
        }
        return out
    }

    /// The most bytes an inline script may hold: it becomes a file of the run's scratch space.
    public static let inlineScriptLimit = 256 << 10

    /// The shell becomes the `#!` line of the inline buildpack's `bin/build`: an absolute path the kernel can
    /// read there (no whitespace or control characters, within its 255-byte line limit).
    private static func validateShell(_ shell: String, _ script: TableReader) throws(SpecError) {
        let usable = shell.hasPrefix("/") && shell.utf8.count < 200
            && shell.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
        if !usable {
            throw script.error("shell", "\(quoted(shell)) is not usable as a shell: give an absolute path without spaces",
                               kind: .invalidValue)
        }
    }

    /// The order the project asks for: its group (when it has one, every element required) instead of `order`,
    /// then `pre` put before and `post` after every group. The platform resolves each buildpack (an ID, a
    /// URI or an inline script) to an element.
    public func order(wrapping order: [OrderGroup],
                      resolving resolve: (Buildpack) throws(SpecError) -> GroupElement) throws(SpecError) -> [OrderGroup] {
        func required(_ buildpacks: [Buildpack]) throws(SpecError) -> [GroupElement] {
            var elements: [GroupElement] = []
            for buildpack in buildpacks {
                var element = try resolve(buildpack)
                element.optional = false
                elements.append(element)
            }
            return elements
        }
        let groups = group.isEmpty ? order : [OrderGroup(try required(group))]
        if pre.isEmpty && post.isEmpty { return groups }
        let before = try required(pre)
        let after = try required(post)
        return groups.map { OrderGroup(before + $0.group + after) }
    }
}
