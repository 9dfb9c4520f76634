import BuildpackSpec
import CrashSafety
import Glibc
import Lifecycle
import OCI
import Sandbox
import SandboxExecutor
import TerminalText

/// Wires the options of `stockade detect` and `stockade build` into a `BuildSession` run by
/// sandboxes: the executor, the audit, the disk budget, the images; prints the summary and writes
/// the report. Returns the exit code.
struct LifecycleRun {
    let options: LifecycleOptions
    let configuration: Configuration
    let build: Bool
    var network = true
    var image: ImageOptions?

    func perform() -> Int32 {
        let console = Console(fd: STDOUT_FILENO)
        let progress = ConsoleProgress(console: console)
        let log = RunLog()
        var session: BuildSession?
        var keep = false
        defer {
            do { try session?.close(keep: keep) } catch { complain("\(error)", level: "warning") }
            CleanupJournal.finished()
        }
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
            let started = try BuildSession(inputs(user: user), executor: sandbox, progress: progress, runs: log)
            session = started
            for warning in started.warnings { complain(warning, level: "warning") }
            let disk = try options.disk.account(writingTo: [started.scratch, image?.output.map { try ImageReference($0).directory },
                                                            image?.cacheDir].compactMap { $0 },
                                                configuration: configuration)
            try started.run(build: build, images: try openImages(budget: disk), disk: disk)
            keep = options.keepLayers || options.layers != nil
            code = 0
            finish(progress: progress, runs: log.runs, code: code, error: nil)
        } catch let error as LifecycleError {
            complain(error.message)
            keep = options.layers != nil
            code = error.exitStatus
            finish(progress: progress, runs: log.runs, code: code, error: error.message)
        } catch let failure as Failure {
            code = failure.code
        } catch let error as OCIError {
            complain(error.message)
            code = LifecycleError.exitStatus(of: error)
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

    private func inputs(user: StackUser) -> BuildSession.Inputs {
        var inputs = BuildSession.Inputs(
            app: options.path,
            sources: BuildpackSources(buildpacks: options.buildpacks, buildpacksDirectory: options.buildpacksDir,
                                      order: options.order, builder: options.builder),
            owner: EntryOwner(uid: user.uid, gid: user.gid), home: user.home)
        inputs.platform = options.platform
        inputs.environment = options.environment
        inputs.environmentFile = options.envFile
        inputs.layers = options.layers
        inputs.keepLayers = options.keepLayers
        inputs.timeoutSeconds = options.timeout
        inputs.jobs = options.jobs
        inputs.rootfs = options.rootfs
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
                complain("cannot write the report \(path): \(String(cString: strerror(errno)))")
                return
            }
            let bytes = Array(report.json.utf8)
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
    }

    /// Opens every image input before anything is built, so a wrong path fails in a second.
    private func openImages(budget: DiskAccount?) throws -> BuildSession.Images {
        var images = BuildSession.Images()
        guard let image, image.output != nil || image.cacheDir != nil else { return images }
        try SHA256.checkAvailable()
        images.cache = image.cacheDir.map { LayerCache(path: $0, budget: budget) }
        images.run = try image.runImage.map { try ImageReference($0).runImage() }
        if let run = images.run { try Exporter.check(run) }  // before the build, not after
        if let output = image.output {
            _ = try HostInputs.sourceDateEpoch()  // a bad value fails before the build, not after
            let reference = try ImageReference(output)
            let layout = try ImageLayout.openOrCreate(reference.directory, budget: budget)
            images.output = (layout, reference.tag)
            images.previous = try ImageReference.previous(explicit: image.previousImage, output: reference, layout: layout)
        }
        return images
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
