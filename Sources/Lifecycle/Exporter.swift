import BuildpackSpec
import CrashSafety
import Glibc
import JSON
import OCI
import SystemCalls

/// The export phase (Platform API §7): the run image's layers, then one layer per launch layer of
/// each buildpack, the app, the launcher, `config/metadata.toml` and the process types, written
/// into an OCI image layout. The same inputs give the same image digest on any host.
public struct Exporter {
    public struct RunImage {
        public var layout: ImageLayout
        public var tag: String
        public var image: Image
        /// How the label names it: `DIR:TAG`.
        public var name: String

        public init(layout: ImageLayout, tag: String, image: Image, name: String) {
            self.layout = layout
            self.tag = tag
            self.image = image
            self.name = name
        }
    }

    public struct Previous {
        public var layout: ImageLayout
        public var image: Image
        public var metadata: LifecycleMetadata

        public init(layout: ImageLayout, image: Image, metadata: LifecycleMetadata) {
            self.layout = layout
            self.image = image
            self.metadata = metadata
        }
    }

    public var layersDirectory: String
    public var appDirectory: String
    public var group: [GroupElement]
    public var user: EntryOwner
    public var launcher: String
    public var runImage: RunImage?
    public var previous: Previous?
    /// Layers restored from the cache in this run: reused when their tree is unchanged.
    public var restored: RestoredLayers
    public var projectMetadata: JSONValue
    public var progress: any ProgressReporter
    public var platformAPI = "0.15"
    /// The platform's choice of default process (`-process-type`), over the buildpacks'.
    public var defaultProcessType: String?
    /// `SOURCE_DATE_EPOCH`, else the reference lifecycle's constant.
    public var created = "1980-01-01T00:00:01Z"

