import BuildpackSpec
import Glibc
import GoFlags

/// The reference lifecycle's phases, by the names platforms call them.
public enum LifecyclePhase: String, CaseIterable, Sendable {
    case analyzer, detector, restorer, builder, exporter, creator, rebaser, launcher

    /// `detector` or, as `lifecycle <phase>` takes it, `detect`.
    init?(name: String) {
        if let phase = Self(rawValue: name) {
            self = phase
        } else if let phase = Self.allCases.first(where: { $0.verb == name }) {
            self = phase
        } else {
            return nil
        }
    }

    var verb: String {
        switch self {
        case .analyzer: "analyze"
        case .detector: "detect"
        case .restorer: "restore"
        case .builder: "build"
        case .exporter: "export"
        case .creator: "create"
        case .rebaser: "rebase"
        case .launcher: "launch"
        }
    }

    /// The Platform API's exit code for this phase's own failure.
    var failureCode: Int32 {
        switch self {
        case .analyzer: 32
        case .detector: 22
        case .restorer: 42
        case .builder: 52
        case .exporter: 62
        case .creator: 62
        case .rebaser: 72
        case .launcher: 82
        }
    }
}

/// `CNB_PLATFORM_API`: checked before anything else, as the reference does.
struct PlatformAPI: CustomStringConvertible {
    let version: APIVersion
    static let exitCode: Int32 = 11

    /// Within 0.7-0.15; nil otherwise (unset and empty included).
    init?(_ text: String) {
        guard let version = try? APIVersion.platformAPI(text) else { return nil }
        self.version = version
    }

    var description: String { version.description }
    func atLeast(_ minor: UInt64) -> Bool { version >= APIVersion(0, minor) }
}

/// One flag of a phase: its kind, the `CNB_*` variable behind it, and the Platform APIs that define it.
struct PhaseFlag {
    let name: String
    let kind: GoFlagSet.Kind
    let variable: String?
    var since: UInt64 = 7
    var before: UInt64 = 99

    init(_ name: String, _ kind: GoFlagSet.Kind = .string, _ variable: String? = nil, since: UInt64 = 7, before: UInt64 = 99) {
        self.name = name
        self.kind = kind
        self.variable = variable
        self.since = since
        self.before = before
    }

