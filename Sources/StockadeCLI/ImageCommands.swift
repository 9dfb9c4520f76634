import ArgumentParser
import BuildpackSpec
import CrashSafety
import Glibc
import JSON
import Lifecycle
import OCI
import Registry
import Sandbox
import Seccomp
import SandboxExecutor

/// An image on disk: an OCI image layout and a tag in it. Registry images become one by being
/// pulled into the blob cache (`RegistryImages.pull`).
struct ImageReference: CustomStringConvertible {
    var directory: String
    var tag: String
    /// How people and labels name it: the registry reference it came from, else `DIR:TAG`.
    var name: String

    init(directory: String, tag: String, name: String? = nil) {
        self.directory = directory
        self.tag = tag
        self.name = name ?? directory + ":" + tag
    }

    /// A layout argument; a registry reference is refused where only a layout will do.
    init(_ text: String) throws {
        guard case .layout(let directory, let tag) = try imageName(text) else {
            throw ValidationError("\(text) names a registry image; here give a layout: oci:DIR[:TAG].")
        }
        self.init(directory: directory, tag: tag)
    }

    /// Any image argument made local: a layout as it is, a registry image pulled (only what the
    /// blob cache lacks; `layers: false` brings manifest and config only).
    static func local(_ text: String, registry: RegistryImages, budget: DiskAccount?, layers: Bool = true) throws -> ImageReference {
        switch try imageName(text) {
        case .layout(let directory, let tag): ImageReference(directory: directory, tag: tag)
        case .registry(let reference): try registry.pull(reference, budget: budget, layers: layers)
        }
    }

    var description: String { name }

    func open(budget: DiskAccount? = nil) throws -> (ImageLayout, Image) {
        let layout = try ImageLayout.open(directory, budget: budget)
        return (layout, try layout.image(tag: tag))
    }

    /// The image a build into `output` replaces: `explicit`, else the output's own tag when it
    /// exists. An image without the lifecycle label gives nothing to reuse.
    static func previous(explicit: String?, output: ImageReference, layout: ImageLayout, registry: RegistryImages,
                         budget: DiskAccount?) throws -> Exporter.Previous? {
        let reference: ImageReference
        if let explicit {
            reference = try ImageReference.local(explicit, registry: registry, budget: budget)
        } else if try layout.tags().contains(output.tag) {
            reference = output
        } else {
            return nil
        }
        let (previousLayout, found) = try reference.open()
        return LifecycleSession.analyze(previous: found, in: previousLayout)
    }

    func runImage() throws -> Exporter.RunImage {
        let (layout, image) = try open()
        return Exporter.RunImage(layout: layout, tag: tag, image: image, name: description)
    }
}