    /// `SOURCE_DATE_EPOCH` (seconds since 1970) as the config's `created`; nil when it is not a number.
    public static func timestamp(sourceDateEpoch: String) -> String? {
        guard var seconds = time_t(sourceDateEpoch), seconds >= 0 else { return nil }
        var parts = tm()
        guard gmtime_r(&seconds, &parts) != nil else { return nil }
        var buffer = [CChar](repeating: 0, count: 32)
        guard strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts) > 0 else { return nil }
        return String(cString: buffer)
    }

    /// `io.buildpacks.project.metadata` from project.toml, as pack gives it: the declared version
    /// and the source URL, or `{}`.
    public static func projectMetadata(version: String?, sourceURL: String?) -> JSONValue {
        guard version != nil || sourceURL != nil else { return .object([:]) }
        var metadata: [JSONObject.Member] = []
        if let sourceURL { metadata.append(.init(key: "url", value: .string(sourceURL))) }
        return .object(["source": .object([
            "type": .string("project"),
            "version": version.map { .object(["declared": .string($0)]) } ?? .object([:]),
            "metadata": .object(JSONObject(metadata)),
        ])])
    }

    public init(layersDirectory: String, appDirectory: String, group: [GroupElement], user: EntryOwner,
                launcher: String, runImage: RunImage?, previous: Previous?, restored: RestoredLayers,
                projectMetadata: JSONValue, progress: any ProgressReporter) {
        self.layersDirectory = layersDirectory
        self.appDirectory = appDirectory
        self.group = group
        self.user = user
        self.launcher = launcher
        self.runImage = runImage
        self.previous = previous
        self.restored = restored
        self.projectMetadata = projectMetadata
        self.progress = progress
    }

    public struct Result: Sendable {
        public var manifest: Descriptor
        public var image: Image
        public var metadata: LifecycleMetadata
    }

    /// The launcher and what the buildpacks built are this machine's binaries: a run image for
    /// another platform cannot run them.
    public static func check(_ run: RunImage) throws(LifecycleError) {
        let platform = run.image.config.platform
        guard platform.os == "linux", platform.architecture == ImageLayout.hostArchitecture else {
            throw fail("the run image \(run.name) is \(platform.description), but this build makes linux/\(ImageLayout.hostArchitecture) binaries")
        }
    }

    static func fail(_ message: String) -> LifecycleError {
        LifecycleError(message, exitCode: LifecycleError.Code.exportFailed)
    }

    /// Writes the image into `output` and tags it; the tag moves only once every blob is in.
    public func export(to output: ImageLayout, tag: String) throws(LifecycleError) -> Result {
        let layers = try Self.reading { () throws(SpecError) in try ConfinedDirectory(path: layersDirectory) }
        let metadata = try Self.reading { () throws(SpecError) in
            try MetadataTOML.read(from: layers, at: "config/" + MetadataTOML.defaultFileName)
        }
        if let chosen = defaultProcessType, !metadata.processes.contains(where: { $0.type == chosen }) {
            throw Self.fail("the default process type \(chosen) is not one the buildpacks defined (\(metadata.processes.map(\.type).sorted().joined(separator: ", ")))")
        }
        var image = try startImage(in: output)
        try addBuildpackLayers(from: layers, to: &image, in: output)
        try addSBOMs(from: layers, to: &image, in: output)
        try Self.writing { () throws(OCIError) in
            try addApp(slices: AppSlices(metadata.slices.map(\.paths)), to: &image, in: output)
            try addLauncher(to: &image, in: output)
            try addConfig(metadata, to: &image, in: output)
            try addProcessTypes(metadata, to: &image, in: output)
        }
        return try Self.writing { () throws(OCIError) in try finish(image, metadata: metadata, in: output, tag: tag) }
    }

    /// The image as its layers are added: the run image's config and layers, then each added
    /// layer with its diffID (a reused layer of the previous image may be compressed) and what it is.
    private struct Assembly {
        var config: ImageConfig
        var layers: [Descriptor]
        var label = LifecycleMetadata()
        var added: [(descriptor: Descriptor, diffID: Digest, what: String)] = []

        mutating func add(_ descriptor: Descriptor, diffID: Digest? = nil, _ what: String) {
            added.append((descriptor, diffID ?? descriptor.digest, what))
        }
    }

    /// An image error as the export's: the disk budget is 63; what a buildpack left (a FIFO, a bad
    /// name) is the export's failure; a broken input image or a full disk keeps its own code.
    static func failure(_ error: OCIError) -> LifecycleError {
        if error.kind == .overBudget {
            return LifecycleError("export: \(error)", exitCode: LifecycleError.Code.exportOverBudget)
        }
        var failure = fail("export: \(error)")
        if error.kind != .unsupportedContent { failure.cause = error }
        return failure
    }

    private static func writing<T>(_ body: () throws(OCIError) -> T) throws(LifecycleError) -> T {
        do { return try body() } catch { throw failure(error) }
    }

    private static func reading<T>(_ body: () throws(SpecError) -> T) throws(LifecycleError) -> T {
        do { return try body() } catch { throw fail("export: \(error)") }
    }

    /// The run image's config and layers (checked for this platform), else an empty linux config.
    private func startImage(in output: ImageLayout) throws(LifecycleError) -> Assembly {
        guard let run = runImage else {
            return Assembly(config: ImageConfig(platform: Platform(os: "linux", architecture: ImageLayout.hostArchitecture)),
                            layers: [])
        }
        try Self.check(run)
        var image = Assembly(config: run.image.config, layers: run.image.manifest.layers)
        try Self.writing { () throws(OCIError) in
            for layer in run.image.manifest.layers { try output.importBlob(layer, from: run.layout) }
        }
        image.label.runImageTopLayer = run.image.config.diffIDs.last
        image.label.runImageReference = run.image.descriptor.digest.description
        image.label.runImage = run.name
        return image
    }

    /// 1. Buildpack launch layers, by buildpack in group order and by name.
    private func addBuildpackLayers(from layers: ConfinedDirectory, to image: inout Assembly,
                                    in output: ImageLayout) throws(LifecycleError) {
        for element in group {
            let escaped = BuildpackID.escape(element.id)
            var recorded = LifecycleMetadata.Buildpack(id: element.id, version: element.version)
            let (directory, scan) = try Self.reading { () throws(SpecError) -> (ConfinedDirectory?, BuildpackLayers?) in
                guard try layers.kind(of: escaped) == .directory else { return (nil, nil) }
                let directory = try layers.subdirectory(escaped)
                return (directory, try BuildpackLayers.scan(directory, buildpack: element.description))
            }
            for layer in scan?.layers ?? [] {
                guard let types = layer.metadata, types.launch else { continue }
                let name = "\(element.id):\(layer.name)"
                let descriptor: Descriptor
                let diffID: Digest
                if layer.contentKind == .directory {
                    descriptor = try Self.writing { () throws(OCIError) in
                        try launchLayer(escaped: escaped, name: layer.name, shown: name, output: output)
                    }
                    diffID = descriptor.digest
                } else {
                    (descriptor, diffID) = try previousLayer(element: element, layer: layer.name, types: types, shown: name,
                                                             output: output)
                }
                recorded.layers[layer.name] = .init(digest: diffID, data: types.metadata, build: types.build,
                                                    launch: true, cache: types.cache)
                image.add(descriptor, diffID: diffID, "buildpack layer \(name)")
            }
            if let directory, let store = try Self.reading({ () throws(SpecError) in
                try StoreTOML.readIfPresent(from: directory, at: StoreTOML.defaultFileName)
            }) {
                recorded.store = store.metadata
            }
            image.label.buildpacks.append(recorded)
        }
    }

    /// 2. The buildpacks' SBOMs of what is launched.
    private func addSBOMs(from layers: ConfinedDirectory, to image: inout Assembly, in output: ImageLayout) throws(LifecycleError) {
        guard try Self.reading({ () throws(SpecError) in try Self.hasSBOMs("launch", in: layers) }) else { return }
        let descriptor = try Self.writing { () throws(OCIError) in try Self.archiveSBOMs("launch", in: layers, user: user, into: output) }
        image.label.sbom = descriptor.digest
        image.add(descriptor, "SBOM")
        progress.line("Adding SBOM layer (\(descriptor.digest.hex.prefix(12)))")
    }

    /// 3. The app: one layer per slice, then the rest.
    private func addApp(slices: AppSlices, to image: inout Assembly, in output: ImageLayout) throws(OCIError) {
        for index in 0...slices.count {
            let writer = try LayerWriter(layout: output)
            try writer.addTree(appDirectory, as: "workspace", owner: user, including: { slices.claims($0) == index })
            FaultPoint.exportLayer.reached()
            let descriptor = try writer.finish()
            image.label.app.append(descriptor.digest)
            image.add(descriptor, index < slices.count ? "app slice \(index + 1)" : "app")
        }
    }

    /// 4. The launcher.
    private func addLauncher(to image: inout Assembly, in output: ImageLayout) throws(OCIError) {
        let writer = try LayerWriter(layout: output)
        try writer.addDirectory("cnb", owner: .root)
        try writer.addDirectory("cnb/lifecycle", owner: .root)
        try writer.addHostFile(launcher, as: "cnb/lifecycle/launcher", mode: 0o755, owner: .root)
        let descriptor = try writer.finish()
        image.label.launcher = descriptor.digest
        image.add(descriptor, "launcher")
    }

    /// 5. config/metadata.toml, which the launcher reads.
    private func addConfig(_ metadata: MetadataTOML, to image: inout Assembly, in output: ImageLayout) throws(OCIError) {
        let writer = try LayerWriter(layout: output)
        try writer.addDirectory("layers", owner: .root)
        try writer.addDirectory("layers/config", owner: user)
        try writer.addFile("layers/config/metadata.toml", contents: Array(metadata.rendered().utf8), owner: user)
        let descriptor = try writer.finish()
        image.label.config = descriptor.digest
        image.add(descriptor, "config")
    }

    /// 6. /cnb/process/<type> → the launcher.
    private func addProcessTypes(_ metadata: MetadataTOML, to image: inout Assembly, in output: ImageLayout) throws(OCIError) {
        guard !metadata.processes.isEmpty else { return }
        let writer = try LayerWriter(layout: output)
        try writer.addDirectory("cnb", owner: .root)
        try writer.addDirectory("cnb/process", owner: .root)
        for process in metadata.processes {
            try writer.addSymlink("cnb/process/" + process.type, target: "/cnb/lifecycle/launcher", owner: .root)
        }
        let descriptor = try writer.finish()
        image.label.processTypes = descriptor.digest
        image.add(descriptor, "process types")
    }

    /// The config (history, environment, entrypoint, labels) and manifest; then the tag.
    private func finish(_ image: Assembly, metadata: MetadataTOML, in output: ImageLayout,
                        tag: String) throws(OCIError) -> Result {
        var config = image.config
        var manifestLayers = image.layers
        // History stays only where it can be whole: one entry per layer, as the spec asks.
        let historyIsWhole = config.history.count - config.history.filter(\.emptyLayer).count == config.diffIDs.count
        if !historyIsWhole { config.history = [] }
        for (descriptor, diffID, what) in image.added {
            manifestLayers.append(descriptor)
            config.diffIDs.append(diffID)
            if historyIsWhole { config.history.append(.init(created: created, createdBy: "stockade: \(what)")) }
        }

        let runPath = config.environmentValue("PATH") ?? SearchPath.default
        config.environment.removeAll { entry in
            ["PATH", "CNB_LAYERS_DIR", "CNB_APP_DIR", "CNB_PLATFORM_API", "CNB_DEPRECATION_MODE"].contains {
                entry.hasPrefix($0 + "=")
            }
        }
        config.environment += ["CNB_LAYERS_DIR=/layers", "CNB_APP_DIR=/workspace", "CNB_PLATFORM_API=\(platformAPI)",
                               "CNB_DEPRECATION_MODE=quiet", "PATH=/cnb/process:/cnb/lifecycle:\(runPath)"]
        config.user = "\(user.uid):\(user.gid)"
        config.workingDirectory = "/workspace"
        config.entrypoint = (defaultProcessType ?? metadata.buildpackDefaultProcessType).map { ["/cnb/process/" + $0] }
            ?? ["/cnb/lifecycle/launcher"]
        config.command = nil
        config.created = created
        for l in metadata.labels { config.labels[l.key] = l.value }
        config.labels[ImageLabel.lifecycleMetadata] = image.label.json.text
        config.labels[ImageLabel.buildMetadata] = buildMetadata(metadata).text
        config.labels[ImageLabel.projectMetadata] = projectMetadata.text

        let configBlob = try output.writeJSON(config.json, mediaType: MediaType.config)
        let manifest = ImageManifest(config: configBlob, layers: manifestLayers)
        let manifestBlob = try output.writeJSON(manifest.json, mediaType: MediaType.manifest)
        try output.setTag(tag, to: manifestBlob)
        return Result(manifest: manifestBlob, image: Image(descriptor: manifestBlob, manifest: manifest, config: config),
                      metadata: image.label)
    }

    /// A launch layer with its directory: taken from the cache by digest when it is the tree the
    /// cache restored, else archived.
    private func launchLayer(escaped: String, name: String, shown: String, output: ImageLayout) throws(OCIError) -> Descriptor {
        let host = layersDirectory + "/" + escaped + "/" + name
        if let reused = try restored.unchanged(escaped: escaped, layer: name, into: output) {
            progress.line("Reusing layer '\(shown)' (\(reused.digest.hex.prefix(12)))")
            return reused
        }
        let archived = Swift.Result { () throws(OCIError) in
            try Self.archiveLayer(host, escaped: escaped, name: name, user: user, into: output)
        }
        if case .failure(let error) = archived, error.kind == .overBudget {
            throw OCIError(.overBudget, "layer '\(shown)': \(error.message)")
        }
        let descriptor = try archived.get()
        progress.line("Adding layer '\(shown)' (\(descriptor.digest.hex.prefix(12)))")
        return descriptor
    }

    /// Whether the buildpacks left SBOMs of `kind` (launch for the image, cache for the cache).
    static func hasSBOMs(_ kind: String, in layers: ConfinedDirectory) throws(SpecError) -> Bool {
        try layers.kind(of: "sbom/" + kind) == .directory
    }

    /// The tar of `<layers>/sbom/<kind>`.
    static func archiveSBOMs(_ kind: String, in layers: ConfinedDirectory, user: EntryOwner,
                             into layout: ImageLayout) throws(OCIError) -> Descriptor {
        let writer = try LayerWriter(layout: layout)
        try writer.addDirectory("layers", owner: .root)
        try writer.addDirectory("layers/sbom", owner: .root)
        try writer.addTree(layers.path + "/sbom/" + kind, as: "layers/sbom/" + kind, owner: user)
        return try writer.finish()
    }

    /// The tar of one buildpack layer, with its parents: the same bytes in the image and the cache.
    /// With no layout, only the digest is computed.
    public static func archiveLayer(_ host: String, escaped: String, name: String, user: EntryOwner,
                                    into layout: ImageLayout?) throws(OCIError) -> Descriptor {
        let writer = try LayerWriter(layout: layout)
        try writer.addDirectory("layers", owner: .root)
        try writer.addDirectory("layers/" + escaped, owner: user)
        try writer.addTree(host, as: "layers/\(escaped)/\(name)", owner: user)
        return try writer.finish()
    }

    /// A launch layer the buildpack kept without its directory: the previous image's, by digest,
    /// with its diffID.
    private func previousLayer(element: GroupElement, layer: String, types: LayerTOML, shown: String,
                               output: ImageLayout) throws(LifecycleError) -> (Descriptor, Digest) {
        if types.cache {
            throw Self.fail("layer '\(shown)' is a cache layer with no directory; only launch layers can be reused from the previous image")
        }
        guard let previous, let recorded = previous.metadata.buildpack(element.id)?.layers[layer],
              let index = previous.image.config.diffIDs.firstIndex(of: recorded.digest) else {
            throw Self.fail("layer '\(shown)' has no directory, and no previous image has it to reuse")
        }
        let descriptor = previous.image.manifest.layers[index]
        try Self.writing { () throws(OCIError) in try output.importBlob(descriptor, from: previous.layout) }
        progress.line("Reusing layer '\(shown)' from the previous image (\(descriptor.digest.hex.prefix(12)))")
        return (descriptor, recorded.digest)
    }

    private func buildMetadata(_ metadata: MetadataTOML) -> JSONValue {
        let processes: [JSONValue] = metadata.processes.map { p in
            var m: [JSONObject.Member] = [
                .init(key: "type", value: .string(p.type)),
                .init(key: "command", value: .array(p.command.map(JSONValue.string))),
                .init(key: "args", value: .array(p.args.map(JSONValue.string))),
                .init(key: "direct", value: .bool(p.direct)),
                .init(key: "buildpackID", value: .string(p.buildpackID ?? "")),
            ]
            if let wd = p.workingDirectory { m.append(.init(key: "working-dir", value: .string(wd))) }
            return .object(JSONObject(m))
        }
        var members: [JSONObject.Member] = [
            .init(key: "buildpacks", value: .array(metadata.buildpacks.map { bp in
                var m: [JSONObject.Member] = [.init(key: "id", value: .string(bp.id)),
                                              .init(key: "version", value: .string(bp.version))]
                if let h = bp.homepage { m.append(.init(key: "homepage", value: .string(h))) }
                return .object(JSONObject(m))
            })),
            .init(key: "extensions", value: .array([])),
            .init(key: "launcher", value: .object(["version": .string("stockade"), "source": .object([:])])),
            .init(key: "processes", value: .array(processes)),
        ]
        if let d = metadata.buildpackDefaultProcessType {
            members.append(.init(key: "buildpack-default-process-type", value: .string(d)))
        }
        return .object(JSONObject(members))
    }
}

/// `[[slices]]` of launch.toml: globs relative to the app. A file goes to the first slice with a
/// pattern that matches it or one of its directories; the rest goes to the last app layer.
struct AppSlices {
    let patterns: [[String]]
    var count: Int { patterns.count }

    init(_ patterns: [[String]]) {
        self.patterns = patterns.map { $0.map { p in
            var p = Substring(p)
            while p.hasPrefix("./") { p = p.dropFirst(2) }
            return String(p)
        } }
    }

    /// The slice that takes `relative` (a non-directory's path), or `count` for the rest.
    func claims(_ relative: String) -> Int {
        let parts = relative.split(separator: "/")
        for (index, slice) in patterns.enumerated() {
            for pattern in slice {
                for end in 1...max(parts.count, 1) {
                    let prefix = parts.prefix(end).joined(separator: "/")
                    if fnmatch(pattern, prefix, FNM_PATHNAME) == 0 { return index }
                }
            }
        }
        return patterns.count
    }
}
