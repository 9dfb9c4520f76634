import BuildpackSpec
import Glibc
import OCI
import SystemCalls
import SystemPackage

/// `stockade build`, `stockade detect` and `creator`: from what the user names (an app, buildpacks,
/// a platform environment, images) to group and plan, layers, an image and a cache, in a scratch
/// directory of its own. `init` reads the inputs and resolves the order; `run` drives a
/// `LifecycleSession` through the phases; `close` removes the scratch directory.
public struct BuildSession {
    public struct Inputs: Sendable {
        /// The app's source directory.
        public var app: String
        public var sources: BuildpackSources
        /// An existing platform directory (with `env/`); else one is made from `environment`.
        public var platform: String?
        /// KEY=VALUE for `<platform>/env`, after the project's build env and `environmentFile`.
        public var environment: [String] = []
        /// A file of KEY=VALUE lines for `<platform>/env`.
        public var environmentFile: String?
        /// Where the layers go, kept (new or empty); else a directory in the scratch space.
        public var layers: String?
        /// Keep the scratch space's layers and say where they are.
        public var keepLayers = false
        /// Bound on every buildpack process (detection: `LifecycleSession.detectTimeoutSeconds` without it).
        public var timeoutSeconds: Double?
        public var jobs: Int?
        /// The build image's root, for the target's distribution.
        public var rootfs: String?
        public var network = true
        /// The stack user: the layers' owner in images, and HOME.
        public var owner: EntryOwner
        public var home: String

        public init(app: String, sources: BuildpackSources, owner: EntryOwner, home: String) {
            self.app = app
            self.sources = sources
            self.owner = owner
            self.home = home
        }
    }

    /// The images a build reads and writes, opened before anything is built.
    public struct Images {
        public var output: (layout: ImageLayout, tag: String)?
        public var run: Exporter.RunImage?
        public var previous: Exporter.Previous?
        public var cache: LayerCache?
        /// How the output is named in the progress line, when not by its layout (a registry reference).
        public var outputName: String?

        public init(output: (layout: ImageLayout, tag: String)? = nil, run: Exporter.RunImage? = nil,
                    previous: Exporter.Previous? = nil, cache: LayerCache? = nil) {
            self.output = output
            self.run = run
            self.previous = previous
            self.cache = cache
        }
    }

    public let inputs: Inputs
    /// The private directory this session works in (plan files, the workspace copy, the platform).
    public let scratch: String
    public let app: String
    public let order: [OrderGroup]
    public let project: ProjectTOML?
    public let executor: any BuildpackExecutor
    public let progress: any ProgressReporter
    public let runs: any RunSink
    private let store: BuildpackStore

    /// Reads the app's project.toml and the buildpacks, makes the scratch directory, resolves the order.
    public init(_ inputs: Inputs, executor: any BuildpackExecutor, progress: any ProgressReporter,
                runs: any RunSink) throws(LifecycleError) {
        self.inputs = inputs
        self.executor = executor
        self.progress = progress
        self.runs = runs
        app = try HostInputs.directory(inputs.app, what: "app directory")
        var (store, builder) = try inputs.sources.load()
        project = try HostInputs.document(ProjectTOML.self, in: app, name: ProjectTOML.defaultFileName)
        scratch = try HostInputs.makeScratch()
        do throws(LifecycleError) {
            do { try executor.makeReachable(scratch) } catch { throw LifecycleError(error.message, exitCode: error.exitCode) }
            order = try inputs.sources.order(store: &store, builder: builder, project: project, app: app, scratch: scratch)
            try store.resolve(order: order)
        } catch {
            try? executor.remove(scratch)
            throw error
        }
        self.store = store
    }

    /// What the buildpacks found do not follow in the spec (an ID with `_`), to warn about.
    public var warnings: [String] { store.warnings }

    /// Removes the scratch directory, unless the run `passed` and keeps its layers there
    /// (--keep-layers without --layers; with --layers it holds only scratch).
    public func close(passed: Bool) throws(ExecutionError) {
        if !(passed && keepsLayersInScratch) { try executor.remove(scratch) }
    }

    private var keepsLayersInScratch: Bool { inputs.keepLayers && inputs.layers == nil }

    /// Detects; with `build`, restores, builds, exports into `images.output` and saves the cache.
    public func run(build: Bool, images: Images, disk: DiskAccount?) throws(LifecycleError) {
        let session = try prepare(build: build, images: images, disk: disk)
        let layers = session.context.layersDirectory
        let kept = inputs.keepLayers || inputs.layers != nil
        progress.line("===> DETECTING")
        let detected = try session.detect(order: order)
        if kept { progress.line("group.toml and plan.toml written to \(layers)") }
        if build {
            try create(session, detected: detected, images: images)
            if kept { progress.line("config/metadata.toml written to \(layers)/config") }
        }
        if keepsLayersInScratch { progress.line("layers kept in \(layers)") }
    }

