import BuildpackSpec
import CLinux
import CrashSafety
import Glibc
import GoFlags
import JSON
import Lifecycle
import OCI
import Registry
import Sandbox
import SandboxExecutor
import TerminalText
import SystemCalls
import SystemPackage

/// `stockade` started as `detector`, `builder`, … (a link or a copy), or as `stockade lifecycle
/// <phase>`: the reference lifecycle's phase of that name, with its flags, files and exit codes.
public enum PhaseMain {
    /// Runs the phase `arguments` name and exits; returns when they name none.
    /// Only a string comparison for every other command, so `stockade exec` starts as fast as before.
    public static func runIfPhase(_ arguments: [String]) {
        guard let program = arguments.first else { return }
        let base = program.split(separator: "/").last.map(String.init) ?? program
        if base != "stockade", let phase = LifecyclePhase(rawValue: base) {
            run(phase, arguments: Array(arguments.dropFirst()), program: program)
        }
        // `stockade lifecycle <phase>`, or the reference's multi-call name `lifecycle <phase>`.
        let shift = base == "lifecycle" ? 1 : 2
        guard base == "lifecycle" || (arguments.count >= 2 && arguments[1] == "lifecycle") else { return }
        guard arguments.count > shift, let phase = LifecyclePhase(name: arguments[shift]) else {
            fail(PhaseFailure("stockade lifecycle takes a phase: analyzer, detector, restorer, builder, exporter, creator, rebaser or launcher",
                              code: PhaseFailure.invalidArguments))
        }
        run(phase, arguments: Array(arguments.dropFirst(shift + 1)), program: phase.rawValue)
    }

    static func run(_ phase: LifecyclePhase, arguments: [String], program: String) -> Never {
        if phase == .launcher { launch(arguments: arguments, program: program) }
        let environment = Dictionary(HostInputs.processEnvironment().compactMap { entry -> (String, String)? in
            guard let eq = entry.firstIndex(of: "=") else { return nil }
            return (String(entry[..<eq]), String(entry[entry.index(after: eq)...]))
        }, uniquingKeysWith: { _, last in last })
        // The Platform API comes first: it decides which flags exist.
        let asked = environment["CNB_PLATFORM_API"] ?? ""
        guard let api = PlatformAPI(asked) else {
            fail(PhaseFailure("platform API version '\(asked)' is incompatible with the lifecycle: set CNB_PLATFORM_API to one of 0.7 to 0.15",
                              code: PlatformAPI.exitCode))
        }
        let inputs: PhaseInputs
        do {
            inputs = try PhaseInputs(phase: phase, api: api, arguments: arguments, environment: environment)
        } catch {
            if error.isHelp {
                print("Usage: \(phase.rawValue) [flags]\(phase == .exporter || phase == .analyzer || phase == .creator ? " <image>" : ""); see README.md, \"Stockade as your lifecycle\"")
                exit(0)
            }
            fail(PhaseFailure(error.message, code: PhaseFailure.badFlags))
        }
        if inputs.given.bool("version") == true {
            print(PhaseSession.version)
            exit(0)
        }
        let cgroups = CgroupPool()
        do {
            var session = try PhaseSession(inputs: inputs, cgroups: cgroups)
            try session.perform()
            cgroups.drain()
            CleanupJournal.finished()
            exit(0)
        } catch {
            cgroups.drain()
            CleanupJournal.finished()
            fail(PhaseSession.failure(error, phase: phase))
        }
    }

    static func fail(_ failure: PhaseFailure) -> Never {
        if !failure.message.isEmpty { complain(failure.message) }
        exit(failure.code)
    }

    /// The launcher inside images is the static `stockade-launcher`: run it with the same argv[0],
    /// whose name selects the process type.
    static func launch(arguments: [String], program: String) -> Never {
        let path: String
        do { path = try HostInputs.launcherPath() } catch {
            fail(PhaseFailure("\(error)", code: 82))
        }
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        fail(PhaseFailure("cannot run the launcher \(path): \(Errno.current.description)", code: 82))
    }
}

/// One phase's run: its inputs resolved, privileges dropped, then the work.
struct PhaseSession {
    static var version: String {
        let platform = APIVersion.supportedPlatformAPIs, buildpack = APIVersion.supportedBuildpackAPIs
        return "stockade \(Version.release) (Platform API \(platform.lowerBound)-\(platform.upperBound), "
            + "Buildpack API \(buildpack.lowerBound)-\(buildpack.upperBound))"
    }

    let inputs: PhaseInputs
    let progress: LeveledProgress
    let configuration: Configuration
    let user: StackUser
    /// Registry images, pulled into this session's scratch directory.
    let registry: RegistryImages
    /// The emptied cgroups of this phase's sandboxes, for its next ones.
    let cgroups: CgroupPool
    var phase: LifecyclePhase { inputs.phase }
    /// Created on first use, removed at the end.
    private var scratchDirectory: String?

