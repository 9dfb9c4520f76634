import ArgumentParser
import BuildpackSpec
import Glibc
import Lifecycle
import Sandbox
import SandboxExecutor

/// The options of `stockade detect` and `stockade build`.
struct LifecycleOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The app's source directory.", valueName: "dir"))
    var path: String = "."

    @Option(name: .customLong("buildpack"), help: ArgumentHelp("A buildpack: a directory (with buildpack.toml), a .tgz or .cnb file, or a buildpackage image (oci:DIR[:TAG] or a registry reference); the given ones form one group, in order.", valueName: "buildpack"))
    var buildpacks: [String] = []

    @Option(help: ArgumentHelp("Buildpacks laid out as <id>/<version>/ (ids escaped), used with --order.", valueName: "dir"))
    var buildpacksDir: String?

    @Option(help: ArgumentHelp("An order.toml.", valueName: "file"))
    var order: String?

    @Option(help: ArgumentHelp("A builder image (oci:DIR[:TAG]), or a builder.toml as pack builder create reads it (local buildpack uris only).", valueName: "ref|file"))
    var builder: String?

    @Option(help: ArgumentHelp("Where builder images are unpacked, once, and shared (default: $XDG_CACHE_HOME/stockade/rootfs, else ~/.cache/stockade/rootfs).", valueName: "dir"))
    var store: String?

    @Option(name: .customLong("env"), help: ArgumentHelp("A platform environment variable for the buildpacks.", valueName: "key=value"))
    var environment: [String] = []

    @Option(help: ArgumentHelp("A file of KEY=VALUE lines for the platform environment.", valueName: "file"))
    var envFile: String?

    @Option(help: ArgumentHelp("An existing platform directory (with env/), instead of --env.", valueName: "dir"))
    var platform: String?

    @Option(help: ArgumentHelp("Where the layers go (kept); default: a temporary directory, removed at the end.", valueName: "dir"))
    var layers: String?

    @Flag(help: "Keep the temporary layers directory and print where it is.")
    var keepLayers = false

    @Option(help: ArgumentHelp("Write a JSON report of every buildpack process here.", valueName: "file"))
    var report: String?

    @Option(help: ArgumentHelp("Record what every buildpack executes, connects to, opens for writing and is denied, as JSON Lines.", valueName: "file"))
    var audit: String?

    @OptionGroup var auditCaps: AuditCapOptions

    @Option(help: "How many bin/detect run at once (default: the number of cores).")
    var jobs: Int?

    @Option(help: ArgumentHelp("Kill any buildpack process after this many seconds (detection: 60 by default).", valueName: "seconds"))
    var timeout: Double?

    @Option(help: ArgumentHelp("The stack user and group (default: the builder image's CNB_USER_ID:CNB_GROUP_ID, else 1000:1000).", valueName: "uid:gid"))
    var user: String?

    @Option(help: ArgumentHelp("The build image's root filesystem, read-only (default: the host's system directories).", valueName: "dir"))
    var rootfs: String?

    @Option(help: ArgumentHelp("Seccomp profile for bin/detect (default: the configured, else strict).", valueName: "name|file"))
    var detectProfile: String?

    @Option(help: ArgumentHelp("Seccomp profile for bin/build (default: the configured, else default).", valueName: "name|file"))
    var buildProfile: String?

    @OptionGroup var limits: LimitOptions

    @OptionGroup var disk: DiskOption

    @OptionGroup var namespaces: NamespaceOption

    /// The values parsed, which everything else works on.
    var request: LifecycleRequest {
        LifecycleRequest(path: path, buildpacks: buildpacks, buildpacksDir: buildpacksDir, order: order, builder: builder,
                         store: store, environment: environment, envFile: envFile, platform: platform, layers: layers,
                         keepLayers: keepLayers, report: report, audit: audit, auditCaps: auditCaps.request, jobs: jobs,
                         timeout: timeout, user: user, rootfs: rootfs, detectProfile: detectProfile,
                         buildProfile: buildProfile, limits: limits.request, disk: disk.request,
                         requireNamespaces: namespaces.requireNamespaces)
    }

    func validate() throws { try request.validateOwnValues() }
}

/// `LifecycleOptions` as plain values (see `SandboxRequest`).
struct LifecycleRequest: Equatable {
    var path = "."
    var buildpacks: [String] = []
    var buildpacksDir, order, builder, store: String?
    var environment: [String] = []
    var envFile, platform, layers: String?
    var keepLayers = false
    var report, audit: String?
    var auditCaps = AuditCaps()
    var jobs: Int?
    var timeout: Double?
    var user, rootfs, detectProfile, buildProfile: String?
    var limits = LimitRequest()
    var disk = DiskRequest()
    var requireNamespaces = false

    /// Every validation ArgumentParser makes of `LifecycleOptions` and its groups.
    func validate() throws {
        try validateOwnValues()
        try auditCaps.validate()
        try limits.validate()
        try disk.validate()
    }

