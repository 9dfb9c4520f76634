import ArgumentParser
import BuildpackSpec
import CrashSafety
import Glibc
import JSON
import Lifecycle
import OCI
import Sandbox
import SandboxExecutor
import SystemCalls

/// What `--builder` names: a builder.toml, or a builder image (a layout or a registry reference).
enum BuilderSource {
    case file(String)
    case image(String)

    init(_ text: String) throws {
        var st = stat()
        if !text.hasPrefix("oci:") && (text.hasSuffix(".toml") || stat(text, &st) == 0 && st.st_mode & S_IFMT == S_IFREG) {
            self = .file(text)
            return
        }
        if case .layout(let directory, _) = try imageName(text), access(directory + "/oci-layout", F_OK) != 0 {
            throw ValidationError("--builder \(text) is neither a builder.toml nor an OCI image layout (oci:DIR[:TAG]).")
        }
        self = .image(text)
    }
}

/// Builder images for `stockade build`: unpacked into the store once, then read.
enum BuilderImages {
    static func open(_ options: LifecycleRequest, registry: RegistryImages?, configuration: Configuration,
                     progress: ConsoleProgress) throws -> BuilderImage? {
        guard let given = options.builder, case .image(let text) = try BuilderSource(given) else { return nil }
        let storePath = try storePath(options.store)
        let reference: ImageReference
        switch try imageName(text) {
        case .layout(let directory, let tag):
            reference = ImageReference(directory: directory, tag: tag)
        case .registry:
            // Pulled into the blob cache (only what it lacks), then unpacked like any layout.
            let budget = try options.disk.account(writingTo: [try RegistryImages.cacheDirectory()], configuration: configuration)
            reference = try ImageReference.local(text, registry: registry ?? RegistryImages(insecureHosts: []), budget: budget)
        }
        let (layout, image) = try reference.open()
        try BuilderImage.checkLabels(of: image.config, name: reference.description)
        try SHA256.checkAvailable()
        let budget = try options.disk.account(writingTo: [storePath], configuration: configuration)
        let tree = try RootfsStore(path: storePath).rootfs(of: image, in: layout, budget: budget, progress: progress.line)
        progress.line("Builder \(reference) \(image.descriptor.digest): " + (tree.unpacked ? "unpacked into " : "already unpacked in ") + tree.path)
        return try BuilderImage(config: image.config, root: tree.path, name: reference.description)
    }

    static func storePath(_ given: String?) throws -> String {
        if let given { return absolutePath(given) }
        guard let path = RootfsStore.standardPath(home: getenv("HOME").map { String(cString: $0) }) else {
            throw ValidationError("no place for the builder store: set XDG_CACHE_HOME or HOME, or give --store DIR.")
        }
        return path
    }

    /// The first of the builder's run images, or of their mirrors, that is in a registry or is an
    /// image layout here.
    static func runImage(of builder: BuilderImage) throws -> String? {
        guard let first = builder.runImages.first else { return nil }
        for candidate in [first.image] + first.mirrors {
            if case .registry = try? imageName(candidate) { return candidate }
            guard let reference = try? ImageReference(candidate),
                  (try? ImageLayout.open(reference.directory).image(tag: reference.tag)) != nil else { continue }
            return candidate
        }
        throw LifecycleError("the builder's run image \(first.image)"
                             + (first.mirrors.isEmpty ? "" : " (mirrors: \(first.mirrors.joined(separator: ", ")))")
                             + " is not an OCI image layout here; give --run-image", exitCode: ExitStatus.missingPath)
    }
}

extension BuilderImage {
    var stackUser: StackUser? { user.map { StackUser(uid: $0.uid, gid: $0.gid) } }
}