    /// Every flag a phase defines, per `DefineFlags` of the reference's `cmd/lifecycle`.
    static func flags(of phase: LifecyclePhase) -> [PhaseFlag] {
        let common = [PhaseFlag("log-level", .string, "CNB_LOG_LEVEL"), PhaseFlag("no-color", .bool, "CNB_NO_COLOR"),
                      PhaseFlag("version", .bool)]
        let analyzed = PhaseFlag("analyzed", .string, "CNB_ANALYZED_PATH")
        let app = PhaseFlag("app", .string, "CNB_APP_DIR")
        let buildpacks = PhaseFlag("buildpacks", .string, "CNB_BUILDPACKS_DIR")
        let buildConfig = PhaseFlag("build-config", .string, "CNB_BUILD_CONFIG_DIR", since: 11)
        let cacheDir = PhaseFlag("cache-dir", .string, "CNB_CACHE_DIR")
        let cacheImage = PhaseFlag("cache-image", .string, "CNB_CACHE_IMAGE")
        let daemon = PhaseFlag("daemon", .bool, "CNB_USE_DAEMON")
        let gid = PhaseFlag("gid", .int, "CNB_GROUP_ID")
        let uid = PhaseFlag("uid", .int, "CNB_USER_ID")
        let group = PhaseFlag("group", .string, "CNB_GROUP_PATH")
        let insecure = PhaseFlag("insecure-registry", .list, "CNB_INSECURE_REGISTRIES", since: 13)
        let launchCache = PhaseFlag("launch-cache", .string, "CNB_LAUNCH_CACHE_DIR")
        let launcher = PhaseFlag("launcher", .string)
        let layers = PhaseFlag("layers", .string, "CNB_LAYERS_DIR")
        let layout = PhaseFlag("layout", .bool, "CNB_USE_LAYOUT", since: 12)
        let layoutDir = PhaseFlag("layout-dir", .string, "CNB_LAYOUT_DIR", since: 12)
        let order = PhaseFlag("order", .string, "CNB_ORDER_PATH")
        let plan = PhaseFlag("plan", .string, "CNB_PLAN_PATH")
        let platform = PhaseFlag("platform", .string, "CNB_PLATFORM_DIR")
        let previous = PhaseFlag("previous-image", .string, "CNB_PREVIOUS_IMAGE")
        let processType = PhaseFlag("process-type", .string, "CNB_PROCESS_TYPE")
        let projectMetadata = PhaseFlag("project-metadata", .string, "CNB_PROJECT_METADATA_PATH")
        let report = PhaseFlag("report", .string, "CNB_REPORT_PATH")
        let run = PhaseFlag("run", .string, "CNB_RUN_PATH", since: 12)
        let runImage = PhaseFlag("run-image", .string, "CNB_RUN_IMAGE")
        let stack = PhaseFlag("stack", .string, "CNB_STACK_PATH", before: 12)
        let system = PhaseFlag("system", .string, "CNB_SYSTEM_PATH", since: 15)
        let tag = PhaseFlag("tag", .list)
        let launcherSBOM = PhaseFlag("launcher-sbom", .string, since: 11)
        let parallel = PhaseFlag("parallel", .bool, "CNB_PARALLEL_EXPORT")
        switch phase {
        case .analyzer:
            return common + [analyzed, cacheImage, daemon, gid, uid, layers, previous, runImage, tag, stack,
                             PhaseFlag("launch-cache", .string, "CNB_LAUNCH_CACHE_DIR", since: 9),
                             PhaseFlag("skip-layers", .bool, "CNB_SKIP_LAYERS", since: 9),
                             layout, layoutDir, run, insecure]
        case .detector:
            return common + [app, buildpacks, group, layers, order, plan, platform,
                             PhaseFlag("analyzed", .string, "CNB_ANALYZED_PATH", since: 10),
                             PhaseFlag("extensions", .string, "CNB_EXTENSIONS_DIR", since: 10),
                             PhaseFlag("generated", .string, "CNB_GENERATED_DIR", since: 10),
                             buildConfig, run, system]
        case .restorer:
            return common + [analyzed, cacheDir, cacheImage, gid, uid, group, layers,
                             PhaseFlag("skip-layers", .bool, "CNB_SKIP_LAYERS"),
                             PhaseFlag("build-image", .string, "CNB_BUILD_IMAGE", since: 10),
                             PhaseFlag("daemon", .bool, "CNB_USE_DAEMON", since: 12),
                             PhaseFlag("generated", .string, "CNB_GENERATED_DIR", since: 12),
                             layout, layoutDir, insecure, PhaseFlag("run", .string, "CNB_RUN_PATH", since: 14)]
        case .builder:
            return common + [app, buildpacks, group, layers, plan, platform, buildConfig,
                             PhaseFlag("analyzed", .string, "CNB_ANALYZED_PATH", since: 12)]
        case .exporter:
            return common + [analyzed, app, cacheDir, cacheImage, gid, uid, group, launchCache, launcher, layers,
                             parallel, processType, projectMetadata, report, runImage, PhaseFlag("image", .string),
                             daemon, launcherSBOM, PhaseFlag("extended", .string, "CNB_EXTENDED_DIR", since: 12),
                             layoutDir, run, layout, insecure, stack]
        case .creator:
            return common + [app, buildpacks, cacheDir, cacheImage, gid, uid, launchCache, launcher, layers, order,
                             parallel, platform, previous, processType, projectMetadata, report, runImage,
                             PhaseFlag("skip-restore", .bool, "CNB_SKIP_RESTORE"), PhaseFlag("stack", .string, "CNB_STACK_PATH"),
                             tag, daemon, buildConfig, launcherSBOM, layoutDir, layout, run, insecure, system]
        case .rebaser:
            return common + [PhaseFlag("image", .string), gid, uid, report, runImage, daemon,
                             PhaseFlag("previous-image", .string, "CNB_PREVIOUS_IMAGE", since: 11),
                             PhaseFlag("force", .bool, since: 12), insecure]
        case .launcher:
            return []
        }
    }
}