    init(inputs: PhaseInputs, cgroups: CgroupPool) throws {
        self.inputs = inputs
        self.cgroups = cgroups
        guard let level = LeveledProgress.Level(rawValue: inputs.logLevel == "warning" ? "warn" : inputs.logLevel) else {
            throw PhaseFailure("failed to parse log level '\(inputs.logLevel)': use debug, info, warn or error", code: 1)
        }
        progress = LeveledProgress(console: ConsoleProgress(console: Console(fd: STDOUT_FILENO)), level: level)
        configuration = try Configuration.load()
        let env = inputs.environment
        let uid = try inputs.int("uid") ?? env["CNB_USER_ID"].flatMap(GoFlagSet.parseInt) ?? (geteuid() == 0 ? 1000 : Int(geteuid()))
        let gid = try inputs.int("gid") ?? env["CNB_GROUP_ID"].flatMap(GoFlagSet.parseInt) ?? (geteuid() == 0 ? 1000 : Int(getegid()))
        guard uid > 0, gid >= 0, uid <= Int(UInt32.max - 1), gid <= Int(UInt32.max - 1) else {
            throw PhaseFailure("the stack user must be a uid above 0 and a gid (CNB_USER_ID, CNB_GROUP_ID, -uid, -gid): not \(uid):\(gid)",
                               code: PhaseFailure.invalidArguments)
        }
        user = StackUser(uid: UInt32(uid), gid: UInt32(gid))
        // Platforms pass the parameter even when it is empty (`-insecure-registry=`).
        let insecure = inputs.list("insecure-registry").flatMap { $0.split(separator: ",").map(String.init) }.filter { !$0.isEmpty }
        for host in insecure where !RegistryReference.isValidHost(host) {
            throw PhaseFailure("failed to parse arguments: -insecure-registry takes host[:port], not \(host)", code: PhaseFailure.invalidArguments)
        }
        registry = RegistryImages(insecureHosts: insecure)
    }

    mutating func perform() throws {
        if geteuid() == 0 { try dropPrivileges() }
        if [.detector, .builder, .creator].contains(phase) { Zygote.start() }
        try CleanupJournal.startJanitor(for: user)
        defer {
            if let scratchDirectory { try? StackUserFiles.removeTree(scratchDirectory, for: user) }
        }
        if [.detector, .restorer, .builder].contains(phase), !inputs.positional.isEmpty {
            throw PhaseFailure("failed to parse arguments: received unexpected arguments: \(inputs.positional.joined(separator: " "))",
                               code: PhaseFailure.invalidArguments)
        }
        switch phase {
        case .analyzer:
            _ = try analyze()
        case .detector:
            _ = try detect()
        case .restorer:
            _ = try restore(analyzed: try readIfPresent(AnalyzedTOML.self, at: inputs.analyzed), group: try input(GroupTOML.self, at: inputs.group, "group file"))
        case .builder:
            try build(group: try input(GroupTOML.self, at: inputs.group, "group file"), plan: try input(PlanTOML.self, at: inputs.plan, "plan file"))
        case .exporter:
            try export(group: try input(GroupTOML.self, at: inputs.group, "group file"), analyzed: try readIfPresent(AnalyzedTOML.self, at: inputs.analyzed))
        case .creator:
            // One process: what restore learnt goes to build and export as it is.
            let analyzed = try analyze()
            let detected = try detect()
            let restoration = try inputs.bool("skip-restore") ? LifecycleSession.Restoration()
                : try restore(analyzed: analyzed, group: detected.group)
            try build(group: detected.group, plan: detected.plan, restoration: restoration)
            try export(group: detected.group, analyzed: analyzed, restoration: restoration)
        case .rebaser:
            try rebase()
        case .launcher:
            break
        }
    }

    // MARK: - privileges

    /// As root: hand the directories this phase writes to the stack user, then become it, for
    /// good (no saved ids, no supplementary groups). Buildpacks never run as root either way: each
    /// runs in a sandbox as the stack user.
    private func dropPrivileges() throws {
        var trees: [String]
        switch phase {
        case .builder, .creator: trees = [inputs.layers, inputs.app]
        case .rebaser, .launcher: trees = []
        default: trees = [inputs.layers]
        }
        if let cache = inputs.path("cache-dir"), phase == .restorer || phase == .exporter || phase == .creator { trees.append(cache) }
        for tree in trees where access(tree, F_OK) == 0 { try Self.chownTree(tree, uid: user.uid, gid: user.gid) }
        // As root, setgid and setuid set the real, effective and saved ids alike: there is no way back.
        guard setgroups(0, nil) == 0, setgid(user.gid) == 0, setuid(user.uid) == 0 else {
            throw PhaseFailure("cannot become \(user.uid):\(user.gid): \(Errno.current.description)", code: 1)
        }
        // A change of ids makes the process undumpable, which leaves its /proc files root's: the
        // sandboxes could not write their own uid_map. Nothing of root's is left to protect.
        guard clinux_set_dumpable(1) == 0 else {
            throw PhaseFailure("cannot make the process dumpable again: \(Errno.current.description)", code: 1)
        }
    }

