import BuildpackSpec
import SystemCalls

/// Where things are as a buildpack sees them (the CNB platform layout).
enum PlatformPaths {
    static let workspace = "/workspace"
    static let layers = "/layers"
    static let platform = "/platform"
    static let detectPlan = "/cnb/detect"
    static let buildPlan = "/cnb/plan"
    static let planFile = "plan.toml"

    static func buildpack(_ descriptor: BuildpackTOML) -> String {
        "/cnb/buildpacks/\(BuildpackID.escape(descriptor.info.id))/\(descriptor.info.version)"
    }

    static func layers(of descriptor: BuildpackTOML) -> String {
        layers + "/" + BuildpackID.escape(descriptor.info.id)
    }
}

/// What every phase shares: the directories, the base environment, the target.
public struct LifecycleContext: Sendable {
    /// The app as the buildpacks get it (a private copy for build).
    public var appDirectory: String
    /// `<platform>` with `env/`: read-only to buildpacks.
    public var platformDirectory: String
    public var layersDirectory: String
    /// Private host directory for plan files; removed by the caller.
    public var scratchDirectory: String
    /// The lifecycle's own environment, already reduced to the allowlist.
    public var environment: Environment
    public var target: TargetPlatform
    /// Bound on every buildpack process.
    public var timeoutSeconds: Double?
    /// `<escaped id>/<layer>` launch layers the previous image holds: a buildpack may keep one
    /// without its directory, and export takes it from that image.
    public var reusableLaunchLayers: Set<String> = []

    public init(appDirectory: String, platformDirectory: String, layersDirectory: String, scratchDirectory: String,
                environment: Environment, target: TargetPlatform, timeoutSeconds: Double?) {
        self.appDirectory = appDirectory
        self.platformDirectory = platformDirectory
        self.layersDirectory = layersDirectory
        self.scratchDirectory = scratchDirectory
        self.environment = environment
        self.target = target
        self.timeoutSeconds = timeoutSeconds
    }

    /// The base environment from a process environment: the allowlist of
    /// digest §4 step 1, with the stack user's HOME and a PATH that exists in
    /// the build image.
    public static func baseEnvironment(from envp: [String], home: String) -> Environment {
        var environment = Environment(envp: envp).filtered(allowing: Environment.buildAllowlist)
        environment["HOME"] = home
        environment["PATH"] = SearchPath.default
        environment["HOSTNAME"] = nil
        return environment
    }
}