/// Buildpacks named by uri in builder.toml and package.toml, gathered into one store.
struct ModuleSources {
    /// The config file's directory: relative uris and `oci:` paths start there.
    let base: String
    /// Private scratch space for unpacked archives and packages.
    let scratch: String
    /// Brings a registry image into the blob cache, as `--builder REF` does.
    let pull: (RegistryReference) throws -> ImageReference
    var store = BuildpackStore()
    private var count = 0

    init(base: String, scratch: String, pull: @escaping (RegistryReference) throws -> ImageReference) {
        self.base = base
        self.scratch = scratch
        self.pull = pull
    }

    /// Adds what `uri` holds; returns its entries (a package holds several).
    mutating func add(_ uri: String, in file: String) throws -> [BuildpackStore.Entry] {
        if uri.hasPrefix("urn:cnb:registry:") || uri.hasPrefix("urn:") {
            throw LifecycleError("\(file): buildpack uri \(uri): buildpack registries (urn:cnb:registry:) are not supported; give a directory, a .tgz or .cnb file, or an image",
                                 exitCode: LifecycleError.Code.invalidArguments)
        }
        if uri.hasPrefix("http://") || uri.hasPrefix("https://") {
            throw LifecycleError("\(file): buildpack uri \(uri): downloads are not supported; give a directory, a .tgz or .cnb file, or an image",
                                 exitCode: LifecycleError.Code.invalidArguments)
        }
        if uri.hasPrefix("docker://") { return try addImage(uri, uri: uri, in: file) }
        if uri.hasPrefix("oci:") { return try addImage(uri, uri: uri, in: file) }
        let local = absolute(uri.hasPrefix("file://") ? String(uri.dropFirst(7)) : uri)
        var st = stat()
        guard stat(local, &st) == 0 else {
            // Not a path: an image reference, as pack reads a plain name.
            if uri.contains("://") { throw LifecycleError("\(file): buildpack uri \(uri) is not supported", exitCode: LifecycleError.Code.invalidArguments) }
            return try addImage(uri, uri: uri, in: file)
        }
        if st.st_mode & S_IFMT == S_IFDIR {
            if access(local + "/oci-layout", F_OK) == 0 { return try addImage(local, uri: uri, in: file) }
            return [try store.add(directory: local)]
        }
        let root = try unpack(local)
        if local.hasSuffix(".cnb") {
            let layout = try ImageLayout.open(root)
            return try addPackage(layout.soleImage(), layout: layout, name: uri)
        }
        return [try store.add(directory: root)]  // a .tgz or .tar: the buildpack directory's contents
    }

    private func absolute(_ path: String) -> String { path.hasPrefix("/") ? path : base + "/" + path }

