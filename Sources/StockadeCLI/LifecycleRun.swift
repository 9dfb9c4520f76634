import BuildpackSpec
import CrashSafety
import ArgumentParser
import Glibc
import Lifecycle
import OCI
import Registry
import Sandbox
import SandboxExecutor
import TerminalText
import SystemCalls
import SystemPackage

/// Wires the options of `stockade detect` and `stockade build` into a `BuildSession` run by
/// sandboxes: the executor, the audit, the disk budget, the images; prints the summary and writes
/// the report. Returns the exit code.
struct LifecycleRun {
    let options: LifecycleRequest
    let configuration: Configuration
    let build: Bool
    var network = true
    var image: ImageRequest?

    func perform() -> Int32 {
        let console = Console(fd: STDOUT_FILENO)
        let progress = ConsoleProgress(console: console)
        let log = RunLog()
        var session: BuildSession?
        var passed = false
        let cgroups = CgroupPool()
        defer {
            do { try session?.close(passed: passed) } catch { complain("\(error)", level: "warning") }
            cgroups.drain()
            CleanupJournal.finished()
        }
        var code: Int32
        var auditLog: AuditLog?
        do {
            // A builder image is the build image, the buildpacks, the order, the stack user, the run image.
            let builderImage = try BuilderImages.open(options, registry: image.map { RegistryImages(insecureHosts: $0.insecureRegistries) },
                                                      configuration: configuration, progress: progress)
            let user = try options.user == nil ? builderImage?.stackUser ?? options.stackUser() : options.stackUser()
            let rootfs = builderImage?.root ?? options.rootfs
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
            let sandbox = SandboxExecutor(user: user, rootfs: rootfs,
                                          detectFilter: try ProfileSelection.filter(named: detectProfile),
                                          buildFilter: try ProfileSelection.filter(named: buildProfile),
                                          limits: limits, enforcement: enforcement, cgroupPool: cgroups,
                                          console: console, audit: audit,
                                          requireNamespaces: options.requiresNamespaces(configuration))
            let buildpacks = try BuildpackArguments.resolve(
                options.buildpacks, registry: RegistryImages(insecureHosts: image?.insecureRegistries ?? []),
                configuration: configuration, disk: options.disk)
            defer { buildpacks.close() }
            let started = try BuildSession(inputs(user: user, builderImage: builderImage, rootfs: rootfs, buildpacks: buildpacks),
                                           executor: sandbox, progress: progress, runs: log)
            session = started
            for warning in started.warnings { complain(warning, level: "warning") }
            let outputDirectory = try image?.output.map { (text) throws -> String in
                if case .layout(let directory, _) = try imageName(text) { directory } else { HostInputs.scratchBase }
            }
            let pulls = try [image?.output, image?.runImage, image?.previousImage].flatMap(registryCache)
            let disk = try options.disk.account(writingTo: [started.scratch, outputDirectory, image?.cacheDir].compactMap { $0 } + pulls,
                                                configuration: configuration)
            let registryImages = RegistryImages(insecureHosts: image?.insecureRegistries ?? [])
            let (images, output, cacheImage) = try openImages(budget: disk, registry: registryImages,
                                                              defaultRunImage: try builderImage.flatMap { try BuilderImages.runImage(of: $0) })
            defer {
                output?.removeTemporary()
                if let directory = cacheImage?.directory { try? removeTree(atPath: directory) }
            }
            try started.run(build: build, images: images, disk: disk)
            if build, let output { try output.publish(registryImages, runImage: image?.runImage) }
            if build { try cacheImage?.push(registryImages) }
            passed = true
            code = 0
            finish(progress: progress, runs: log.runs, code: code, error: nil)
        } catch let error as LifecycleError {
            complain(error.message)
            code = error.exitStatus
            finish(progress: progress, runs: log.runs, code: code, error: error.message)
        } catch let failure as Failure {
            code = failure.code
        } catch let error as OCIError {
            complain(error.message)
            code = LifecycleError.exitStatus(of: error)
        } catch let error as RegistryError {
            complain(error.message)
            code = ExitStatus.of(error)
        } catch let error as ValidationError {
            complain(error.message)
            code = ExitStatus.usage
        } catch {
            complain("\(error)")
            code = ExitStatus.system
        }
        if let auditLog, !auditLog.finish() {
            complain("the audit log \(options.audit ?? "") could not be written")
            if code == 0 { code = ExitStatus.system }
        }
        return code
    }

    private func inputs(user: StackUser, builderImage: BuilderImage?, rootfs: String?, buildpacks: BuildpackArguments) -> BuildSession.Inputs {
        var sources = BuildpackSources(buildpacks: buildpacks.directories, buildpacksDirectory: options.buildpacksDir,
                                       order: options.order, builder: options.builderFile)
        sources.builderImage = builderImage.map { ($0.buildpacksDirectory, $0.order) }
        sources.packageLayouts = buildpacks.packageLayouts
        var inputs = BuildSession.Inputs(app: options.path, sources: sources,
                                         owner: EntryOwner(uid: user.uid, gid: user.gid), home: user.home)
        inputs.platform = options.platform
        inputs.environment = options.environment
        inputs.environmentFile = options.envFile
        inputs.layers = options.layers
        inputs.keepLayers = options.keepLayers
        inputs.timeoutSeconds = options.timeout
        inputs.jobs = options.jobs
        inputs.rootfs = rootfs
        inputs.network = network
        return inputs
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
                complain("cannot write the report \(path): \(Errno.current.description)")
                return
            }
            let bytes = Array(report.json.utf8)
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
    }

    /// Opens every image input before anything is built, so a wrong path fails in a second. The output
    /// comes back beside the images: a registry output is exported into a temporary layout, then pushed.
    private func openImages(budget: DiskAccount, registry: RegistryImages, defaultRunImage: String?) throws
        -> (BuildSession.Images, OutputImage?, CacheImage?) {
        var images = BuildSession.Images()
        guard let image, image.output != nil || image.cacheDir != nil || image.cacheImage != nil else { return (images, nil, nil) }
        try SHA256.checkAvailable()
        images.cache = image.cacheDir.map { LayerCache(path: $0, budget: budget) }
        var cacheImage: CacheImage?
        if let text = image.cacheImage, let reference = registryReference(text) {
            cacheImage = try CacheImage.pull(reference, registry: registry, budget: budget)
            images.cache = LayerCache(path: cacheImage!.directory, budget: budget)
        }
        images.run = try (image.runImage ?? defaultRunImage).map {
            try ImageReference.local($0, registry: registry, budget: budget).runImage()
        }
        if let run = images.run { try Exporter.check(run) }  // before the build, not after
        guard let output = image.output else { return (images, nil, cacheImage) }
        _ = try HostInputs.sourceDateEpoch()  // a bad value fails before the build, not after
        let opened = try OutputImage.open(output, budget: budget)
        images.output = (opened.layout, opened.tag)
        images.outputName = opened.name
        do {
            images.previous = try ImageReference.previous(
                explicit: image.previousImage, output: ImageReference(directory: opened.layout.path, tag: opened.tag),
                layout: opened.layout, registry: registry, budget: budget)
        } catch {
            opened.removeTemporary()
            throw error
        }
        return (images, opened, cacheImage)
    }
}

/// Progress lines to the console, which name layers and processes a buildpack chose: made
/// plain text first.
struct ConsoleProgress: ProgressReporter {
    let console: Console
    func line(_ text: String) { console.write(Array(TerminalFilter.sanitize(Array((text + "\n").utf8)).utf8)) }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}