    /// Every entry beneath `path`: links themselves (never what they point to), no mount crossed
    /// by a name, each directory opened with O_NOFOLLOW relative to its parent.
    static func chownTree(_ path: String, uid: UInt32, gid: UInt32) throws {
        let root = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else {
            throw PhaseFailure("cannot hand \(path) to \(uid):\(gid): \(Errno.current.description)", code: 1)
        }
        try chownBelow(root, path: path, uid: uid, gid: gid, depth: 0)
    }

    /// Takes `fd` (a directory) and closes it.
    private static func chownBelow(_ fd: Int32, path: String, uid: UInt32, gid: UInt32, depth: Int) throws {
        func fail(_ what: String) -> PhaseFailure {
            PhaseFailure("cannot hand \(what) to \(uid):\(gid): \(Errno.current.description)", code: 1)
        }
        defer { close(fd) }
        guard fchown(fd, uid, gid) == 0, depth < 256,
              let entries = try? FileDescriptor(rawValue: fd).directoryEntries() else { throw fail(path) }
        for entry in entries {
            let name = entry.name
            var isDirectory = entry.type == UInt8(DT_DIR)
            if entry.type == UInt8(DT_UNKNOWN) {
                var st = stat()
                isDirectory = fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mode & S_IFMT == S_IFDIR
            }
            if isDirectory {
                let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { throw fail(path + "/" + name) }
                try chownBelow(child, path: path + "/" + name, uid: uid, gid: gid, depth: depth + 1)
            } else if fchownat(fd, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0 {
                throw fail(path + "/" + name)
            }
        }
    }

    // MARK: - the phases

    /// analyzer: the previous image's layer metadata and the run image, into analyzed.toml.
    private mutating func analyze() throws -> AnalyzedTOML {
        guard inputs.positional.count == 1 else {
            throw PhaseFailure("failed to parse arguments: received \(inputs.positional.count) arguments, but expected 1 (the image)",
                               code: PhaseFailure.invalidArguments)
        }
        let image = inputs.positional[0]
        guard try layoutMode() else { return try analyzeInRegistry(image) }
        let layout = try layoutDirectory(for: image)
        var analyzed = AnalyzedTOML()
        let previousName = inputs.path("previous-image") ?? image
        let previousPath = try LayoutPath(previousName, in: layout)
        if !(try inputs.bool("skip-layers")), let (found, image) = try previousPath.openIfPresent() {
            analyzed.previousImage = found.path + "@" + image.descriptor.digest.description
            if let label = image.config.labels[ImageLabel.lifecycleMetadata], let json = try? JSONParser.parse(Array(label.utf8), maxBytes: ImageLayout.documentLimit) {
                analyzed.metadata = TOMLJSON.table(json) ?? TOMLTable()
            }
            progress.line("Previous image \(previousName): \(image.descriptor.digest)")
        }
        let runName = try runImageName()
        let run = try LayoutPath(runName, in: layout).open()
        let platform = run.image.config.platform
        analyzed.runImage = AnalyzedTOML.RunImage(
            image: runName, reference: run.layout.path + "@" + run.image.descriptor.digest.description,
            target: TargetPlatform(os: platform.os, arch: platform.architecture, archVariant: platform.variant ?? "",
                                   distro: Self.distro(of: run.image.config)))
        try write(analyzed, to: inputs.analyzed)
        progress.line("Run image \(runName): \(run.image.descriptor.digest)")
        return analyzed
    }

    /// analyzer against registries: manifests and configs only, the images recorded by digest.
    private mutating func analyzeInRegistry(_ image: String) throws -> AnalyzedTOML {
        var analyzed = AnalyzedTOML()
        let previousName = inputs.path("previous-image") ?? image
        if !(try inputs.bool("skip-layers")), let (reference, pulled) = try pullIfPresent(previousName) {
            let (_, found) = try pulled.open()
            analyzed.previousImage = reference.with(digest: found.descriptor.digest).description
            if let label = found.config.labels[ImageLabel.lifecycleMetadata], let json = try? JSONParser.parse(Array(label.utf8), maxBytes: ImageLayout.documentLimit) {
                analyzed.metadata = TOMLJSON.table(json) ?? TOMLTable()
            }
            progress.line("Previous image \(previousName): \(found.descriptor.digest)")
        }
        let runName = try runImageName()
        let (runReference, pulled) = try pull(runName, layers: false)
        let (_, run) = try pulled.open()
        let platform = run.config.platform
        analyzed.runImage = AnalyzedTOML.RunImage(
            image: runName, reference: runReference.with(digest: run.descriptor.digest).description,
            target: TargetPlatform(os: platform.os, arch: platform.architecture, archVariant: platform.variant ?? "",
                                   distro: Self.distro(of: run.config)))
        try write(analyzed, to: inputs.analyzed)
        progress.line("Run image \(runName): \(run.descriptor.digest)")
        return analyzed
    }

    /// detector: the first group of the order that passes, into group.toml and plan.toml.
    private mutating func detect() throws -> DetectedGroup {
        var store = BuildpackStore()
        try store.add(buildpacksDirectory: try HostInputs.directory(inputs.buildpacks, what: "buildpacks directory"))
        var order = try input(OrderTOML.self, at: inputs.order, "buildpack order file").order
        if inputs.api.atLeast(15), let system = try readIfPresent(SystemTOML.self, at: inputs.systemPath) {
            order = system.applied(to: order)
        }
        try store.resolve(order: order)
        for warning in store.warnings { complain(warning, level: "warning") }
        // Only where -group and -plan say, as the reference writes them; the creator keeps the layers' copies.
        let detected = try session(store: store).detect(order: order, writingPlanFiles: phase == .creator)
        try write(detected.group, to: inputs.group)
        try write(detected.plan, to: inputs.plan)
        return detected
    }

    /// restorer: layer metadata from the previous image and layers from the cache.
    private mutating func restore(analyzed: AnalyzedTOML?, group: GroupTOML) throws -> LifecycleSession.Restoration {
        let previous = try inputs.bool("skip-layers") ? nil : try previousImage(analyzed)
        // An empty cache volume is a first build, not a broken cache.
        let cache = try cacheLocation(pulling: true).flatMap { access($0.path + "/index.json", F_OK) == 0 ? LayerCache(path: $0.path) : nil }?
            .load(progress: progress)
        guard previous != nil || cache != nil else { return LifecycleSession.Restoration() }
        return try session(store: BuildpackStore()).restore(group: group.group, previous: previous, cache: cache)
    }

    /// builder: the group's bin/build in order, then `<layers>/config/metadata.toml`. The app is
    /// built in place, as the platform gave it.
    private mutating func build(group: GroupTOML, plan: PlanTOML, restoration: LifecycleSession.Restoration? = nil) throws {
        // group.toml names each buildpack's API: one this lifecycle cannot speak is refused before anything runs.
        for element in group.group {
            if let api = element.api { _ = try APIVersion.buildpackAPI(api, file: inputs.group, buildpack: element.description) }
        }
        var store = BuildpackStore()
        try store.add(buildpacksDirectory: try HostInputs.directory(inputs.buildpacks, what: "buildpacks directory"))
        try store.resolve(order: [OrderGroup(group.group)])
        let session = try session(store: store)
        try session.executor.makeWritable(session.context.appDirectory)
        var given = restoration ?? LifecycleSession.Restoration()
        if restoration == nil, let analyzed = try readIfPresent(AnalyzedTOML.self, at: inputs.analyzed) {
            // In its own process the builder learns from analyzed.toml which launch layers the previous image holds.
            given.reusableLaunchLayers = Self.launchLayers(analyzed.metadata)
        }
        _ = try session.build(group: group, plan: plan, restoration: given)
    }

    /// exporter: the image into each OCI layout the image names map to; report.toml; the cache.
    private mutating func export(group: GroupTOML, analyzed: AnalyzedTOML?,
                                 restoration: LifecycleSession.Restoration = LifecycleSession.Restoration()) throws {
        guard let first = inputs.positional.first else {
            throw PhaseFailure("failed to parse arguments: at least one image argument is required", code: PhaseFailure.invalidArguments)
        }
        let names = inputs.positional + (phase == .creator ? inputs.list("tag") : [])
        let inRegistry = !(try layoutMode())
        let layout = inRegistry ? "" : try layoutDirectory(for: first)
        let recorded = analyzed?.runImage.map(\.reference).flatMap { $0.isEmpty ? nil : $0 }
        let run: Exporter.RunImage
        var runReference: RegistryReference?
        if inRegistry {
            let (reference, pulled) = try pull(try recorded ?? runImageName(), layers: true)
            runReference = reference
            run = try pulled.runImage()
        } else if let recorded {
            run = try LayoutPath.open(reference: recorded)
        } else {
            run = try LayoutPath(try runImageName(), in: layout).open()
        }
        try Exporter.check(run)
        var projectMetadata = JSONValue.object([:])
        if let project = try readIfPresent(ProjectMetadataTOML.self, at: inputs.projectMetadata), let source = project.source {
            projectMetadata = .object(["source": TOMLJSON.json(source)])
        }
        var exportInputs = LifecycleSession.ExportInputs(
            runImage: run, previous: try previousImage(analyzed), projectMetadata: projectMetadata,
            launcher: try inputs.path("launcher") ?? HostInputs.launcherPath(), created: try HostInputs.sourceDateEpoch())
        exportInputs.defaultProcessType = inputs.path("process-type")
        exportInputs.platformAPI = inputs.api.description
        let session = try session(store: BuildpackStore())
        var digest = ""
        var size: Int64 = 0
        if inRegistry {
            // One export into a private layout, then a push per name: the registry gets each blob once.
            let output = try ImageLayout.openOrCreate(try scratch() + "/output", budget: session.disk)
            let result = try session.export(group: group.group, to: output, tag: "latest", exportInputs, restoration: restoration)
            for name in names {
                try registry.push(output, tag: "latest", to: try Self.registryReference(name), mountFrom: runReference.map { [$0] } ?? [])
                progress.line("Saved \(name): \(result.manifest.digest)")
            }
            digest = result.manifest.digest.description
            size = result.manifest.size
        }
        for name in names where !inRegistry {
            let target = try LayoutPath(name, in: layout)
            try Self.makeParents(of: target.path)
            let output = try ImageLayout.openOrCreate(target.path, budget: session.disk)
            let result = try session.export(group: group.group, to: output, tag: target.tag, exportInputs, restoration: restoration)
            progress.line("Saved \(name) to \(target.path): \(result.manifest.digest)")
            digest = result.manifest.digest.description
            size = result.manifest.size
        }
        try write(ReportTOML(tags: names, digest: digest, manifestSize: size), to: inputs.report)
        if let cache = try cacheLocation(pulling: true) {
            try session.saveCache(LayerCache(path: cache.path, budget: session.disk), group: group.group, restoration: restoration)
            if let image = cache.image {
                try registry.push(try ImageLayout.open(cache.path), tag: LayerCache.tag, to: image)
            }
        }
    }

    /// rebaser: each image onto the run image, in its layout.
    private mutating func rebase() throws {
        guard let first = inputs.positional.first else {
            throw PhaseFailure("failed to parse arguments: at least one image argument is required", code: PhaseFailure.invalidArguments)
        }
        guard let runName = inputs.path("run-image") ?? inputs.path("image") else {
            throw PhaseFailure("rebaser needs -run-image", code: PhaseFailure.invalidArguments)
        }
        guard try layoutMode() else { return try rebaseInRegistry(runName) }
        let layout = try layoutDirectory(for: first)
        let run = try LayoutPath(runName, in: layout).open()
        var digest = ""
        var size: Int64 = 0
        for name in inputs.positional {
            let target = try LayoutPath(name, in: layout)
            let (found, image) = try target.openRequired()
            let rebased = try Rebaser.rebase(image, in: found, tag: target.tag, onto: run, progress: progress)
            digest = rebased.descriptor.digest.description
            size = rebased.descriptor.size
        }
        try write(ReportTOML(tags: inputs.positional, digest: digest, manifestSize: size), to: inputs.report)
    }

    /// rebaser against a registry: manifests and configs down, a new config and manifest up, the
    /// run image's layers mounted from its repository; no layer is downloaded.
    private mutating func rebaseInRegistry(_ runName: String) throws {
        let (runReference, runPulled) = try pull(runName, layers: false)
        let run = try runPulled.runImage()
        var digest = ""
        var size: Int64 = 0
        for name in inputs.positional {
            let (target, pulled) = try pull(name, layers: false)
            let (layout, image) = try pulled.open()
            let tag = "rebased-" + image.descriptor.digest.hex
            let rebased = try Rebaser.rebase(image, in: layout, tag: tag, onto: run, progress: progress, layersElsewhere: true)
            try registry.push(layout, tag: tag, to: target, mountFrom: [runReference])
            digest = rebased.descriptor.digest.description
            size = rebased.descriptor.size
        }
        try write(ReportTOML(tags: inputs.positional, digest: digest, manifestSize: size), to: inputs.report)
    }

    // MARK: - inputs

    /// `-layout` (`CNB_USE_LAYOUT`): images are OCI layouts under `-layout-dir`; else they are in registries.
    private func layoutMode() throws -> Bool {
        try inputs.bool("layout") || inputs.environment["CNB_USE_LAYOUT"].flatMap(GoFlagSet.parseBool) == true
    }

    /// An image name as the phases take it: a registry reference (`app` is `docker.io/library/app:latest`).
    static func registryReference(_ name: String) throws -> RegistryReference {
        do {
            return try RegistryReference(parsing: name)
        } catch {
            throw PhaseFailure("failed to parse arguments: \(error.message)", code: PhaseFailure.invalidArguments)
        }
    }

    /// Pulls `name` into this session's scratch directory (`layers: false`: manifest and config only).
    private mutating func pull(_ name: String, layers: Bool) throws -> (RegistryReference, ImageReference) {
        let reference = try Self.registryReference(name)
        let blobs = try scratch() + "/blobs"
        registry.blobCache = blobs
        let budget = try DiskOption.parse([]).account(writingTo: [try scratch()], configuration: configuration)
        return (reference, try registry.pull(reference, budget: budget, layers: layers))
    }

    /// As `pull`, nil when the registry has no such image (a first build).
    private mutating func pullIfPresent(_ name: String) throws -> (RegistryReference, ImageReference)? {
        do {
            return try pull(name, layers: false)
        } catch let error as RegistryError where error.kind == .notFound {
            return nil
        }
    }

    /// `-layout-dir`, when layout mode is on.
    private func layoutDirectory(for image: String) throws -> String {
        let mode = inputs.environment["CNB_EXPERIMENTAL_MODE"] ?? "error"
        if mode == "error" {
            throw PhaseFailure("the OCI layout mode is experimental and CNB_EXPERIMENTAL_MODE=error forbids it: set CNB_EXPERIMENTAL_MODE=warn or quiet",
                               code: PhaseFailure.invalidArguments)
        }
        if mode == "warn" { complain("the OCI layout mode is an experimental feature", level: "warning") }
        guard let directory = inputs.path("layout-dir") ?? inputs.environment["CNB_LAYOUT_DIR"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw PhaseFailure("the OCI layout mode needs -layout-dir (or CNB_LAYOUT_DIR)", code: PhaseFailure.invalidArguments)
        }
        return directory
    }

    /// `-run-image`, else the first image of run.toml (stack.toml before Platform 0.12).
    private func runImageName() throws -> String {
        if let given = inputs.path("run-image") { return given }
        if inputs.api.atLeast(12) {
            if let run = try readIfPresent(RunTOML.self, at: inputs.runPath), let first = run.images.first { return first.image }
        } else if let image = try readIfPresent(StackTOML.self, at: inputs.stackPath)?.runImage?.image {
            return image
        }
        let file = inputs.api.atLeast(12) ? inputs.runPath : inputs.stackPath
        throw PhaseFailure("no run image: give -run-image or a \(file) with [[images]]", code: PhaseFailure.invalidArguments)
    }

    /// The previous image analyzed.toml names; from a registry with its layers, since the restorer
    /// takes the reused layers' SBOMs from its SBOM layer and the exporter the layers themselves.
    private mutating func previousImage(_ analyzed: AnalyzedTOML?) throws -> Exporter.Previous? {
        guard let reference = analyzed?.previousImage else { return nil }
        let found: Exporter.RunImage
        if try layoutMode() {
            found = try LayoutPath.open(reference: reference)
        } else {
            found = try pull(reference, layers: true).1.runImage()
        }
        return LifecycleMetadata(label: found.image.config.labels[ImageLabel.lifecycleMetadata]).map {
            Exporter.Previous(layout: found.layout, image: found.image, metadata: $0)
        }
    }

    /// `-cache-dir`, else `-cache-image`: in layout mode its layout; in a registry (`pulling`), a
    /// private layout it is pulled into (none yet: an empty one) and `image`, where the exporter pushes it back.
    private mutating func cacheLocation(pulling: Bool) throws -> (path: String, image: RegistryReference?)? {
        if let directory = inputs.path("cache-dir") { return (directory, nil) }
        guard let image = inputs.path("cache-image") else { return nil }
        if try layoutMode() { return (try LayoutPath(image, in: try layoutDirectory(for: image)).path, nil) }
        let reference = try Self.registryReference(image)
        let path = try scratch() + "/cache"
        let budget = try DiskOption.parse([]).account(writingTo: [try scratch()], configuration: configuration)
        let layout = try ImageLayout.openOrCreate(path, budget: budget)
        do {
            let pulled = try registry.client(reference.host).pull(reference, into: layout)
            try layout.setTag(LayerCache.tag, to: pulled.descriptor)
        } catch let error as RegistryError where error.kind == .notFound {
            progress.line("No cache image \(image) yet")
        }
        return (path, reference)
    }

    /// The lifecycle core over this phase's directories, its buildpacks run by sandboxes as the stack user.
    private mutating func session(store: BuildpackStore) throws -> LifecycleSession {
        let analyzed = try readIfPresent(AnalyzedTOML.self, at: inputs.analyzed)
        let platform = access(inputs.platform, F_OK) == 0
            ? try HostInputs.directory(inputs.platform, what: "platform directory")
            : try emptyPlatform()
        // The restorer has no app (no -app flag): the context's is its own scratch directory.
        let app = phase == .restorer ? try scratch() : try HostInputs.directory(inputs.app, what: "app directory")
        let context = LifecycleContext(
            appDirectory: app, platformDirectory: platform,
            layersDirectory: try HostInputs.directory(inputs.layers, what: "layers directory"),
            scratchDirectory: try scratch(),
            environment: LifecycleContext.baseEnvironment(from: HostInputs.processEnvironment(), home: user.home),
            target: analyzed?.runImage?.target ?? HostInputs.target(rootfs: nil), timeoutSeconds: nil)
        var session = LifecycleSession(context: context, store: store, executor: try executor(), progress: progress,
                                       runs: RunLog(), owner: EntryOwner(uid: user.uid, gid: user.gid))
        session.disk = try disk()
        return session
    }

    private mutating func emptyPlatform() throws -> String {
        let path = try scratch() + "/platform"
        mkdir(path, 0o755)
        mkdir(path + "/env", 0o755)
        return path
    }

    private mutating func scratch() throws -> String {
        if let scratchDirectory { return scratchDirectory }
        let made = try HostInputs.makeScratch()
        scratchDirectory = made
        return made
    }

    private func executor() throws -> SandboxExecutor {
        let (limits, enforcement) = try LimitOptions.parse([]).resolve(configuration)
        return SandboxExecutor(user: user, rootfs: nil,
                               detectFilter: try ProfileSelection.filter(named: configuration.profile(nil, for: "detect", default: "strict")),
                               buildFilter: try ProfileSelection.filter(named: configuration.profile(nil, for: "build", default: "default")),
                               limits: limits, enforcement: enforcement, cgroupPool: cgroups, console: Console(fd: STDOUT_FILENO),
                               requireNamespaces: configuration.requireNamespaces)
    }

    private func disk() throws -> DiskAccount {
        try DiskOption.parse([]).account(writingTo: [inputs.layers], configuration: configuration)
    }

    /// `<escaped id>/<layer>` of the previous image's launch layers (analyzed.toml `[metadata]`).
    static func launchLayers(_ metadata: TOMLTable) -> Set<String> {
        var names: Set<String> = []
        for buildpack in metadata["buildpacks"]?.arrayValue ?? [] {
            guard let table = buildpack.tableValue, let id = table["key"]?.stringValue,
                  let layers = table["layers"]?.tableValue else { continue }
            for (name, layer) in layers.sortedEntries where layer.tableValue?["launch"]?.booleanValue == true {
                names.insert(BuildpackID.escape(id) + "/" + name)
            }
        }
        return names
    }

    /// The run image's distribution, from the labels run images carry.
    static func distro(of config: ImageConfig) -> Distro? {
        guard let name = config.labels["io.buildpacks.base.distro.name"] else { return nil }
        return Distro(name: name, version: config.labels["io.buildpacks.base.distro.version"] ?? "")
    }

    // MARK: - files

    /// An input file another phase or the platform wrote: missing or malformed, the reference's
    /// `failed to read <what>` and exit 1 (an unsupported Buildpack API keeps its 12).
    func input<T: TOMLDecodable>(_ type: T.Type, at path: String, _ what: String) throws -> T {
        do {
            return try read(type, at: path)
        } catch let failure as PhaseFailure {
            throw PhaseFailure("failed to read \(what): \(failure.message)", code: 1)
        } catch let error as LifecycleError {
            throw PhaseFailure("failed to read \(what): \(error.message)", code: error.exitCode == LifecycleError.Code.unsupportedBuildpackAPI ? error.exitCode : 1)
        }
    }

    func read<T: TOMLDecodable>(_ type: T.Type, at path: String) throws -> T {
        guard let document = try readIfPresent(type, at: path) else {
            throw PhaseFailure("\(path) does not exist", code: PhaseFailure.invalidArguments)
        }
        return document
    }

    func readIfPresent<T: TOMLDecodable>(_ type: T.Type, at path: String) throws -> T? {
        let (directory, name) = Self.split(path)
        guard access(path, F_OK) == 0 else { return nil }
        do {
            return try T.readIfPresent(from: try ConfinedDirectory(path: directory), at: name)
        } catch {
            throw LifecycleError.from(error, phaseCode: phase.failureCode)
        }
    }

    func write<T: TOMLEncodable>(_ document: T, to path: String) throws {
        let (directory, name) = Self.split(path)
        do {
            try document.write(to: try ConfinedDirectory(path: directory), at: name)
        } catch {
            throw PhaseFailure("cannot write \(path): \(error)", code: phase.failureCode)
        }
    }

    /// `mkdir -p` of the directories above `path`.
    static func makeParents(of path: String) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/").dropLast() {
            prefix += "/" + component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw PhaseFailure("cannot create \(prefix): \(Errno.current.description)", code: ExitStatus.cannotCreate)
            }
        }
    }

    static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }

    // MARK: - errors

    /// Any error as one line and the exit code the Platform API gives it in this phase.
    static func failure(_ error: any Error, phase: LifecyclePhase) -> PhaseFailure {
        switch error {
        case let failure as PhaseFailure: return failure
        case let failure as Failure: return PhaseFailure("", code: failure.code)
        case let error as LifecycleError:
            return PhaseFailure(error.message, code: error.exitStatus)
        case let error as OCIError:
            return PhaseFailure(error.message, code: error.kind == .overBudget ? LifecycleError.Code.exportOverBudget : phase.failureCode)
        case let error as SpecError:
            return PhaseFailure(error.description, code: LifecycleError.from(error, phaseCode: phase.failureCode).exitCode)
        case let error as ExecutionError:
            return PhaseFailure(error.description, code: phase.failureCode)
        case let error as RegistryError:
            return PhaseFailure(error.message, code: phase.failureCode)
        default:
            return PhaseFailure("\(error)", code: phase.failureCode)
        }
    }
}