    /// An archive unpacked strictly (no device, no path through a link) into private scratch space.
    private mutating func unpack(_ path: String) throws -> String {
        count += 1
        let root = scratch + "/module-\(count)"
        guard mkdir(root, 0o755) == 0 else { throw OCIError.system("mkdir", root) }
        let fd = Glibc.open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw OCIError.system("open", root) }
        defer { close(fd) }
        var extractor = LayerExtractor(budget: DiskAccount(DiskBudget.standard(for: scratch)))
        extractor.strict = true
        try extractor.extract(archive: path, into: fd, rootPath: root)
        return root
    }

    private mutating func addImage(_ text: String, uri: String, in file: String) throws -> [BuildpackStore.Entry] {
        let reference: ImageReference
        switch try imageName(text) {
        case .registry(let name):
            reference = try pull(name)
        case .layout(let directory, let tag):
            reference = ImageReference(directory: absolute(directory), tag: tag)
            guard access(reference.directory + "/oci-layout", F_OK) == 0 else {
                throw LifecycleError("\(file): buildpack \(uri) is neither an OCI image layout here nor a registry reference",
                                     exitCode: ExitStatus.missingPath)
            }
        }
        let (layout, image) = try reference.open()
        return try addPackage(image, layout: layout, name: uri)
    }

    /// A buildpackage: its layers unpacked strictly, the buildpacks its layers label names added.
    private mutating func addPackage(_ image: Image, layout: ImageLayout, name: String) throws -> [BuildpackStore.Entry] {
        guard let layers = try BuilderLabel.json(image.config.labels, BuilderLabel.buildpackLayers, in: name)?.objectValue else {
            throw LifecycleError("\(name) is not a buildpackage or builder: it has no \(BuilderLabel.buildpackLayers) label",
                                 exitCode: LifecycleError.Code.invalidArguments)
        }
        count += 1
        let root = scratch + "/module-\(count)"
        guard mkdir(root, 0o755) == 0 else { throw OCIError.system("mkdir", root) }
        let fd = Glibc.open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw OCIError.system("open", root) }
        defer { close(fd) }
        var extractor = LayerExtractor(budget: DiskAccount(DiskBudget.standard(for: scratch)))
        extractor.strict = true
        for layer in image.manifest.layers { try extractor.extract(layer, from: layout, into: fd, rootPath: root) }
        var entries: [BuildpackStore.Entry] = []
        for member in layers.members {
            for version in member.value.objectValue?.members ?? [] {
                guard (try? BuildpackID.validate(member.key, file: name, keyPath: nil)) != nil,
                      (try? BuildpackVersion.validate(version.key)) != nil else {
                    throw LifecycleError("\(name): \(BuilderLabel.buildpackLayers) names \(member.key)@\(version.key), which is no buildpack id and version",
                                         exitCode: LifecycleError.Code.invalidArguments)
                }
                entries.append(try store.add(directory: "\(root)/cnb/buildpacks/\(BuildpackID.escape(member.key))/\(version.key)"))
            }
        }
        return entries
    }
}

/// The image `builder create` or `buildpack package` writes: a layout (made when missing), or a
/// temporary layout pushed to the registry the reference names, its digest printed.
private func writeOutput(_ text: String, configuration: Configuration, disk: DiskRequest, registry: RegistryImages,
                         write: (ImageLayout, String) throws -> Descriptor) throws -> (name: String, digest: Digest) {
    var directories = [HostInputs.scratchBase]
    if case .layout(let directory, _) = try imageName(text) { directories = [directory] }
    let output = try OutputImage.open(text, budget: try disk.account(writingTo: directories, configuration: configuration))
    defer { output.removeTemporary() }
    let manifest = try write(output.layout, output.tag)
    try output.publish(registry, runImage: nil)
    return (output.name, manifest.digest)
}

/// A pull into the blob cache within the disk budget, for registry images a config file names.
func pulling(_ registry: RegistryImages, configuration: Configuration, disk: DiskRequest) -> (RegistryReference) throws -> ImageReference {
    { reference in
        let budget = try disk.account(writingTo: [try RegistryImages.cacheDirectory()], configuration: configuration)
        return try registry.pull(reference, budget: budget)
    }
}

/// The stockade binary itself: a builder's lifecycle.
private func selfPath() throws -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { throw LifecycleError("cannot find the stockade binary", exitCode: ExitStatus.system) }
    return String(cString: buffer)
}

extension StackUser {
    /// The invoker's own ids: what these commands make, they make as themselves.
    static var invoker: StackUser { StackUser(uid: getuid(), gid: getgid()) }
}

/// Removes a command's scratch directory, then tells the janitor the run cleaned up after itself.
/// A failure is ignored: cleanup on the way out cannot change the command's outcome.
func removeScratch(_ scratch: String) {
    try? StackUserFiles.removeTree(scratch, for: .invoker)
    CleanupJournal.finished()
}

struct BuilderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "builder", abstract: "Make builder images.", subcommands: [BuilderCreate.self])
}

