import BuildpackSpec
import CrashSafety
import Glibc
import ArgumentParser
import JSON
import Lifecycle
import OCI
import Registry
import Sandbox
import SandboxExecutor
import TerminalText

/// Wires the options into a lifecycle run: buildpacks, order, directories,
/// executor; prints the phases; cleans up. Returns the exit code.
struct LifecycleRun {
    let options: LifecycleOptions
    let configuration: Configuration
    let build: Bool
    var network = true
    var image: ImageOptions?

    static let detectTimeout: Double = 60

    func perform() -> Int32 {
        let console = Console(fd: STDOUT_FILENO)
        let progress = ConsoleProgress(console: console)
        var scratch: String?
        var executor: SandboxExecutor?
        var keep = false
        defer {
            if let scratch, !keep {
                do { try executor?.remove(scratch) } catch { complain("\(error)", level: "warning") }
            }
            CleanupJournal.finished()
        }
        var runs: [BuildpackRun] = []
        var code: Int32
        var auditLog: AuditLog?
        do {
            let user = try options.stackUser()
            let detectProfile = configuration.profile(options.detectProfile, for: "detect", default: "strict")
            let buildProfile = configuration.profile(options.buildProfile, for: "build", default: "default")
            try CleanupJournal.startJanitor(for: user)
            var audit: SandboxExecutor.Audit?
            if let path = options.audit {
                let log = try AuditTrail.open(path, caps: options.auditCaps, configuration: configuration)
                auditLog = log
                let handoff = Sandbox.handoffDescriptor(ResourceLimits())
                audit = SandboxExecutor.Audit(detect: try ProfileSelection.auditFilters(named: detectProfile, handoff: handoff),
                                              build: try ProfileSelection.auditFilters(named: buildProfile, handoff: handoff),
                                              sink: log, newSandboxID: AuditTrail.newSandboxID)
            }
            let (limits, enforcement) = try options.limits.resolve(configuration)
            let sandbox = SandboxExecutor(user: user, rootfs: options.rootfs,
                                          detectFilter: try ProfileSelection.filter(named: detectProfile),
                                          buildFilter: try ProfileSelection.filter(named: buildProfile),
                                          limits: limits, enforcement: enforcement, console: console, audit: audit)
            executor = sandbox
            let app = try Self.directory(options.path, what: "app directory")
            var store = BuildpackStore()
            for directory in options.buildpacks { try store.add(directory: directory) }
            if let dir = options.buildpacksDir { try store.add(buildpacksDirectory: dir) }
            let builder = try options.builder.map { (path) throws -> BuilderTOML in try Self.loadBuilder(path, into: &store) }
            let project = try Self.read(ProjectTOML.self, in: app, name: ProjectTOML.defaultFileName)
            let work = try Self.makeScratch()
            scratch = work
            let order = try self.order(store: &store, builder: builder, project: project, app: app, scratch: work)
            try store.resolve(order: order)
            for warning in store.warnings { complain(warning, level: "warning") }

            let outputDirectory = try image?.output.map { (text) throws -> String in
                if case .layout(let directory, _) = try imageName(text) { directory } else { Self.scratchBase }
            }
            let pulls = try [image?.output, image?.runImage, image?.previousImage].flatMap(registryCache)
            let disk = try options.disk.account(writingTo: [work, outputDirectory, image?.cacheDir].compactMap { $0 } + pulls,
                                            configuration: configuration)
            let registryImages = RegistryImages(insecureHosts: image?.registry.insecureRegistries ?? [])
            let images = try openImages(budget: disk, registry: registryImages)
            defer {
                images.output?.removeTemporary()
                if let directory = images.cacheImage?.directory { RegistryImages.removeTree(directory) }
            }
            let platform = try options.platform.map { try Self.directory($0, what: "platform directory") }
                ?? (try makePlatform(in: work, project: project))
            let layers = try makeLayers(in: work)
            var context = LifecycleContext(
                appDirectory: app, platformDirectory: platform, layersDirectory: layers,
                scratchDirectory: work,
                environment: LifecycleContext.baseEnvironment(from: Self.processEnvironment(), home: user.home),
                target: Self.target(rootfs: options.rootfs),
                timeoutSeconds: options.timeout ?? (build ? nil : Self.detectTimeout))
            var appForBuildpacks = app
            if build {
                appForBuildpacks = work + "/workspace"
                mkdir(appForBuildpacks, 0o755)
                // An image layout or cache kept inside the app would otherwise end up in the next image.
                let outputs = [images.output?.layout.path, image?.cacheDir].compactMap { $0 }
                try WorkspaceCopy(include: project?.include ?? [], exclude: project?.exclude ?? [],
                                  skipping: Set(outputs.compactMap { Self.relative($0, to: app) }), budget: disk)
                    .copy(from: app, to: appForBuildpacks)
                try sandbox.makeWritable(appForBuildpacks)
                context.appDirectory = appForBuildpacks
            }

            progress.line("===> DETECTING")
            var detectContext = context
            detectContext.timeoutSeconds = options.timeout ?? Self.detectTimeout
            var detecting = Detector(context: detectContext, store: store, executor: sandbox, progress: progress,
                                     jobs: options.jobs ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
            detecting.disk = disk
            let detector = detecting
            let detected = try runBlocking { await detector.detect(order: order) }
            runs += detected.runs
            let kept = options.keepLayers || options.layers != nil
            if kept { progress.line("group.toml and plan.toml written to \(layers)") }
            let restored = RestoredLayers()
            if build && (images.previous != nil || images.cache != nil) {
                progress.line("===> RESTORING")
                let cache = images.cache.flatMap { $0.load(progress: progress) }
                var restorer = Restorer(layersDirectory: layers, scratchDirectory: work, group: detected.group.group.group,
                                        user: EntryOwner(uid: user.uid, gid: user.gid), progress: progress,
                                        prepare: { try sandbox.makeWritable($0) })
                restorer.budget = disk
                context.reusableLaunchLayers = try restorer.restore(previous: images.previous, cache: cache,
                                                                    restored: restored)
            }
            if build {
                progress.line("===> BUILDING")
                var configured = Builder(context: context, store: store, executor: sandbox, progress: progress,
                                         network: network)
                configured.disk = disk
                configured.restored = restored
                let builder = configured
                let built = try runBlocking { await builder.build(group: detected.group.group, plan: detected.group.plan) }
                runs += built.runs
                progress.line("===> PROCESSES")
                for process in built.metadata.processes.sorted(by: { $0.type < $1.type }) {
                    let isDefault = process.type == built.metadata.buildpackDefaultProcessType
                    let command = (process.command + process.args).joined(separator: " ")
                    progress.line("  \(process.type)\(isDefault ? " (default)" : ""): \(command)")
                }
                if kept { progress.line("config/metadata.toml written to \(layers)/config") }
                if images.output != nil || images.cache != nil {
                    try sandbox.makeReadable(layers)
                    try sandbox.makeReadable(appForBuildpacks)
                }
                if let output = images.output {
                    progress.line("===> EXPORTING")
                    var exporter = Exporter(
                        layersDirectory: layers, appDirectory: appForBuildpacks, group: detected.group.group.group,
                        user: EntryOwner(uid: user.uid, gid: user.gid), launcher: try Self.launcherPath(),
                        runImage: images.run, previous: images.previous, restored: restored,
                        projectMetadata: Exporter.projectMetadata(version: project?.version, sourceURL: project?.sourceURL),
                        progress: progress)
                    if let created = try Self.sourceDateEpoch() { exporter.created = created }
                    let exported = try exporter.export(to: output.layout, tag: output.tag)
                    progress.line("Image \(output.name) \(exported.manifest.digest)")
                    try output.publish(registryImages, runImage: image?.runImage)
                }
                if let cache = images.cache {
                    try cache.save(layersDirectory: layers, group: detected.group.group.group,
                                   user: EntryOwner(uid: user.uid, gid: user.gid), restored: restored,
                                   progress: progress)
                    try images.cacheImage?.push(registryImages)
                }
            }
            keep = options.keepLayers || options.layers != nil
            if options.keepLayers && options.layers == nil { progress.line("layers kept in \(layers)") }
            code = 0
            finish(progress: progress, runs: runs, code: code, error: nil)
        } catch let error as LifecycleError {
            runs += error.runs
            complain(error.message)
            keep = options.layers != nil
            code = ExitCode.of(error)
            finish(progress: progress, runs: runs, code: code, error: error.message)
        } catch let failure as Failure {
            code = failure.code
        } catch let error as OCIError {
            complain(error.message)
            code = ExitCode.of(error)
        } catch let error as RegistryError {
            complain(error.message)
            code = ExitCode.of(error)
        } catch let error as ValidationError {
            complain(error.message)
            code = ExitCode.usage
        } catch {
            complain("\(error)")
            code = ExitCode.system
        }
        if let auditLog, !auditLog.finish() {
            complain("the audit log \(options.audit ?? "") could not be written")
            if code == 0 { code = ExitCode.system }
        }
        return code
    }

    private func finish(progress: ConsoleProgress, runs: [BuildpackRun], code: Int32, error: String?) {
        let report = RunReport(runs: runs, exitCode: code, error: error)
        if !runs.isEmpty {
            progress.line("===> SUMMARY")
            report.summary.forEach(progress.line)
        }
        if let path = options.report {
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if fd < 0 {
                complain("cannot write the report \(path): \(String(cString: strerror(errno)))")
                return
            }
            let bytes = Array(report.json.utf8)
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
    }

    // MARK: - inputs

    struct Images {
        var output: OutputImage?
        var run: Exporter.RunImage?
        var previous: Exporter.Previous?
        var cache: LayerCache?
        var cacheImage: CacheImage?
    }

    /// Opens every image input before anything is built, so a wrong path fails in a second.
    private func openImages(budget: DiskAccount, registry: RegistryImages) throws -> Images {
        var images = Images()
        guard let image, image.output != nil || image.cacheDir != nil || image.cacheImage != nil else { return images }
        try SHA256.checkAvailable()
        images.cache = image.cacheDir.map { LayerCache(path: $0, budget: budget) }
        if let text = image.cacheImage, let reference = registryReference(text) {
            images.cacheImage = try CacheImage.pull(reference, registry: registry, budget: budget)
            images.cache = LayerCache(path: images.cacheImage!.directory, budget: budget)
        }
        images.run = try image.runImage.map { try ImageReference.local($0, registry: registry, budget: budget).runImage() }
        if let run = images.run { try Exporter.check(run) }  // before the build, not after
        if let output = image.output {
            _ = try Self.sourceDateEpoch()  // a bad value fails before the build, not after
            let opened = try OutputImage.open(output, budget: budget)
            images.output = opened
            do {
                images.previous = try ImageReference.previous(
                    explicit: image.previousImage, output: ImageReference(directory: opened.layout.path, tag: opened.tag),
                    layout: opened.layout, registry: registry, budget: budget)
            } catch {
                opened.removeTemporary()
                throw error
            }
        }
        return images
    }

    /// `path` relative to the directory `base`, when it lies inside it.
    static func relative(_ path: String, to base: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        let full = String(cString: resolved)
        return full.hasPrefix(base + "/") ? String(full.dropFirst(base.count + 1)) : nil
    }

    /// `SOURCE_DATE_EPOCH` as the image's creation time, when it is set.
    static func sourceDateEpoch() throws -> String? {
        guard let value = getenv("SOURCE_DATE_EPOCH").map({ String(cString: $0) }), !value.isEmpty else { return nil }
        guard let created = Exporter.timestamp(sourceDateEpoch: value) else {
            throw LifecycleError("SOURCE_DATE_EPOCH=\(value) is not a number of seconds", exitCode: ExitCode.usage)
        }
        return created
    }

    /// The static launcher that goes into images: `$STOCKADE_LAUNCHER`, else beside this binary.
    static func launcherPath() throws -> String {
        if let given = getenv("STOCKADE_LAUNCHER") { return String(cString: given) }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { throw LifecycleError("cannot find the stockade binary", exitCode: ExitCode.system) }
        let exe = String(cString: buffer)
        let path = String(exe[..<exe.lastIndex(of: "/")!]) + "/stockade-launcher"
        guard access(path, X_OK) == 0 else {
            throw LifecycleError("the launcher \(path) is missing: build it with `swift build --product stockade-launcher`",
                                 exitCode: ExitCode.missingPath)
        }
        return path
    }

    /// Explicit --buildpack flags, else the project's group, else --order, else the builder's; then the
    /// project's pre and post buildpacks around every group.
    private func order(store: inout BuildpackStore, builder: BuilderTOML?, project: ProjectTOML?, app: String,
                       scratch: String) throws -> [OrderGroup] {
        var order: [OrderGroup]?
        if !options.buildpacks.isEmpty {
            var group: [GroupElement] = []
            for directory in options.buildpacks {
                let path = try Self.directory(directory, what: "buildpack directory")
                guard let entry = store.entries.first(where: { $0.directory == path }) else { continue }
                group.append(entry.element)
            }
            order = [OrderGroup(group)]
        } else if project?.group.isEmpty != false {
            if let path = options.order {
                let file = try Self.splitPath(path)
                order = try Self.read(OrderTOML.self, in: file.directory, name: file.name, required: true)!.order
            } else if let builder {
                order = builder.order
            }
        }
        guard var project else {
            guard let order else { throw Self.noOrder }
            return order
        }
        if !options.buildpacks.isEmpty { project.group = [] }  // the flags replace it; pre and post still apply
        var projectStore = store
        var inlineCount = 0
        func resolve(_ buildpack: ProjectTOML.Buildpack) throws(SpecError) -> GroupElement {
            switch buildpack {
            case .registry(let id, let version):
                return GroupElement(id: id, version: version ?? "")
            case .uri(let uri, _):
                guard !uri.contains("://") || uri.hasPrefix("file://") else {
                    throw SpecError(.invalidValue, "buildpack uri \(uri) is not supported: only local directories",
                                    file: ProjectTOML.defaultFileName)
                }
                let path = uri.hasPrefix("file://") ? String(uri.dropFirst(7)) : uri
                do throws(LifecycleError) {
                    return try projectStore.add(directory: path.hasPrefix("/") ? path : app + "/" + path).element
                } catch {
                    throw SpecError(.notFound, error.message, file: ProjectTOML.defaultFileName)
                }
            case .inline(let id, let api, let shell, let script):
                inlineCount += 1
                do throws(LifecycleError) {
                    let directory = try InlineBuildpack(id: id, api: api, shell: shell, script: script)
                        .write(in: scratch, name: "inline-\(inlineCount)")
                    return try projectStore.add(directory: directory).element
                } catch {
                    throw SpecError(error.exitCode == LifecycleError.Code.unsupportedBuildpackAPI ? .unsupportedBuildpackAPI : .invalidValue,
                                    "inline buildpack \(id): \(error.message)", file: ProjectTOML.defaultFileName)
                }
            }
        }
        let wrapped: [OrderGroup]
        do { wrapped = try project.order(wrapping: order ?? [], resolving: resolve) } catch {
            throw LifecycleError.from(error, phaseCode: LifecycleError.Code.invalidArguments)
        }
        store = projectStore
        if wrapped.isEmpty || wrapped.allSatisfy(\.group.isEmpty) { throw Self.noOrder }
        return wrapped
    }

    static let noOrder = LifecycleError(
        "no buildpacks: give --buildpack, --builder, --buildpacks-dir with --order, or list them in project.toml",
        exitCode: ExitCode.usage)

    private static func loadBuilder(_ path: String, into store: inout BuildpackStore) throws -> BuilderTOML {
        let file = try splitPath(path)
        let builder = try read(BuilderTOML.self, in: file.directory, name: file.name, required: true)!
        for reference in builder.buildpacks {
            guard let uri = reference.uri else {
                throw LifecycleError("\(path): a [[buildpacks]] entry without uri (\(reference.id ?? "?")) cannot be found locally",
                                     exitCode: LifecycleError.Code.invalidArguments)
            }
            if uri.contains("://") && !uri.hasPrefix("file://") || uri.hasPrefix("urn:") {
                throw LifecycleError("\(path): buildpack uri \(uri) is not supported: only local directories (relative to the builder.toml)",
                                     exitCode: LifecycleError.Code.invalidArguments)
            }
            let local = uri.hasPrefix("file://") ? String(uri.dropFirst(7)) : uri
            if local.hasSuffix(".tgz") || local.hasSuffix(".cnb") || local.hasSuffix(".tar") {
                throw LifecycleError("\(path): buildpack archive \(uri) is not supported: give its directory",
                                     exitCode: LifecycleError.Code.invalidArguments)
            }
            try store.add(directory: local.hasPrefix("/") ? local : file.directory + "/" + local)
        }
        return builder
    }

    private func makePlatform(in work: String, project: ProjectTOML?) throws -> String {
        let platform = work + "/platform"
        var variables: [(String, String)] = project?.buildEnv.map { ($0.name, $0.value) } ?? []
        if let envFile = options.envFile {
            guard let text = HostText.read(envFile) else {
                throw LifecycleError("cannot read --env-file \(envFile)", exitCode: ExitCode.missingPath)
            }
            for line in text.split(separator: "\n") where !line.hasPrefix("#") && line.contains("=") {
                let eq = line.firstIndex(of: "=")!
                variables.append((String(line[..<eq]), String(line[line.index(after: eq)...])))
            }
        }
        for entry in options.environment {
            let eq = entry.firstIndex(of: "=")!
            variables.append((String(entry[..<eq]), String(entry[entry.index(after: eq)...])))
        }
        let dir = try ConfinedDirectory(path: work)
        try dir.createDirectory("platform/env")
        let env = try dir.subdirectory("platform/env")
        for (name, value) in variables {
            guard EnvironmentVariableName.isUsable(name), !name.contains("/") else {
                throw LifecycleError("\(name) cannot be an environment variable name", exitCode: ExitCode.usage)
            }
            try env.writeFile(name, contents: Array(value.utf8))
        }
        return platform
    }

    private func makeLayers(in work: String) throws -> String {
        guard let given = options.layers else {
            mkdir(work + "/layers", 0o755)
            return work + "/layers"
        }
        if mkdir(given, 0o755) != 0 && errno != EEXIST {
            throw LifecycleError("cannot create the layers directory \(given): \(String(cString: strerror(errno)))",
                                 exitCode: ExitCode.missingPath)
        }
        let path = try Self.directory(given, what: "layers directory")
        let dir = try ConfinedDirectory(path: path)
        guard try dir.entries().isEmpty else {
            throw LifecycleError("the layers directory \(path) is not empty; give an empty or new directory",
                                 exitCode: ExitCode.usage)
        }
        return path
    }

    // MARK: - helpers

    static func directory(_ path: String, what: String) throws -> String {
        guard let resolved = realpath(path, nil) else {
            throw LifecycleError("\(what) \(path) does not exist", exitCode: ExitCode.missingPath)
        }
        defer { free(resolved) }
        var st = stat()
        guard stat(resolved, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            throw LifecycleError("\(what) \(path) is not a directory", exitCode: ExitCode.missingPath)
        }
        return String(cString: resolved)
    }

    static func splitPath(_ path: String) throws -> (directory: String, name: String) {
        guard let resolved = realpath(path, nil) else {
            throw LifecycleError("\(path) does not exist", exitCode: ExitCode.missingPath)
        }
        defer { free(resolved) }
        let full = String(cString: resolved)
        let slash = full.lastIndex(of: "/")!
        return (full[..<slash].isEmpty ? "/" : String(full[..<slash]), String(full[full.index(after: slash)...]))
    }

    /// A document in a trusted directory; a bad one is an invalid argument.
    static func read<T: TOMLDecodable>(_ type: T.Type, in directory: String, name: String, required: Bool = false) throws -> T? {
        do {
            let dir = try ConfinedDirectory(path: directory)
            return required ? try T.read(from: dir, at: name) : try T.readIfPresent(from: dir, at: name)
        } catch {
            throw LifecycleError.from(error, phaseCode: LifecycleError.Code.invalidArguments)
        }
    }

    /// A private directory in `$TMPDIR`, in the cleanup journal before it exists.
    static var scratchBase: String { getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp" }

    static func makeScratch() throws -> String {
        let base = scratchBase
        do {
            return try CleanupJournal.makeTemporaryDirectory(in: base)
        } catch {
            throw LifecycleError("\(error)", exitCode: ExitCode.system)
        }
    }

    static func processEnvironment() -> [String] {
        var entries: [String] = []
        var p = environ
        while let entry = p.pointee { entries.append(String(cString: entry)); p += 1 }
        return entries
    }

    /// linux/<arch> and the build image's distribution from its os-release.
    static func target(rootfs: String?) -> TargetPlatform {
        let arch = ImageLayout.hostArchitecture
        var distro: Distro?
        let root = rootfs ?? ""
        for candidate in [root + "/etc/os-release", root + "/usr/lib/os-release"] {
            guard let text = HostText.read(candidate) else { continue }
            var fields: [String: String] = [:]
            for line in text.split(separator: "\n") {
                guard let eq = line.firstIndex(of: "=") else { continue }
                fields[String(line[..<eq])] = String(line[line.index(after: eq)...]).trimmingCharacters(in: "\"")
            }
            distro = Distro(name: fields["ID"] ?? "", version: fields["VERSION_ID"] ?? "")
            break
        }
        return TargetPlatform(os: "linux", arch: arch, distro: distro)
    }
}

/// Progress lines to the console, which name layers and processes a buildpack chose: made
/// plain text first.
struct ConsoleProgress: ProgressReporter {
    let console: Console
    func line(_ text: String) { console.write(Array(TerminalFilter.sanitize(Array((text + "\n").utf8)).utf8)) }
}

/// Small host text files the user points at (env files, os-release).
enum HostText {
    static func read(_ path: String, limit: Int = 1 << 20) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while bytes.count <= limit {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return bytes.count <= limit ? String(decoding: bytes, as: UTF8.self) : nil
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}

/// Waits on this thread for an async operation: the command line stays
/// synchronous, so `stockade exec` never starts the concurrency runtime.
func runBlocking<T: Sendable>(_ operation: @escaping @Sendable () async -> Result<T, LifecycleError>) throws(LifecycleError) -> T {
    let box = ResultBox<T>()
    Task { box.put(await operation()) }
    return try box.take().get()
}

private final class ResultBox<T: Sendable>: @unchecked Sendable {
    // Heap-allocated: pthread objects must not move, and `&property` may hand
    // pthread a temporary copy.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var result: Result<T, LifecycleError>?

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func put(_ value: Result<T, LifecycleError>) {
        pthread_mutex_lock(mutex)
        result = value
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    func take() -> Result<T, LifecycleError> {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while result == nil { pthread_cond_wait(condition, mutex) }
        return result!
    }
}