/// Runs `body`; image, lifecycle and sandbox errors become one line on stderr and their exit code.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let failure as Failure {
        throw failure
    } catch let error as OCIError {
        complain(error.message)
        throw Failure(code: LifecycleError.exitStatus(of: error))
    } catch let error as LifecycleError {
        complain(error.message)
        throw Failure(code: error.exitStatus)
    } catch let error as SandboxError {
        complain(error.description)
        throw Failure(code: ExitStatus.of(error))
    } catch let error as RegistryError {
        complain(error.message)
        throw Failure(code: ExitStatus.of(error))
    } catch let error as ValidationError {
        complain(error.message)
        throw Failure(code: ExitStatus.usage)
    } catch let error as JournalError {
        complain(error.description)
        throw Failure(code: ExitStatus.system)
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an exported image's process in the sandbox: its root filesystem read-only, /tmp writable.")

    @Argument(help: ArgumentHelp("The image: an OCI image layout and a tag, or a registry reference (pulled first).", valueName: "image"))
    var image: String

    @Option(help: ArgumentHelp("The process type to run (default: the image's default process).", valueName: "type"))
    var process: String?

    @Option(help: ArgumentHelp("none: loopback only (default); host: the host's network, unless the configuration forbids it.", valueName: "none|host"))
    var network: String?

    @Option(name: .customLong("env"), help: ArgumentHelp("An environment variable for the process.", valueName: "key=value"))
    var environment: [String] = []

    @Option(help: ArgumentHelp("Seccomp profile (default: the configured, else default).", valueName: "name|file"))
    var profile: String?

    @OptionGroup var limits: LimitOptions

    @OptionGroup var disk: DiskOption

    @OptionGroup var namespaces: NamespaceOption

    @OptionGroup var registry: RegistryFlags

    @Argument(parsing: .postTerminator, help: "Arguments for the process, after `--`.")
    var arguments: [String] = []

    func validate() throws {
        if let network, network != "none" && network != "host" { throw ValidationError("--network must be none or host.") }
        _ = try imageName(image)
        if let process, process.isEmpty || process.contains("/") { throw ValidationError("\(process) is not a process type.") }
    }

    func run() throws {
        var code: Int32 = 0
        let configuration = try Configuration.load()
        let network = try configuration.network(network, default: .none)
        let (limits, enforcement) = try self.limits.resolve(configuration)
        try reportingErrors {
            try SHA256.checkAvailable()
            let account = try disk.account(writingTo: [HostInputs.scratchBase] + (try registryCache(image)),
                                           configuration: configuration)
            let reference = try ImageReference.local(image, registry: RegistryImages(registry), budget: account)
            let (layout, image) = try reference.open()
            let user = try Self.user(image.config.user)
            try CleanupJournal.startJanitor(for: user)
            defer { CleanupJournal.finished() }
            let rootfs = try HostInputs.makeScratch()
            defer { try? StackUserFiles.removeTree(rootfs, for: user) }
            let mapping = try IdentityMapping.forCurrentProcess(user)
            var extractor = LayerExtractor(budget: account)
            if geteuid() == 0 {
                // Files keep their owners as the sandbox's user namespace sees them.
                extractor.owners = { uid, gid in
                    guard let u = mapping.hostUID(uid), let g = mapping.hostGID(gid) else { return nil }
                    return (u, g)
                }
            }
            let root = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            defer { close(root) }
            for layer in image.manifest.layers {
                try extractor.extract(layer, from: layout, into: root, rootPath: rootfs)
            }
            var launch: ImageLaunch
            do {
                launch = try ImageLaunch(image.config, process: process, arguments: arguments, home: user.home)
            } catch let problem as ImageLaunch.Problem {
                throw ValidationError("\(reference) \(problem.message)")
            }
            launch.environment += environment
            // Writable where the image's user writes: /tmp here; the sandbox gives the user a private home.
            let mounts: [MountRequest] = [.tmpfs(destination: "/tmp")]
            let plan = SandboxPlan(command: launch.command, environment: launch.environment, user: user,
                                   network: network, rootfs: rootfs, mounts: mounts,
                                   workingDirectory: launch.workingDirectory, limits: limits,
                                   syscallFilter: try ProfileSelection.filter(
                                       named: configuration.profile(profile, for: "run", default: "default")),
                                   enforcement: enforcement, requireNamespaces: namespaces.required(configuration))
            let outcome = try Sandbox.run(plan, forwardSignals: true, audit: nil)
            if let limit = outcome.limitReached { LimitOptions.report(limit, of: "the process") }
            code = outcome.termination.exitCode
        }
        throw Failure(code: code)
    }

    /// The image config's `User` as numbers; names would need the image's /etc/passwd.
    static func user(_ text: String?) throws -> StackUser {
        guard let text, !text.isEmpty else { return StackUser(uid: 0, gid: 0) }
        guard let user = StackUser(parsing: text, bareUID: true) else {
            throw ValidationError("the image's user \(text) is not UID[:GID]; only numeric users can run")
        }
        return user
    }
}