struct BuilderCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Make a builder image from a builder.toml, as pack builder create does, with this stockade as its lifecycle.")

    @Argument(help: ArgumentHelp("The image to write: an OCI image layout and a tag, or a registry reference (pushed).",
                                 valueName: "oci:dir[:tag]|ref"))
    var image: String

    @Option(help: ArgumentHelp("The builder.toml.", valueName: "file"))
    var config: String

    @OptionGroup var disk: DiskOption

    @OptionGroup var registry: RegistryFlags

    func validate() throws { _ = try imageName(image) }

    func run() throws {
        try reportingErrors {
            try SHA256.checkAvailable()
            let configuration = try Configuration.load()
            let file = try HostInputs.file(config)
            let builder = try HostInputs.document(BuilderTOML.self, in: file.directory, name: file.name, required: true)!
            let progress = ConsoleProgress(console: Console(fd: STDOUT_FILENO))
            let scratch = try HostInputs.makeScratch()
            defer { removeScratch(scratch) }
            let registryImages = RegistryImages(registry)
            let pull = pulling(registryImages, configuration: configuration, disk: disk.request)
            var sources = ModuleSources(base: file.directory, scratch: scratch, pull: pull)
            var entries: [BuildpackStore.Entry] = []
            for reference in builder.buildpacks {
                guard let uri = reference.uri else {
                    throw LifecycleError("\(config): a [[buildpacks]] entry without uri (\(reference.id ?? "?")) cannot be found",
                                         exitCode: LifecycleError.Code.invalidArguments)
                }
                for entry in try sources.add(uri, in: config)
                where !entries.contains(where: { $0.descriptor.reference == entry.descriptor.reference }) {
                    entries.append(entry)
                }
            }
            if !builder.extensions.isEmpty {
                throw LifecycleError("\(config): image extensions ([[extensions]]) are not supported", exitCode: LifecycleError.Code.invalidArguments)
            }
            guard let buildName = builder.buildImage ?? builder.stack?.buildImage else {
                throw LifecycleError("\(config): no build image: set [build] image (or [stack] build-image)",
                                     exitCode: LifecycleError.Code.invalidArguments)
            }
            let buildReference = switch try imageName(localImage(buildName, base: file.directory)) {
            case .layout(let directory, let tag): ImageReference(directory: directory, tag: tag)
            case .registry(let reference): try pull(reference)
            }
            let build = try buildReference.open()
            var runImages = builder.runImages.map { RunImageReference(image: $0.image, mirrors: $0.mirrors) }
            if runImages.isEmpty, let stack = builder.stack, let run = stack.runImage {
                runImages = [RunImageReference(image: run, mirrors: stack.runImageMirrors)]
            }
            runImages = runImages.map {
                RunImageReference(image: localImage($0.image, base: file.directory), mirrors: $0.mirrors.map { localImage($0, base: file.directory) })
            }
            let order = try BuilderCreation.resolve(builder.order, buildpacks: entries)
            let creation = BuilderCreation(
                description: builder.description ?? "", buildImage: build, buildpacks: entries, order: order,
                runImages: runImages, stackID: builder.stack?.id ?? build.1.config.labels[BuilderLabel.stackID],
                buildConfigEnv: builder.buildEnv, lifecycle: try selfPath(), launcher: try HostInputs.launcherPath())
            if build.1.config.environmentValue("CNB_USER_ID") == nil {
                complain("the build image \(buildName) sets no CNB_USER_ID/CNB_GROUP_ID: the builder's stack user is 1000:1000", level: "warning")
            }
            let output = try writeOutput(image, configuration: configuration, disk: disk.request, registry: registryImages) {
                try creation.write(to: $0, tag: $1)
            }
            for entry in entries.sorted(by: { $0.descriptor.reference < $1.descriptor.reference }) {
                progress.line("  buildpack \(entry.descriptor.reference)")
            }
            progress.line("Builder \(output.name) \(output.digest)")
        }
    }

    /// `oci:` paths relative to the config file made absolute; other names as given.
    private func localImage(_ name: String, base: String) -> String {
        guard name.hasPrefix("oci:") else { return name }
        let path = String(name.dropFirst(4))
        return path.hasPrefix("/") ? name : "oci:" + base + "/" + path
    }
}

