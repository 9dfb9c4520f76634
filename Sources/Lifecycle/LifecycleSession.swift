import BuildpackSpec
import Glibc
import JSON
import OCI

/// The reference lifecycle's phases over directories that exist, each callable alone as
/// `analyzer`, `detector`, `restorer`, `builder` and `exporter` run them, or all in order as
/// `creator` does (`BuildSession`). Buildpack code runs only through `executor`; each of its
/// processes is recorded in `runs` as it ends, also when the phase then fails. Every phase throws
/// a `LifecycleError` whose `exitStatus` is the status to end with.
///
/// The phases block the calling thread until their buildpacks are done (`runBlocking`): call them
/// from the main thread or a thread of one's own, never from async code, whose thread pool they
/// would wait on.
public struct LifecycleSession: Sendable {
    /// The directories (app, platform, layers, scratch), base environment, target, timeout.
    public var context: LifecycleContext
    /// The buildpacks the order and group name.
    public var store: BuildpackStore
    public var executor: any BuildpackExecutor
    public var progress: any ProgressReporter
    public var runs: any RunSink
    /// The stack user: owner of the layers in the image and the cache.
    public var owner: EntryOwner
    /// What buildpacks, restored layers, the image and the cache are charged to.
    public var disk: DiskAccount?
    /// How many `bin/detect` run at once.
    public var jobs: Int = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    /// Whether `bin/build` may use the network.
    public var network = true

    /// Bound on each `bin/detect` when `context.timeoutSeconds` gives none.
    public static let detectTimeoutSeconds: Double = 60

    public init(context: LifecycleContext, store: BuildpackStore, executor: any BuildpackExecutor,
                progress: any ProgressReporter, runs: any RunSink, owner: EntryOwner) {
        self.context = context
        self.store = store
        self.executor = executor
        self.progress = progress
        self.runs = runs
        self.owner = owner
    }

    /// What restore gives build and export.
    public struct Restoration: Sendable {
        /// Cached layers restored in this process, reused by digest at export when unchanged.
        public var restored = RestoredLayers()
        /// `<escaped id>/<layer>` launch layers of the previous image a buildpack may keep without
        /// their directory.
        public var reusableLaunchLayers: Set<String> = []

        public init(restored: RestoredLayers = RestoredLayers(), reusableLaunchLayers: Set<String> = []) {
            self.restored = restored
            self.reusableLaunchLayers = reusableLaunchLayers
        }
    }

    /// Analyze: the image a build replaces, as its lifecycle label describes it; nil when it has none
    /// (nothing to reuse).
    public static func analyze(previous image: Image, in layout: ImageLayout) -> Exporter.Previous? {
        LifecycleMetadata(label: image.config.labels[ImageLabel.lifecycleMetadata]).map {
            Exporter.Previous(layout: layout, image: image, metadata: $0)
        }
    }

    /// Detect: tries the order's groups until one passes; writes `group.toml` and `plan.toml` into
    /// the layers directory (unless not `writingPlanFiles`) and returns them.
    public func detect(order: [OrderGroup], writingPlanFiles: Bool = true) throws(LifecycleError) -> DetectedGroup {
        var detectContext = context
        detectContext.timeoutSeconds = context.timeoutSeconds ?? Self.detectTimeoutSeconds
        var detecting = Detector(context: detectContext, store: store, executor: executor, progress: progress,
                                 runs: runs, jobs: jobs)
        detecting.disk = disk
        detecting.writesPlanFiles = writingPlanFiles
        let detector = detecting
        return try runBlocking { await detector.detect(order: order) }
    }

    /// Restore: the previous image's launch layer metadata and the cache's layers, for `group`,
    /// into the layers directory. Nothing found there is trusted; what cannot be used is rebuilt.
    public func restore(group: [GroupElement], previous: Exporter.Previous?,
                        cache: LayerCache.Contents?) throws(LifecycleError) -> Restoration {
        let executor = self.executor
        var restorer = Restorer(layersDirectory: context.layersDirectory, scratchDirectory: context.scratchDirectory,
                                group: group, user: owner, progress: progress,
                                prepare: { (path) throws(ExecutionError) in try executor.makeWritable(path) })
        restorer.budget = disk
        var restoration = Restoration()
        restoration.reusableLaunchLayers = try restorer.restore(previous: previous, cache: cache,
                                                                restored: restoration.restored)
        return restoration
    }

