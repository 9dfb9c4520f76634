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

    func validate() throws {
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
}

struct Detect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect", abstract: "Run the buildpacks' bin/detect, each in its own sandbox, and write group.toml and plan.toml.")

    @OptionGroup var options: LifecycleOptions

    func run() throws {
        throw Failure(code: LifecycleRun(options: options, configuration: try Configuration.load(), build: false).perform())
    }
}

struct Build: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build", abstract: "Detect, then run the group's bin/build, each in its own sandbox, and write config/metadata.toml.")

    @OptionGroup var options: LifecycleOptions

    @Option(help: ArgumentHelp("host: buildpacks may download (default, unless the configuration forbids it); none: hermetic (loopback only).", valueName: "host|none"))
    var network: String?

    @OptionGroup var image: ImageOptions

    func validate() throws {
        if let network, network != "host" && network != "none" { throw ValidationError("--network must be host or none.") }
        try image.validate()
    }

    func run() throws {
        let configuration = try Configuration.load()
        let network = try configuration.network(network, default: .host)
        throw Failure(code: LifecycleRun(options: options, configuration: configuration, build: true,
                                         network: network == .host, image: image).perform())
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

    func validate() throws {
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