struct BuildpackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "buildpack", abstract: "Package buildpacks.", subcommands: [BuildpackPackage.self])
}

struct BuildpackPackage: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "package",
        abstract: "Package a buildpack and its dependencies as an image or a .cnb file, as pack buildpack package does.")

    @Argument(help: ArgumentHelp("An image (OCI image layout and tag) or, with --format file, a .cnb file.", valueName: "ref|file"))
    var name: String

    @Option(help: ArgumentHelp("The package.toml (default: the buildpack in the current directory).", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("image (default) or file (an OCI layout in a tar, .cnb).", valueName: "image|file"))
    var format: String = "image"

    @OptionGroup var disk: DiskOption

    @OptionGroup var registry: RegistryFlags

    func validate() throws {
        guard format == "image" || format == "file" else { throw ValidationError("--format must be image or file.") }
        if format == "image" { _ = try imageName(name) }
    }

    func run() throws {
        try reportingErrors {
            try SHA256.checkAvailable()
            let configuration = try Configuration.load()
            let progress = ConsoleProgress(console: Console(fd: STDOUT_FILENO))
            let base: String
            var buildpackURI = "."
            var dependencies: [ModuleReference] = []
            if let config {
                let file = try HostInputs.file(config)
                let package = try HostInputs.document(PackageTOML.self, in: file.directory, name: file.name, required: true)!
                base = file.directory
                buildpackURI = package.buildpackURI
                dependencies = package.dependencies
            } else {
                base = (try? currentDirectory()) ?? "."
            }
            let scratch = try HostInputs.makeScratch()
            defer { removeScratch(scratch) }
            let registryImages = RegistryImages(registry)
            var sources = ModuleSources(base: base, scratch: scratch,
                                        pull: pulling(registryImages, configuration: configuration, disk: disk.request))
            let what = config ?? "package.toml"
            let main = try sources.add(buildpackURI, in: what)
            guard main.count == 1 else {
                throw LifecycleError("\(what): [buildpack] uri \(buildpackURI) holds \(main.count) buildpacks, not one",
                                     exitCode: LifecycleError.Code.invalidArguments)
            }
            var others: [BuildpackStore.Entry] = []
            for dependency in dependencies { others += try sources.add(dependency.uri ?? "", in: what) }
            let packaging = BuildpackPackaging(main: main[0], dependencies: others)
            if format == "image" {
                let output = try writeOutput(name, configuration: configuration, disk: disk.request, registry: registryImages) {
                    try packaging.write(to: $0, tag: $1)
                }
                progress.line("Buildpackage \(output.name) \(output.digest)")
            } else {
                try writeFile(packaging, configuration: configuration)
                progress.line("Buildpackage \(name)")
            }
        }
    }

    /// A `.cnb`: the package as an OCI layout, archived (tar) next to its destination and
    /// renamed over it whole.
    private func writeFile(_ packaging: BuildpackPackaging, configuration: Configuration) throws {
        let target = absolutePath(name)
        let directory = String(target[..<target.lastIndex(of: "/")!])
        let work = try CleanupJournal.makeTemporaryDirectory(in: directory.isEmpty ? "/" : directory)
        defer { try? StackUserFiles.removeTree(work, for: .invoker) }
        let budget = try disk.account(writingTo: [directory], configuration: configuration)
        let layout = try ImageLayout.openOrCreate(work + "/layout", budget: budget)
        _ = try packaging.write(to: layout, tag: "latest")
        let archive = try ImageLayout.openOrCreate(work + "/archive", budget: budget)
        let writer = try LayerWriter(layout: archive)
        try writer.addTree(work + "/layout", as: ".", owner: .root)
        let blob = try writer.finish()
        guard rename(work + "/archive/" + blob.digest.blobPath, target) == 0 else { throw OCIError.system("rename", target) }
    }
}
