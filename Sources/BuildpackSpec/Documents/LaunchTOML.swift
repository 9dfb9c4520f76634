/// A process type a buildpack contributes (`[[processes]]` of launch.toml; also of metadata.toml).
public struct LaunchProcess: Sendable, Equatable {
    /// `type`: letters, digits, `.`, `_`, `-` (names `/cnb/process/<type>`).
    public var type: String
    /// `command`: the executable and fixed arguments. Buildpack API < 0.9 writes a single string,
    /// which becomes a one-element array.
    public var command: [String]
    /// `args`: default arguments, which user arguments replace (API ≥ 0.9) or follow (older).
    public var args: [String]
    /// `direct`: false runs via bash. Only Buildpack API < 0.9 may set it (default false there);
    /// from 0.9 every process is direct.
    public var direct: Bool
    /// `default`: this is the buildpack's default process.
    public var isDefault: Bool
    /// `working-dir` (honoured from Buildpack API 0.8).
    public var workingDirectory: String?
    /// `exec-env` (Buildpack API 0.12): the execution environments the process is for; empty means all.
    public var execEnv: [String]
    /// The buildpack that contributed the process (`buildpack-id` in metadata.toml).
    public var buildpackID: String?

    public init(type: String, command: [String], args: [String] = [], direct: Bool = true, isDefault: Bool = false,
                workingDirectory: String? = nil, execEnv: [String] = [], buildpackID: String? = nil)
    {
        self.type = type; self.command = command; self.args = args; self.direct = direct
        self.isDefault = isDefault; self.workingDirectory = workingDirectory; self.execEnv = execEnv
        self.buildpackID = buildpackID
    }
}

/// `[[labels]] key, value`: an image label.
public struct LaunchLabel: Sendable, Hashable {
    public var key: String
    public var value: String
    public init(key: String, value: String) { self.key = key; self.value = value }

    /// The `[[labels]]` of a launch.toml or metadata.toml.
    static func all(in reader: TableReader) throws(SpecError) -> [LaunchLabel] {
        var labels: [LaunchLabel] = []
        for label in try reader.tables("labels") {
            labels.append(LaunchLabel(key: try label.string("key"), value: try label.string("value")))
        }
        return labels
    }
}

/// `[[slices]] paths`: globs (relative to `<app>`) whose files go into their own app layer.
public struct LaunchSlice: Sendable, Hashable {
    public var paths: [String]
    public init(paths: [String]) { self.paths = paths }

    /// The `[[slices]]` of a launch.toml or metadata.toml.
    static func all(in reader: TableReader) throws(SpecError) -> [LaunchSlice] {
        var slices: [LaunchSlice] = []
        for slice in try reader.tables("slices") { slices.append(LaunchSlice(paths: try slice.strings("paths"))) }
        return slices
    }
}

/// `<layers>/<buildpack>/launch.toml`: processes, labels and slices.
///
/// ```toml
/// [[processes]]              # Buildpack API ≥ 0.9
/// type = "web"
/// command = ["bundle", "exec"]
/// args = ["puma"]
/// default = true
/// working-dir = "/workspace/sub"
/// exec-env = ["production"]
/// [[labels]]
/// key = "k"
/// value = "v"
/// [[slices]]
/// paths = ["public/*"]
/// ```
///
/// Before Buildpack API 0.9, `command` is a string and `direct` a boolean (default false); from 0.9,
/// `command` must be an array and `direct` is an error. Before 0.8, `working-dir` is ignored (with a
/// warning). More than one `default = true` is an error. Decoding needs `DocumentContext.buildpackAPI`;
/// without it, the newest shape is assumed.
public struct LaunchTOML: TOMLDecodable, Equatable {
    public static let defaultFileName = "launch.toml"

    public var processes: [LaunchProcess]
    public var labels: [LaunchLabel]
    public var slices: [LaunchSlice]
    /// `[[bom]]`, deprecated, kept as free-form tables.
    public var bom: [TOMLTable]
    /// Things worth telling the user that are not errors (e.g. an ignored `working-dir`).
    public var warnings: [String]

    public init(processes: [LaunchProcess] = [], labels: [LaunchLabel] = [], slices: [LaunchSlice] = [], bom: [TOMLTable] = []) {
        self.processes = processes
        self.labels = labels
        self.slices = slices
        self.bom = bom
        self.warnings = []
    }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let api = context.buildpackAPI ?? APIVersion.supportedBuildpackAPIs.upperBound
        let reader = TableReader(table, context: context)
        var processes: [LaunchProcess] = []
        var warnings: [String] = []
        var defaultType: String?
        for entry in try reader.tables("processes") {
            let type = try entry.string("type")
            try ProcessType.validate(type, file: context.file, keyPath: entry.keyPath("type"), buildpack: context.buildpack)
            var command: [String]
            var direct = true
            if api < APIVersion(0, 9) {
                guard let value = entry.value("command") else { throw entry.error("command", "is required but missing") }
                guard case .string(let s) = value else {
                    throw entry.typeError("command", expected: "a string (Buildpack API \(api))", found: value)
                }
                command = [s]
                direct = try entry.bool("direct", default: false)
            } else {
                guard let value = entry.value("command") else { throw entry.error("command", "is required but missing") }
                guard case .array = value else {
                    throw entry.typeError("command", expected: "an array of strings (Buildpack API \(api))", found: value)
                }
                command = try entry.strings("command")
                if entry.has("direct") {
                    throw entry.error("direct", "is not supported from Buildpack API 0.9 (every process is direct)",
                                      kind: .invalidValue)
                }
            }
            if command.isEmpty || command[0].isEmpty {
                throw entry.error("command", "must name an executable", kind: .invalidValue)
            }
            var workingDirectory = try entry.optionalString("working-dir")
            if api < APIVersion(0, 8), workingDirectory != nil {
                warnings.append("process \(quoted(type)): working-dir is not supported by Buildpack API \(api) and is ignored")
                workingDirectory = nil
            }
            let isDefault = try entry.bool("default")
            if isDefault {
                if let first = defaultType {
                    throw entry.error("default", "more than one process is the default (\(quoted(first)) and \(quoted(type)))",
                                      kind: .invalidValue)
                }
                defaultType = type
            }
            processes.append(LaunchProcess(type: type, command: command, args: try entry.strings("args"), direct: direct,
                                     isDefault: isDefault, workingDirectory: workingDirectory,
                                     execEnv: try entry.strings("exec-env"), buildpackID: nil))
        }
        self.processes = processes
        self.labels = try LaunchLabel.all(in: reader)
        self.slices = try LaunchSlice.all(in: reader)
        self.bom = try reader.tables("bom").map(\.table)
        self.warnings = warnings
    }
}