/// Progress lines at `-log-level` info and debug; warnings and errors go to stderr regardless.
struct LeveledProgress: ProgressReporter {
    enum Level: String { case debug, info, warn, error }
    let console: ConsoleProgress
    let level: Level
    func line(_ text: String) {
        if level == .debug || level == .info { console.line(text) }
    }
}

/// An image reference in the OCI layout mode: `<layout-dir>/<registry>/<repository>/<tag>`, or
/// `…/<algorithm>/<hex>` for a digest, as the Platform API maps them (`app` is
/// `index.docker.io/library/app/latest`).
struct LayoutPath {
    let path: String
    let tag: String

    init(_ reference: String, in layoutDirectory: String) throws {
        var name = reference
        var leaf: String
        if let at = reference.lastIndex(of: "@") {
            name = String(reference[..<at])
            let digest = reference[reference.index(after: at)...]
            guard let colon = digest.firstIndex(of: ":") else { throw Self.invalid(reference) }
            leaf = digest[..<colon] + "/" + digest[digest.index(after: colon)...]
        } else if let colon = reference.lastIndex(of: ":"), !reference[reference.index(after: colon)...].contains("/") {
            name = String(reference[..<colon])
            leaf = String(reference[reference.index(after: colon)...])
        } else {
            leaf = "latest"
        }
        var components = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !name.isEmpty, components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }),
              leaf.split(separator: "/").allSatisfy({ $0 != "." && $0 != ".." }), !leaf.isEmpty else {
            throw Self.invalid(reference)
        }
        let first = components[0]
        if components.count == 1 || !(first.contains(".") || first.contains(":") || first == "localhost") {
            if components.count == 1 { components.insert("library", at: 0) }
            components.insert("index.docker.io", at: 0)
        }
        path = ([layoutDirectory] + components + [leaf]).joined(separator: "/")
        tag = leaf.contains("/") ? "latest" : leaf
    }

    static func invalid(_ reference: String) -> PhaseFailure {
        PhaseFailure("\(reference) is not an image reference", code: PhaseFailure.invalidArguments)
    }

    func openIfPresent() throws -> (ImageLayout, Image)? {
        guard access(path + "/index.json", F_OK) == 0 else { return nil }
        let layout = try ImageLayout.open(path)
        guard try layout.tags().contains(tag) else { return nil }
        return (layout, try layout.image(tag: tag))
    }

    func openRequired() throws -> (ImageLayout, Image) {
        guard let found = try openIfPresent() else {
            throw PhaseFailure("no image at \(path) (tag \(tag))", code: ExitStatus.missingPath)
        }
        return found
    }

    func open() throws -> Exporter.RunImage {
        let (layout, image) = try openRequired()
        return Exporter.RunImage(layout: layout, tag: tag, image: image, name: path + ":" + tag)
    }

    /// `<layout path>@<digest>` as analyzed.toml records it: the tag there that still names that manifest.
    static func open(reference: String) throws -> Exporter.RunImage {
        guard let at = reference.lastIndex(of: "@") else { throw invalid(reference) }
        let path = String(reference[..<at])
        let digest = String(reference[reference.index(after: at)...])
        let layout = try ImageLayout.open(path)
        for tag in try layout.tags() where try layout.manifestDescriptor(tag: tag).digest.description == digest {
            return Exporter.RunImage(layout: layout, tag: tag, image: try layout.image(tag: tag), name: path + ":" + tag)
        }
        throw PhaseFailure("\(path) no longer holds \(digest)", code: ExitStatus.missingPath)
    }
}
