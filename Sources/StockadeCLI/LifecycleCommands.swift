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

    @Option(name: .customLong("buildpack"), help: ArgumentHelp("A buildpack directory (with buildpack.toml); the given ones form one group, in order.", valueName: "dir"))
    var buildpacks: [String] = []

    @Option(help: ArgumentHelp("Buildpacks laid out as <id>/<version>/ (ids escaped), used with --order.", valueName: "dir"))
    var buildpacksDir: String?

    @Option(help: ArgumentHelp("An order.toml.", valueName: "file"))
    var order: String?

    @Option(help: ArgumentHelp("A builder.toml as pack builder create reads it (local buildpack uris only).", valueName: "file"))
    var builder: String?

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

    @Option(help: "How many bin/detect run at once (default: the number of cores).")
    var jobs: Int?

    @Option(help: ArgumentHelp("Kill any buildpack process after this many seconds (detection: 60 by default).", valueName: "seconds"))
    var timeout: Double?

    @Option(help: ArgumentHelp("The stack user and group.", valueName: "uid:gid"))
    var user: String = "1000:1000"

    @Option(help: ArgumentHelp("The build image's root filesystem, read-only (default: the host's system directories).", valueName: "dir"))
    var rootfs: String?

    @Option(help: ArgumentHelp("Seccomp profile for bin/detect.", valueName: "name|file"))
    var detectProfile: String = "strict"

    @Option(help: ArgumentHelp("Seccomp profile for bin/build.", valueName: "name|file"))
    var buildProfile: String = "default"

    func validate() throws {
        if buildpacks.isEmpty && builder == nil && order == nil && buildpacksDir == nil {
            throw ValidationError("Give buildpacks: --buildpack DIR, --builder FILE, or --buildpacks-dir DIR with --order FILE.")
        }
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
    }

    func stackUser() throws -> StackUser {
        let parts = user.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let uid = UInt32(parts[0]), let gid = UInt32(parts[1]) else {
            throw ValidationError("--user takes UID:GID, e.g. 1000:1000, not \(user).")
        }
        return StackUser(uid: uid, gid: gid)
    }
}

struct Detect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the buildpacks' bin/detect, each in its own sandbox, and write group.toml and plan.toml.")

    @OptionGroup var options: LifecycleOptions

    func run() throws {
        throw Failure(code: LifecycleRun(options: options, build: false).perform())
    }
}

struct Build: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Detect, then run the group's bin/build, each in its own sandbox, and write config/metadata.toml.")

    @OptionGroup var options: LifecycleOptions

    @Option(help: ArgumentHelp("host: buildpacks may download; none: hermetic (loopback only).", valueName: "host|none"))
    var network: String = "host"

    func validate() throws {
        guard network == "host" || network == "none" else { throw ValidationError("--network must be host or none.") }
    }

    func run() throws {
        throw Failure(code: LifecycleRun(options: options, build: true, network: network == "host").perform())
    }
}
