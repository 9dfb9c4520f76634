/// `<layers>/config/metadata.toml`, written by the builder for the exporter and the launcher.
///
/// ```toml
/// buildpack-default-process-type = "web"
/// [[buildpacks]]
/// id = "example/node"
/// version = "1.0.0"
/// api = "0.12"
/// homepage = "https://example.com"
/// [[processes]]                      # sorted by type
/// type = "web"
/// command = ["node", "server.js"]    # a string for Platform API < 0.10 (extra parts move to args)
/// args = []
/// direct = true
/// buildpack-id = "example/node"
/// working-dir = "/workspace"
/// exec-env = ["production"]
/// [[labels]]
/// key = "k"
/// value = "v"
/// [[slices]]
/// paths = ["public/*"]
/// ```
public struct MetadataTOML: TOMLDecodable, TOMLEncodable, Equatable {
    public static let defaultFileName = "metadata.toml"

    /// `buildpack-default-process-type`.
    public var buildpackDefaultProcessType: String?
    /// `[[buildpacks]] id, version, api, homepage`: the group.
    public var buildpacks: [GroupElement]
    /// `[[extensions]]`.
    public var extensions: [GroupElement]
    /// `[[processes]]`, sorted by type.
    public var processes: [LaunchProcess]
    /// `[[labels]]`, in buildpack order (a later value for the same key wins when applied).
    public var labels: [LaunchLabel]
    /// `[[slices]]`, in buildpack order.
    public var slices: [LaunchSlice]
    /// `[[bom]]` (Platform API < 0.9 only).
    public var bom: [TOMLTable]
    /// Selects the shape of `command` when writing: a string before Platform API 0.10, an array after.
    public var platformAPI: APIVersion

    public init(buildpackDefaultProcessType: String? = nil, buildpacks: [GroupElement] = [],
                extensions: [GroupElement] = [], processes: [LaunchProcess] = [], labels: [LaunchLabel] = [],
                slices: [LaunchSlice] = [], bom: [TOMLTable] = [],
                platformAPI: APIVersion = APIVersion.supportedPlatformAPIs.upperBound)
    {
        self.buildpackDefaultProcessType = buildpackDefaultProcessType
        self.buildpacks = buildpacks.map(\.withoutOptional)
        self.extensions = extensions.map(\.withoutOptional)
        self.processes = processes.sorted { utf8Less($0.type, $1.type) }
        self.labels = labels
        self.slices = slices
        self.bom = bom
        self.platformAPI = platformAPI
    }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let reader = TableReader(table, context: context)
        buildpackDefaultProcessType = try reader.optionalString("buildpack-default-process-type")
        let buildpacks = try GroupElement.decodeGroup(reader, "buildpacks", kind: .buildpack)
        let extensions = try GroupElement.decodeGroup(reader, "extensions", kind: .extension)
        var processes: [LaunchProcess] = []
        var sawStringCommand = false
        for entry in try reader.tables("processes") {
            let type = try entry.string("type")
            try ProcessType.validate(type, file: context.file, keyPath: entry.keyPath("type"))
            let command: [String]
            switch entry.value("command") {
            case .string(let s)?: command = [s]; sawStringCommand = true
            case .array?: command = try entry.strings("command")
            case let other?: throw entry.typeError("command", expected: "a string or an array of strings", found: other)
            case nil: throw entry.error("command", "is required but missing")
            }
            processes.append(LaunchProcess(type: type, command: command, args: try entry.strings("args"),
                                     direct: try entry.bool("direct", default: true), isDefault: false,
                                     workingDirectory: try entry.optionalString("working-dir"),
                                     execEnv: try entry.strings("exec-env"),
                                     buildpackID: try entry.optionalString("buildpack-id")))
        }
        self.buildpacks = buildpacks
        self.extensions = extensions
        self.processes = processes
        self.labels = try LaunchLabel.all(in: reader)
        self.slices = try LaunchSlice.all(in: reader)
        self.bom = try reader.tables("bom").map(\.table)
        self.platformAPI = sawStringCommand ? APIVersion(0, 9) : APIVersion.supportedPlatformAPIs.upperBound
    }

    /// The process of the given type.
    public func process(ofType type: String) -> LaunchProcess? { processes.first { $0.type == type } }

    public func tomlTable() -> TOMLTable {
        var b = TableBuilder()
        b.setNonEmpty("buildpack-default-process-type", buildpackDefaultProcessType)
        b.set("buildpacks", tables: buildpacks.map { $0.groupTable() })
        b.set("extensions", tables: extensions.map { $0.groupTable() })
        let stringCommands = platformAPI < APIVersion(0, 10)
        b.set("processes", tables: processes.sorted { utf8Less($0.type, $1.type) }.map { process in
            var p = TableBuilder()
            p.set("type", process.type)
            if stringCommands {
                p.set("command", process.command.first ?? "")
                p.set("args", strings: Array(process.command.dropFirst()) + process.args)
            } else {
                p.set("command", strings: process.command)
                p.set("args", strings: process.args)
            }
            p.set("direct", process.direct)
            p.set("buildpack-id", process.buildpackID ?? "")
            p.setNonEmpty("working-dir", process.workingDirectory)
            p.setNonEmpty("exec-env", strings: process.execEnv)
            return p.table
        })
        b.set("labels", tables: labels.map { ["key": .string($0.key), "value": .string($0.value)] })
        b.set("slices", tables: slices.map { ["paths": .array($0.paths.map(TOMLValue.string))] })
        b.set("bom", tables: bom)
        return b.table
    }
}