    /// `LifecycleOptions.validate()`: ArgumentParser validates the groups itself.
    func validateOwnValues() throws {
        if order != nil && buildpacksDir == nil && builder == nil {
            throw ValidationError("--order needs --buildpacks-dir (or --builder) to find the buildpacks it names.")
        }
        if platform != nil && (!environment.isEmpty || envFile != nil) {
            throw ValidationError("--platform cannot be combined with --env or --env-file: put the variables in its env/.")
        }
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1.") }
        if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be a positive number of seconds.") }
        for entry in environment where !entry.contains("=") || entry.hasPrefix("=") {
            throw ValidationError("--env takes KEY=VALUE, not \(entry).")
        }
        _ = try stackUser()
        if let builder, case .image = try BuilderSource(builder), rootfs != nil {
            throw ValidationError("--rootfs and a builder image both name the build image: give one.")
        }
    }

    func stackUser() throws -> StackUser { try StackUser.option(user ?? "1000:1000") }

    /// `--builder` when it names a builder.toml.
    var builderFile: String? {
        guard let builder, case .file(let path) = try? BuilderSource(builder) else { return nil }
        return path
    }

    func requiresNamespaces(_ configuration: Configuration) -> Bool {
        requireNamespaces || configuration.requireNamespaces
    }
}

struct Detect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect", abstract: "Run the buildpacks' bin/detect, each in its own sandbox, and write group.toml and plan.toml.")

    @OptionGroup var options: LifecycleOptions

    func run() throws { try LifecycleCommand.detect(options.request).run() }
}

struct Build: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build", abstract: "Detect, then run the group's bin/build, each in its own sandbox, and write config/metadata.toml.")

    @OptionGroup var options: LifecycleOptions

    @Option(help: ArgumentHelp("host: buildpacks may download (default, unless the configuration forbids it); none: hermetic (loopback only).", valueName: "host|none"))
    var network: String?

    @OptionGroup var image: ImageOptions

    var request: BuildRequest { BuildRequest(lifecycle: options.request, network: network, image: image.request) }

    func validate() throws { try request.validateOwnValues() }

    func run() throws { try LifecycleCommand.build(request).run() }
}

/// `Build` as plain values (see `SandboxRequest`).
struct BuildRequest: Equatable {
    var lifecycle = LifecycleRequest()
    var network: String?
    var image = ImageRequest()

    func validate() throws {
        try lifecycle.validate()
        try validateOwnValues()
        try image.validateRegistries()
    }

    /// `Build.validate()`.
    func validateOwnValues() throws {
        if let network, network != "host" && network != "none" { throw ValidationError("--network must be host or none.") }
        try image.validateOwnValues()
    }
}

/// What `stockade detect` or `stockade build` runs, however it was parsed.
enum LifecycleCommand: Equatable {
    case detect(LifecycleRequest)
    case build(BuildRequest)

    func run() throws -> Never {
        switch self {
        case .detect(let request):
            throw Failure(code: LifecycleRun(options: request, configuration: try Configuration.load(), build: false).perform())
        case .build(let request):
            let configuration = try Configuration.load()
            let network = try configuration.network(request.network, default: .host)
            throw Failure(code: LifecycleRun(options: request.lifecycle, configuration: configuration, build: true,
                                             network: network == .host, image: request.image).perform())
        }
    }
}

/// Where `stockade build` puts the image, and what it builds on.
struct ImageOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Export the image into this OCI image layout (oci:DIR[:TAG]), or push it to this registry reference.", valueName: "image"))
    var output: String?

    @Option(help: ArgumentHelp("The run image the app goes on: a layout or a registry reference (default: none, the launcher only).", valueName: "image"))
    var runImage: String?

    @Option(help: ArgumentHelp("The image this build replaces, whose launch layers buildpacks may keep (default: a layout --output's, when it exists).", valueName: "image"))
    var previousImage: String?

    @Option(help: ArgumentHelp("Restore cache layers from here before the build and save them after.", valueName: "dir"))
    var cacheDir: String?

    @Option(help: ArgumentHelp("Keep the cache in this registry image instead: pulled before the build, pushed after it.", valueName: "ref"))
    var cacheImage: String?

    @OptionGroup var registry: RegistryFlags

    var request: ImageRequest {
        ImageRequest(output: output, runImage: runImage, previousImage: previousImage, cacheDir: cacheDir,
                     cacheImage: cacheImage, insecureRegistries: registry.insecureRegistries)
    }

    func validate() throws { try request.validateOwnValues() }
}

/// `ImageOptions` as plain values (see `SandboxRequest`).
struct ImageRequest: Equatable {
    var output, runImage, previousImage, cacheDir, cacheImage: String?
    var insecureRegistries: [String] = []

    /// `RegistryFlags.validate()`.
    func validateRegistries() throws { try RegistryFlags.validate(insecureRegistries) }

    /// `ImageOptions.validate()`.
    func validateOwnValues() throws {
        for reference in [output, runImage, previousImage].compactMap({ $0 }) { _ = try imageName(reference) }
        if let cacheImage {
            guard case .registry = try imageName(cacheImage) else { throw ValidationError("--cache-image takes a registry reference; a layout is --cache-dir.") }
            guard cacheDir == nil else { throw ValidationError("--cache-image and --cache-dir cannot be combined.") }
        }
        if output == nil && (runImage != nil || previousImage != nil) {
            throw ValidationError("--run-image and --previous-image need --output.")
        }
    }
}