    /// Build: runs the group's `bin/build` in order with the plan; writes and returns
    /// `<layers>/config/metadata.toml`.
    public func build(group: GroupTOML, plan: PlanTOML,
                      restoration: Restoration = Restoration()) throws(LifecycleError) -> MetadataTOML {
        var buildContext = context
        buildContext.reusableLaunchLayers = restoration.reusableLaunchLayers
        var configured = Builder(context: buildContext, store: store, executor: executor, progress: progress,
                                 runs: runs, network: network)
        configured.disk = disk
        configured.restored = restoration.restored
        let builder = configured
        return try runBlocking { await builder.build(group: group, plan: plan) }
    }

    /// What an image is made of besides the layers directory and the app.
    public struct ExportInputs {
        public var runImage: Exporter.RunImage?
        public var previous: Exporter.Previous?
        /// `io.buildpacks.project.metadata`.
        public var projectMetadata: JSONValue = .object([:])
        /// The static launcher's host path.
        public var launcher: String
        /// The config's `created` (`SOURCE_DATE_EPOCH`), else the reference lifecycle's constant.
        public var created: String?
        /// The platform's choice of default process (`-process-type`), over the buildpacks'.
        public var defaultProcessType: String?
        /// `CNB_PLATFORM_API` in the image's environment, when the platform named one.
        public var platformAPI: String?

        public init(runImage: Exporter.RunImage?, previous: Exporter.Previous?, projectMetadata: JSONValue = .object([:]),
                    launcher: String, created: String? = nil) {
            self.runImage = runImage
            self.previous = previous
            self.projectMetadata = projectMetadata
            self.launcher = launcher
            self.created = created
        }
    }

    /// Export: the built layers of `group` and the app as an image in `output`, tagged `tag` once
    /// every blob is in.
    public func export(group: [GroupElement], to output: ImageLayout, tag: String, _ inputs: ExportInputs,
                       restoration: Restoration = Restoration()) throws(LifecycleError) -> Exporter.Result {
        try makeOutputsReadable()
        return try exportReadable(group: group, to: output, tag: tag, inputs, restoration: restoration)
    }

    /// Saves the `cache = true` layers of `group` into `cache`.
    public func saveCache(_ cache: LayerCache, group: [GroupElement],
                          restoration: Restoration = Restoration()) throws(LifecycleError) {
        try makeOutputsReadable()
        try saveReadableCache(cache, group: group, restoration: restoration)
    }

    /// Lets the lifecycle read all the buildpacks wrote into the layers and the app.
    func makeOutputsReadable() throws(LifecycleError) {
        do {
            try executor.makeReadable([context.layersDirectory, context.appDirectory])
        } catch {
            throw LifecycleError(error.message, exitCode: error.exitCode)
        }
    }

    func exportReadable(group: [GroupElement], to output: ImageLayout, tag: String, _ inputs: ExportInputs,
                        restoration: Restoration) throws(LifecycleError) -> Exporter.Result {
        var exporter = Exporter(
            layersDirectory: context.layersDirectory, appDirectory: context.appDirectory, group: group, user: owner,
            launcher: inputs.launcher, runImage: inputs.runImage, previous: inputs.previous,
            restored: restoration.restored, projectMetadata: inputs.projectMetadata, progress: progress)
        if let created = inputs.created { exporter.created = created }
        exporter.defaultProcessType = inputs.defaultProcessType
        if let api = inputs.platformAPI { exporter.platformAPI = api }
        return try exporter.export(to: output, tag: tag)
    }

    func saveReadableCache(_ cache: LayerCache, group: [GroupElement], restoration: Restoration) throws(LifecycleError) {
        try cache.save(layersDirectory: context.layersDirectory, group: group, user: owner,
                       restored: restoration.restored, progress: progress)
    }
}
