import ArgumentParser
import Glibc
import OCI
import Lifecycle
import Registry
import SystemCalls
import SystemPackage

/// `--insecure-registry`, for every command that may name a registry image.
struct RegistryFlags: ParsableArguments {
    @Option(name: .customLong("insecure-registry"),
            help: ArgumentHelp("A registry (host[:port]) spoken to over plain HTTP or TLS without verification; repeatable.", valueName: "host"))
    var insecureRegistries: [String] = []

    func validate() throws { try Self.validate(insecureRegistries) }

    static func validate(_ insecureRegistries: [String]) throws {
        for host in insecureRegistries where !RegistryReference.isValidHost(host) {
            throw ValidationError("--insecure-registry takes host[:port], not \(host).")
        }
    }
}

/// An image argument: a layout path or a registry reference, one line when it is neither.
func imageName(_ text: String) throws -> ImageName {
    do {
        return try ImageName(parsing: text)
    } catch {
        throw ValidationError("\(error.message).")
    }
}

/// Registry images for one command: one client per host, and the blob cache pulls go into.
final class RegistryImages {
    private let options: RegistryOptions
    private var clients: [String: RegistryClient] = [:]
    private let progress = ConsoleTransferProgress(fd: STDOUT_FILENO)

    convenience init(_ flags: RegistryFlags) {
        self.init(insecureHosts: flags.insecureRegistries)
    }

    /// `detect` has no image options: a default-constructed option group cannot be read.
    init(insecureHosts: [String]) {
        options = RegistryOptions.fromEnvironment(insecureHosts: Set(insecureHosts))
    }

    /// For commands without registry flags (`detect`): a `RegistryFlags()` made outside parsing
    /// cannot be read (ArgumentParser stops the process), so its values are given here.
    init(insecureHosts: Set<String>) {
        options = RegistryOptions.fromEnvironment(insecureHosts: insecureHosts)
    }

    func client(_ host: String) -> RegistryClient {
        if let client = clients[host] { return client }
        let client = RegistryClient(host: host, options: options)
        client.progress = progress
        clients[host] = client
        return client
    }