    /// The platform and layers directories, and for a build the app's private copy.
    private func prepare(build: Bool, images: Images, disk: DiskAccount?) throws(LifecycleError) -> LifecycleSession {
        let platform: String
        if let given = inputs.platform {
            platform = try HostInputs.directory(given, what: "platform directory")
        } else {
            platform = try makePlatform()
        }
        let layers = try makeLayers()
        var context = LifecycleContext(
            appDirectory: app, platformDirectory: platform, layersDirectory: layers, scratchDirectory: scratch,
            environment: LifecycleContext.baseEnvironment(from: HostInputs.processEnvironment(), home: inputs.home),
            target: HostInputs.target(rootfs: inputs.rootfs), timeoutSeconds: inputs.timeoutSeconds)
        if build {
            let workspace = scratch + "/workspace"
            mkdir(workspace, 0o755)
            // An image layout or cache kept inside the app would otherwise end up in the next image.
            let outputs = [images.output?.layout.path, images.cache?.path].compactMap { $0 }
            try WorkspaceCopy(include: project?.include ?? [], exclude: project?.exclude ?? [],
                              skipping: Set(outputs.compactMap { HostInputs.relative($0, to: app) }), budget: disk)
                .copy(from: app, to: workspace)
            do { try executor.makeWritable(workspace) } catch {
                throw LifecycleError(error.message, exitCode: error.exitCode)
            }
            context.appDirectory = workspace
        }
        var session = LifecycleSession(context: context, store: store, executor: executor, progress: progress,
                                       runs: runs, owner: inputs.owner)
        session.disk = disk
        session.network = inputs.network
        if let jobs = inputs.jobs { session.jobs = jobs }
        return session
    }

    /// Restore, build, export and cache: `creator` after detect.
    private func create(_ session: LifecycleSession, detected: DetectedGroup, images: Images) throws(LifecycleError) {
        let group = detected.group.group
        var restoration = LifecycleSession.Restoration()
        if images.previous != nil || images.cache != nil {
            progress.line("===> RESTORING")
            restoration = try session.restore(group: group, previous: images.previous,
                                              cache: images.cache.flatMap { $0.load(progress: progress) })
        }
        progress.line("===> BUILDING")
        let metadata = try session.build(group: detected.group, plan: detected.plan, restoration: restoration)
        progress.line("===> PROCESSES")
        for process in metadata.processes.sorted(by: { $0.type < $1.type }) {
            let isDefault = process.type == metadata.buildpackDefaultProcessType
            let command = (process.command + process.args).joined(separator: " ")
            progress.line("  \(process.type)\(isDefault ? " (default)" : ""): \(command)")
        }
        if images.output != nil || images.cache != nil { try session.makeOutputsReadable() }
        if let output = images.output {
            progress.line("===> EXPORTING")
            let inputs = LifecycleSession.ExportInputs(
                runImage: images.run, previous: images.previous,
                projectMetadata: Exporter.projectMetadata(version: project?.version, sourceURL: project?.sourceURL),
                launcher: try HostInputs.launcherPath(), created: try HostInputs.sourceDateEpoch())
            let exported = try session.exportReadable(group: group, to: output.layout, tag: output.tag, inputs,
                                                      restoration: restoration)
            progress.line("Image \(images.outputName ?? "\(output.layout.path):\(output.tag)") \(exported.manifest.digest)")
        }
        if let cache = images.cache {
            try session.saveReadableCache(cache, group: group, restoration: restoration)
        }
    }

    /// `<scratch>/platform/env` from the project's build env, the env file and the variables, in that order.
    private func makePlatform() throws(LifecycleError) -> String {
        var variables: [(String, String)] = project?.buildEnv.map { ($0.name, $0.value) } ?? []
        if let envFile = inputs.environmentFile {
            guard let text = HostText.read(envFile) else {
                throw LifecycleError("cannot read --env-file \(envFile)", exitCode: LifecycleError.Code.missingPath)
            }
            for line in text.split(separator: "\n") where !line.hasPrefix("#") && line.contains("=") {
                let eq = line.firstIndex(of: "=")!
                variables.append((String(line[..<eq]), String(line[line.index(after: eq)...])))
            }
        }
        for entry in inputs.environment {
            let eq = entry.firstIndex(of: "=")!
            variables.append((String(entry[..<eq]), String(entry[entry.index(after: eq)...])))
        }
        for (name, _) in variables where !EnvironmentVariableName.isUsable(name) || name.contains("/") {
            throw LifecycleError("\(name) cannot be an environment variable name", exitCode: LifecycleError.Code.usage)
        }
        do {
            let dir = try ConfinedDirectory(path: scratch)
            try dir.createDirectory("platform/env")
            let env = try dir.subdirectory("platform/env")
            for (name, value) in variables { try env.writeFile(name, contents: Array(value.utf8)) }
        } catch {
            throw LifecycleError("\(error)", exitCode: LifecycleError.Code.system)
        }
        return scratch + "/platform"
    }

    /// The layers directory: the one given (new or empty), else `<scratch>/layers`.
    private func makeLayers() throws(LifecycleError) -> String {
        guard let given = inputs.layers else {
            mkdir(scratch + "/layers", 0o755)
            return scratch + "/layers"
        }
        if mkdir(given, 0o755) != 0 && errno != EEXIST {
            throw LifecycleError("cannot create the layers directory \(given): \(Errno.current)",
                                 exitCode: LifecycleError.Code.missingPath)
        }
        let path = try HostInputs.directory(given, what: "layers directory")
        let empty: Bool
        do { empty = try ConfinedDirectory(path: path).entries().isEmpty } catch {
            throw LifecycleError("\(error)", exitCode: LifecycleError.Code.system)
        }
        guard empty else {
            throw LifecycleError("the layers directory \(path) is not empty; give an empty or new directory",
                                 exitCode: LifecycleError.Code.usage)
        }
        return path
    }
}