/// A phase's inputs: each flag, else its `CNB_*` variable, else the reference's default.
struct PhaseInputs {
    let phase: LifecyclePhase
    let api: PlatformAPI
    let given: GoFlagSet.Values
    let environment: [String: String]
    let variables: [String: String]

    /// Parses `arguments` with the flags `phase` defines at `api`.
    init(phase: LifecyclePhase, api: PlatformAPI, arguments: [String], environment: [String: String]) throws(GoFlagSet.ParseError) {
        self.phase = phase
        self.api = api
        self.environment = environment
        var set = GoFlagSet()
        var variables: [String: String] = [:]
        for flag in PhaseFlag.flags(of: phase) where api.atLeast(flag.since) && !api.atLeast(flag.before) {
            set.define(flag.name, flag.kind)
            if let variable = flag.variable { variables[flag.name] = variable }
        }
        self.variables = variables
        given = try set.parse(arguments)
    }

    var positional: [String] { given.positional }

    /// The flag's value, else its variable's when set and not empty.
    func string(_ name: String) -> String? {
        if let value = given.string(name) { return value }
        guard let variable = variables[name], let value = environment[variable], !value.isEmpty else { return nil }
        return value
    }

    /// A path input: nil when not given or given empty (as platforms do, `-cache-image=`).
    func path(_ name: String) -> String? { string(name).flatMap { $0.isEmpty ? nil : $0 } }

    func bool(_ name: String) throws(PhaseFailure) -> Bool {
        if let value = given.bool(name) { return value }
        guard let variable = variables[name], let text = environment[variable], !text.isEmpty else { return false }
        guard let value = GoFlagSet.parseBool(text) else {
            throw PhaseFailure("\(variable)=\(text) is not a boolean", code: PhaseFailure.invalidArguments)
        }
        return value
    }

    func int(_ name: String) throws(PhaseFailure) -> Int? {
        if let value = given.int(name) { return value }
        guard let variable = variables[name], let text = environment[variable], !text.isEmpty else { return nil }
        guard let value = GoFlagSet.parseInt(text) else {
            throw PhaseFailure("\(variable)=\(text) is not a number", code: PhaseFailure.invalidArguments)
        }
        return value
    }

    /// A list flag's values, else its variable split at commas; empty values dropped.
    func list(_ name: String) -> [String] {
        var values = given.list(name)
        if values.isEmpty, let variable = variables[name], let text = environment[variable] {
            values = text.split(separator: ",").map(String.init)
        }
        return values.filter { !$0.isEmpty }
    }

    var layers: String { path("layers") ?? "/layers" }
    var app: String { path("app") ?? "/workspace" }
    var platform: String { path("platform") ?? "/platform" }
    var buildpacks: String { path("buildpacks") ?? "/cnb/buildpacks" }
    var group: String { path("group") ?? layers + "/group.toml" }
    var plan: String { path("plan") ?? layers + "/plan.toml" }
    var analyzed: String { path("analyzed") ?? layers + "/analyzed.toml" }
    var report: String { path("report") ?? layers + "/report.toml" }
    var projectMetadata: String { path("project-metadata") ?? layers + "/project-metadata.toml" }
    var runPath: String { path("run") ?? "/cnb/run.toml" }
    var stackPath: String { path("stack") ?? "/cnb/stack.toml" }
    var systemPath: String { path("system") ?? "/cnb/system.toml" }
    /// `<layers>/order.toml` when it exists (a platform's project order), else `/cnb/order.toml`.
    var order: String {
        if let given = path("order") { return given }
        let local = layers + "/order.toml"
        return access(local, F_OK) == 0 ? local : "/cnb/order.toml"
    }
    var logLevel: String { string("log-level").flatMap { $0.isEmpty ? nil : $0 } ?? "info" }
}

/// A phase's failure: one line, the Platform API's exit code.
struct PhaseFailure: Error {
    let message: String
    let code: Int32

    init(_ message: String, code: Int32) {
        self.message = message
        self.code = code
    }

    /// The reference's `CodeForInvalidArgs`.
    static let invalidArguments: Int32 = 3
    /// Go's `flag` package exits 2 on a malformed command line.
    static let badFlags: Int32 = 2
}