    /// `$XDG_CACHE_HOME/stockade/blobs` (else `~/.cache/...`): an OCI layout whose blobs are the
    /// content-addressed store of every pulled image, written within the command's disk budget.
    static func cacheDirectory() throws -> String {
        let base: String
        if let xdg = getenv("XDG_CACHE_HOME").map({ String(cString: $0) }), xdg.hasPrefix("/") {
            base = xdg
        } else if let home = getenv("HOME").map({ String(cString: $0) }), home.hasPrefix("/") {
            base = home + "/.cache"
        } else {
            throw ValidationError("neither XDG_CACHE_HOME nor HOME is set to an absolute path: pulled images have nowhere to go")
        }
        for directory in [base, base + "/stockade"] where mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw OCIError.system("mkdir", directory)
        }
        return base + "/stockade/blobs"
    }

    /// Where pulls go instead of the shared blob cache (the phases: a private directory, since the
    /// user they become may have no home of its own).
    var blobCache: String?

    func cache(budget: DiskAccount?) throws -> ImageLayout {
        try ImageLayout.openOrCreate(try blobCache ?? Self.cacheDirectory(), budget: budget)
    }

    /// Pulls `reference` into the blob cache (only what it lacks) and tags it there by digest.
    /// `layers: false` brings the manifest and config only.
    func pull(_ reference: RegistryReference, budget: DiskAccount?, layers: Bool = true) throws -> ImageReference {
        let cache = try self.cache(budget: budget)
        let image = try client(reference.host).pull(reference, into: cache, layers: layers)
        let tag = "pulled-" + image.descriptor.digest.hex
        try cache.setTag(tag, to: image.descriptor)
        return ImageReference(directory: cache.path, tag: tag, name: reference.description)
    }

    /// Pushes the image tagged `tag` in `layout` as `reference`; prints and returns its digest.
    @discardableResult
    func push(_ layout: ImageLayout, tag: String, to reference: RegistryReference, mountFrom: [RegistryReference] = []) throws -> Digest {
        let image = try layout.image(tag: tag)
        let sources = mountFrom.filter { $0.host == reference.host }.map(\.repository)
        let digest = try client(reference.host).push(image, from: layout, to: reference, mountFrom: sources)
        let line = Array("Pushed \(reference.with(tag: reference.tag).description)@\(digest)\n".utf8)
        _ = line.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
        return digest
    }

    /// A directory for an image on its way to a registry, removed by the caller.
    static func temporaryLayout() throws -> String {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((base + "/stockade-push-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw OCIError.system("mkdtemp", base) }
        return String(cString: made)
    }
}

extension ExitStatus {
    /// Registry failures, each its own code (the sysexits range has none of these).
    static func of(_ error: RegistryError) -> Int32 {
        switch error.kind {
        case .unknownHost: 68  // EX_NOHOST
        case .unreachable: unavailable
        case .tls: 80
        case .authRefused: 81
        case .notFound: 82
        case .digestMismatch: 83
        case .unsupportedMediaType: 84
        case .tooLarge: 85
        case .protocolViolation: 76  // EX_PROTOCOL
        case .unavailable: unavailable
        case .io: ioError
        }
    }
}

/// The registry reference `text` names, if it names one.
func registryReference(_ text: String?) -> RegistryReference? {
    guard let text, case .registry(let reference)? = try? imageName(text) else { return nil }
    return reference
}

/// The blob cache's directory when `text` names a registry image (for the disk budget's free-space look-up).
func registryCache(_ text: String?) throws -> [String] {
    guard let text, case .registry = try imageName(text) else { return [] }
    return [try RegistryImages.cacheDirectory()]
}

/// Where an export goes: a layout, or a temporary layout pushed to a registry afterwards.
struct OutputImage {
    let layout: ImageLayout
    let tag: String
    let registry: RegistryReference?
    let temporary: String?

    static func open(_ text: String, budget: DiskAccount) throws -> OutputImage {
        switch try imageName(text) {
        case .layout(let directory, let tag):
            return OutputImage(layout: try ImageLayout.openOrCreate(directory, budget: budget), tag: tag, registry: nil, temporary: nil)
        case .registry(let reference):
            let directory = try RegistryImages.temporaryLayout()
            do {
                return OutputImage(layout: try ImageLayout.openOrCreate(directory, budget: budget), tag: "latest",
                                   registry: reference, temporary: directory)
            } catch {
                try? removeTree(atPath: directory)
                throw error
            }
        }
    }

    var name: String { registry?.description ?? layout.path + ":" + tag }

    /// Pushes what was exported when the output is a registry (layers the registry has are not
    /// sent again; the run image's are mounted from its repository on the same registry).
    func publish(_ registryImages: RegistryImages, runImage: String?) throws {
        guard let registry else { return }
        try registryImages.push(layout, tag: tag, to: registry, mountFrom: registryReference(runImage).map { [$0] } ?? [])
    }

    func removeTemporary() {
        if let temporary { try? removeTree(atPath: temporary) }
    }
}

/// `stockade copy SRC DST`: an image from a layout to a registry, a registry to a layout, or
/// either to the other of its kind, as `skopeo copy` does.
struct Copy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy", abstract: "Copy an image between OCI layouts and registries (pull, push), checking every blob's digest.")

    @Argument(help: ArgumentHelp("The image to copy: a layout or a registry reference.", valueName: "source"))
    var source: String

    @Argument(help: ArgumentHelp("Where it goes: a layout (created if missing or empty) or a registry reference.", valueName: "destination"))
    var destination: String

    @OptionGroup var disk: DiskOption

    @OptionGroup var registry: RegistryFlags

    func validate() throws {
        _ = try imageName(source)
        _ = try imageName(destination)
    }

    func run() throws {
        try reportingErrors {
            try SHA256.checkAvailable()
            let registry = RegistryImages(self.registry)
            let target = try imageName(destination)
            var directories = try registryCache(source)
            if case .layout(let directory, _) = target { directories.append(directory) }
            let budget = try disk.account(writingTo: directories, configuration: try Configuration.load())
            switch (try imageName(source), target) {
            case (.registry(let from), .layout(let directory, let tag)):
                // Straight into the destination: only the blobs it lacks are fetched.
                let layout = try ImageLayout.openOrCreate(directory, budget: budget)
                let image = try registry.client(from.host).pull(from, into: layout)
                try layout.setTag(tag, to: image.descriptor)
                print("Copied \(from) to \(directory):\(tag) \(image.descriptor.digest)")
            case (let from, .registry(let to)):
                let local = try ImageReference.local(source, registry: registry, budget: budget)
                let layout = try ImageLayout.open(local.directory, budget: budget)
                let mounts = if case .registry(let reference) = from, reference.host == to.host { [reference] } else { [RegistryReference]() }
                try registry.push(layout, tag: local.tag, to: to, mountFrom: mounts)
            case (.layout(let fromDirectory, let fromTag), .layout(let directory, let tag)):
                let sourceLayout = try ImageLayout.open(fromDirectory)
                let image = try sourceLayout.image(tag: fromTag)
                let layout = try ImageLayout.openOrCreate(directory, budget: budget)
                for blob in [image.descriptor, image.manifest.config] + image.manifest.layers {
                    try layout.importBlob(blob, from: sourceLayout)
                }
                try layout.setTag(tag, to: image.descriptor)
                print("Copied \(fromDirectory):\(fromTag) to \(directory):\(tag) \(image.descriptor.digest)")
            }
        }
    }
}

/// `--cache-image`: the cache kept in a registry image. Pulled (digests checked) into a temporary
/// layout that serves as `--cache-dir` with all its rules, pushed back after the build.
struct CacheImage {
    let reference: RegistryReference
    let directory: String

    static func pull(_ reference: RegistryReference, registry: RegistryImages, budget: DiskAccount) throws -> CacheImage {
        let directory = try RegistryImages.temporaryLayout()
        do {
            let layout = try ImageLayout.openOrCreate(directory, budget: budget)
            do {
                let image = try registry.client(reference.host).pull(reference, into: layout)
                try layout.setTag(LayerCache.tag, to: image.descriptor)
            } catch let error as RegistryError where error.kind == .notFound {
                // The first build with this cache image: it starts empty.
            }
            return CacheImage(reference: reference, directory: directory)
        } catch {
            try? removeTree(atPath: directory)
            throw error
        }
    }

    func push(_ registry: RegistryImages) throws {
        let layout = try ImageLayout.open(directory)
        guard try layout.tags().contains(LayerCache.tag) else { return }
        try registry.push(layout, tag: LayerCache.tag, to: reference)
    }
}