struct Rebase: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put an exported image's app layers onto a new run image, without rebuilding.")

    @Argument(help: ArgumentHelp("The app image: a layout, or a registry reference (rebased in the registry).", valueName: "image"))
    var image: String

    @Option(help: ArgumentHelp("The new run image: an OCI image layout and a tag, or a registry reference.", valueName: "image"))
    var runImage: String

    @OptionGroup var disk: DiskOption

    @OptionGroup var registry: RegistryFlags

    func validate() throws {
        _ = try imageName(image)
        _ = try imageName(runImage)
    }

    func run() throws {
        try reportingErrors {
            try SHA256.checkAvailable()
            let registry = RegistryImages(self.registry)
            let progress = ConsoleProgress(console: Console(fd: STDOUT_FILENO))
            switch try imageName(image) {
            case .layout(let directory, let tag):
                let reference = ImageReference(directory: directory, tag: tag)
                let budget = try disk.account(writingTo: [directory] + (try registryCache(runImage)), configuration: try Configuration.load())
                let (layout, app) = try reference.open(budget: budget)
                let run = try ImageReference.local(runImage, registry: registry, budget: budget).runImage()
                let rebased = try Rebaser.rebase(app, in: layout, tag: reference.tag, onto: run, progress: progress)
                progress.line("\(reference) \(rebased.descriptor.digest)")
            case .registry(let target):
                // In the registry: manifests and configs come down, a new config and manifest go
                // up, the run image's layers are mounted from its repository. No layer moves
                // through here when the registry has them all.
                let budget = try disk.account(writingTo: try registryCache(image), configuration: try Configuration.load())
                let app = try registry.pull(target, budget: budget, layers: false)
                let run = try ImageReference.local(runImage, registry: registry, budget: budget, layers: false).runImage()
                let (layout, found) = try app.open(budget: budget)
                let tag = "rebased-" + found.descriptor.digest.hex
                _ = try Rebaser.rebase(found, in: layout, tag: tag, onto: run, progress: progress, layersElsewhere: true)
                try registry.push(layout, tag: tag, to: target, mountFrom: registryReference(runImage).map { [$0] } ?? [])
            }
        }
    }
}


struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export an already built layers directory and app into an OCI image layout (the exporter phase alone).")

    @Option(help: ArgumentHelp("The layers directory a build left (with config/metadata.toml).", valueName: "dir"))
    var layers: String

    @Option(help: ArgumentHelp("The app directory as the build left it.", valueName: "dir"))
    var app: String

    @Option(help: ArgumentHelp("The stack user and group that own the layers in the image.", valueName: "uid:gid"))
    var user: String = "1000:1000"

    @OptionGroup var image: ImageOptions

    @OptionGroup var disk: DiskOption

    func validate() throws {
        guard image.output != nil else { throw ValidationError("Give --output IMAGE.") }
        try image.validate()
        guard image.cacheDir == nil else { throw ValidationError("--cache-dir belongs to stockade build.") }
    }

    func run() throws {
        try reportingErrors {
            try SHA256.checkAvailable()
            let owner = try StackUser.option(user)
            let layersPath = try HostInputs.directory(layers, what: "layers directory")
            let appPath = try HostInputs.directory(app, what: "app directory")
            let metadata: MetadataTOML
            do {
                metadata = try MetadataTOML.read(from: try ConfinedDirectory(path: layersPath),
                                                 at: "config/" + MetadataTOML.defaultFileName)
            } catch {
                throw LifecycleError("\(error)", exitCode: LifecycleError.Code.exportFailed)
            }
            let outputDirectory: String
            if case .layout(let directory, _) = try imageName(image.output!) { outputDirectory = directory } else { outputDirectory = HostInputs.scratchBase }
            let pulls = try [image.output, image.runImage, image.previousImage].flatMap(registryCache)
            let budget = try disk.account(writingTo: [outputDirectory] + pulls, configuration: try Configuration.load())
            let registry = RegistryImages(image.registry)
            let output = try OutputImage.open(image.output!, budget: budget)
            defer { output.removeTemporary() }
            let layout = output.layout
            let previous = try ImageReference.previous(explicit: image.previousImage,
                                                       output: ImageReference(directory: layout.path, tag: output.tag),
                                                       layout: layout, registry: registry, budget: budget)
            let progress = ConsoleProgress(console: Console(fd: STDOUT_FILENO))
            var exporter = Exporter(
                layersDirectory: layersPath, appDirectory: appPath, group: metadata.buildpacks,
                user: EntryOwner(uid: owner.uid, gid: owner.gid), launcher: try HostInputs.launcherPath(),
                runImage: try image.runImage.map { try ImageReference.local($0, registry: registry, budget: budget).runImage() },
                previous: previous,
                restored: RestoredLayers(), projectMetadata: .object([:]), progress: progress)
            if let created = try HostInputs.sourceDateEpoch() { exporter.created = created }
            let result = try exporter.export(to: layout, tag: output.tag)
            progress.line("Image \(output.name) \(result.manifest.digest)")
            try output.publish(registry, runImage: image.runImage)
        }
    }
}
