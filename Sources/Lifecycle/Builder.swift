import BuildpackSpec
import Glibc
import OCI

/// Phase 2: runs the detected group's `bin/build` one after another, each in
/// its own sandbox, and checks what each left in its layers directory before
/// the next one starts.
public struct Builder: Sendable {
    public var context: LifecycleContext
    public var store: BuildpackStore
    public var executor: any BuildpackExecutor
    public var progress: any ProgressReporter
    /// Where every `bin/build` is recorded as it ends.
    public var runs: any RunSink
    /// Whether `bin/build` may use the network.
    public var network: Bool
    /// What the buildpacks' writes are charged to; each is stopped when it would exceed it.
    public var disk: DiskAccount?
    /// Layers restored from the cache: each is fingerprinted around the one buildpack that owns it.
    public var restored: RestoredLayers?

    public init(context: LifecycleContext, store: BuildpackStore, executor: any BuildpackExecutor,
                progress: any ProgressReporter, runs: any RunSink, network: Bool) {
        self.context = context
        self.store = store
        self.executor = executor
        self.progress = progress
        self.runs = runs
        self.network = network
    }

    /// Builds `group` with `plan`, then writes `<layers>/config/metadata.toml`.
    /// A `Result` rather than a typed throw: see `Sandbox.run(_:stdio:) async`.
    public func build(group: GroupTOML, plan: PlanTOML) async -> Result<MetadataTOML, LifecycleError> {
        do throws(LifecycleError) {
            return .success(try await build(group: group, plan: plan))
        } catch {
            return .failure(error)
        }
    }

    /// What one buildpack's build leaves for the next ones.
    private struct Carried {
        var remaining: RemainingPlan
        var environment: Environment
        var contributions = LaunchContributions()
        /// Escaped ids of the buildpacks built so far, whose layers the next ones see.
        var built: [String] = []
    }

    /// One buildpack's `bin/build`, ready to run.
    private struct Step {
        var element: GroupElement
        var descriptor: BuildpackTOML
        var escaped: String
        var hostLayers: String
        /// Its share of the plan, which it must meet or leave (`[[unmet]]`).
        var received: BuildpackPlan
        var invocation: Invocation
        var watch: DiskWatch?
    }

    private func build(group: GroupTOML, plan: PlanTOML) async throws(LifecycleError) -> MetadataTOML {
        let layersRoot: ConfinedDirectory
        do { layersRoot = try ConfinedDirectory(path: context.layersDirectory) } catch {
            throw LifecycleError("cannot open the layers directory: \(error)", exitCode: LifecycleError.Code.buildGeneric)
        }
        var carried = Carried(remaining: RemainingPlan(plan), environment: context.environment)
        for element in group.group {
            let step = try prepare(element, in: layersRoot, carried: carried)
            progress.line("---> \(element)")
            var (run, result) = try await self.run(step)
            do {
                try judge(result, of: step, run: &run)
                try accept(step, in: layersRoot, carried: &carried, run: &run)
            } catch {
                runs.record(run)
                throw error
            }
            runs.record(run)
            carried.built.append(step.escaped)
        }
        return try writeMetadata(carried.contributions.metadata(buildpacks: group.group), in: layersRoot)
    }

    /// Its layers directory handed to the stack user, its plan written, its views: the earlier
    /// buildpacks' layers read-only (their build layers are on PATH), its own writable.
    private func prepare(_ element: GroupElement, in layersRoot: ConfinedDirectory,
                         carried: Carried) throws(LifecycleError) -> Step {
        let entry: BuildpackStore.Entry
        do { entry = try store.entry(for: element) } catch {
            throw LifecycleError.from(error, phaseCode: LifecycleError.Code.buildGeneric)
        }
        let descriptor = entry.descriptor
        let escaped = BuildpackID.escape(element.id)
        let received = carried.remaining.buildpackPlan(for: element)
        let planDirectory = context.scratchDirectory + "/build-\(escaped)-\(element.version)"
        let hostLayers = context.layersDirectory + "/" + escaped
        let spec: BuildpackInvocation
        do {
            try layersRoot.createDirectory(escaped)
            try executor.makeWritable(hostLayers)
            let plans = try ConfinedDirectory(path: context.scratchDirectory)
            try plans.createDirectory(String(planDirectory.dropFirst(context.scratchDirectory.count + 1)))
            try received.write(to: try ConfinedDirectory(path: planDirectory), at: PlatformPaths.planFile)
            spec = try BuildpackInvocation.build(
                descriptor: descriptor, buildpackDirectory: PlatformPaths.buildpack(descriptor),
                appDirectory: PlatformPaths.workspace, layersDirectory: PlatformPaths.layers(of: descriptor),
                platformDirectory: PlatformPaths.platform, platformSource: context.platformDirectory,
                planPath: PlatformPaths.buildPlan + "/" + PlatformPaths.planFile, base: carried.environment,
                target: context.target, executionEnvironment: "production")
        } catch {
            throw LifecycleError("cannot prepare \(element)'s build: \(error)", exitCode: LifecycleError.Code.buildGeneric)
        }
        var views: [Invocation.View] = [
            .init(hostPath: context.appDirectory, path: PlatformPaths.workspace, writable: true),
        ]
        for earlier in carried.built {
            views.append(.init(hostPath: context.layersDirectory + "/" + earlier,
                               path: PlatformPaths.layers + "/" + earlier, writable: false))
        }
        views += [
            .init(hostPath: hostLayers, path: PlatformPaths.layers(of: descriptor), writable: true),
            .init(hostPath: context.platformDirectory, path: PlatformPaths.platform, writable: false),
            .init(hostPath: entry.directory, path: PlatformPaths.buildpack(descriptor), writable: false),
            .init(hostPath: planDirectory, path: PlatformPaths.buildPlan, writable: false),
        ]
        let watch = disk.map { DiskWatch(account: $0, workspace: context.appDirectory, layers: hostLayers) }
        let invocation = Invocation(
            phase: .build, buildpack: element.description, executable: spec.executable, arguments: spec.arguments,
            environment: spec.environment.envp, workingDirectory: spec.workingDirectory, views: views,
            scratch: [PlatformPaths.layers], network: network, timeoutSeconds: context.timeoutSeconds,
            output: .stream(prefix: "[\(element.id)] "), disk: watch?.guardForBuildpack)
        return Step(element: element, descriptor: descriptor, escaped: escaped, hostLayers: hostLayers,
                    received: received, invocation: invocation, watch: watch)
    }

    /// Runs `bin/build`, its restored layers fingerprinted around it; then charges what it wrote
    /// to the disk budget. The run it returns passed unless the budget says otherwise.
    private func run(_ step: Step) async throws(LifecycleError) -> (BuildpackRun, InvocationResult) {
        restored?.seal(escaped: step.escaped, layersDirectory: context.layersDirectory)
        let result: InvocationResult
        switch await executor.run(step.invocation) {
        case .success(let value): result = value
        case .failure(let error): throw LifecycleError(error.message, exitCode: error.exitCode)
        }
        // Before anything of Stockade's touches the layers again (a chmod changes ctimes).
        restored?.settle(escaped: step.escaped, layersDirectory: context.layersDirectory)
        var run = BuildpackRun(phase: .build, id: step.element.id, version: step.element.version, outcome: .pass,
                               exitCode: 0, message: nil, wallMicroseconds: result.wallMicroseconds,
                               cpuMicroseconds: result.cpuMicroseconds, maxResidentKiB: result.maxResidentKiB,
                               audit: result.audit)
        if let watch = step.watch {
            do {
                // What a subordinate range's stack user hid in private directories counts too.
                try executor.makeReadable([step.hostLayers, context.appDirectory])
            } catch {
                throw LifecycleError(error.message, exitCode: error.exitCode)
            }
            let hitFileLimit = result.ending == .signaled(SIGXFSZ) || result.ending == .exited(128 + SIGXFSZ)
            if let overrun = watch.settle(buildpack: step.element.description, hitFileLimit: hitFileLimit) {
                run.outcome = .error
                run.exitCode = nil
                run.message = overrun
                runs.record(run)
                throw LifecycleError(overrun, exitCode: LifecycleError.Code.buildOverBudget)
            }
        }
        return (run, result)
    }
    /// How `bin/build` ended: anything but exit 0 fails the build (53 when a resource limit stopped it).
    private func judge(_ result: InvocationResult, of step: Step, run: inout BuildpackRun) throws(LifecycleError) {
        switch result.ending {
        case .exited(0):
            return
        case .exited(let code):
            run.outcome = .fail
            run.exitCode = code
            run.message = "bin/build exited with \(code)"
        case .signaled(let signal):
            run.outcome = .fail
            run.exitCode = 128 + signal
            run.message = "bin/build was killed by signal \(signal)"
        case .timedOut:
            run.outcome = .timeout
            run.exitCode = nil
            run.message = "bin/build timed out after \(Detector.seconds(context.timeoutSeconds ?? 0)) s"
        case .notRunnable(let reason):
            run.outcome = .error
            run.exitCode = nil
            run.message = reason
        }
        var code = LifecycleError.Code.buildFailed
        if let limit = result.limitReached {
            run.message = (run.message ?? "bin/build failed") + ": " + limit
            code = LifecycleError.Code.buildLimitReached
        }
        throw LifecycleError("\(step.element): \(run.message ?? "failed")", exitCode: code)
    }

    /// What the buildpack wrote is hostile input: confined, capped, checked; then its launch
    /// contributions, met plan entries and build layers pass to the next buildpacks.
    private func accept(_ step: Step, in layersRoot: ConfinedDirectory, carried: inout Carried,
                        run: inout BuildpackRun) throws(LifecycleError) {
        let descriptor = step.descriptor
        let buildpack = step.element.description
        do {
            let layers = try ConfinedDirectory(path: step.hostLayers, presentedAs: PlatformPaths.layers(of: descriptor))
            let scan = try BuildpackLayers.scan(layers, buildpack: buildpack, api: descriptor.api)
            try Self.check(scan, buildpack: buildpack, in: layers, reusable: context.reusableLaunchLayers,
                           escaped: step.escaped)
            try Self.collectSBOMs(scan, from: layers, into: layersRoot, escaped: step.escaped, descriptor: descriptor,
                                  buildpack: buildpack, disk: disk)
            try scan.renameIgnoredLayers(in: layers)
            let launch = try LaunchTOML.readIfPresent(from: layers, at: LaunchTOML.defaultFileName,
                                                      buildpack: buildpack, buildpackAPI: descriptor.api)
            let buildTOML = try BuildTOML.readIfPresent(from: layers, at: BuildTOML.defaultFileName,
                                                        buildpack: buildpack, buildpackAPI: descriptor.api)
            _ = try StoreTOML.readIfPresent(from: layers, at: StoreTOML.defaultFileName, buildpack: buildpack,
                                            buildpackAPI: descriptor.api)
            try carried.remaining.complete(step.element, received: step.received, buildTOML: buildTOML,
                                           context: DocumentContext(file: layers.displayPath(BuildTOML.defaultFileName),
                                                                    buildpack: buildpack, buildpackAPI: descriptor.api))
            if let launch {
                for warning in carried.contributions.add(launch, buildpackID: step.element.id) {
                    progress.line("warning: \(buildpack): \(warning)")
                }
            }
            try carried.environment.applyBuildLayers(of: layers, scan)
        } catch {
            run.outcome = .error
            run.message = "\(error)"
            throw LifecycleError("\(step.element) left invalid output: \(error)", exitCode: LifecycleError.Code.buildFailed)
        }
    }

    private func writeMetadata(_ metadata: MetadataTOML, in layersRoot: ConfinedDirectory) throws(LifecycleError) -> MetadataTOML {
        do {
            try layersRoot.createDirectory("config")
            try metadata.write(to: try layersRoot.subdirectory("config"), at: MetadataTOML.defaultFileName)
        } catch {
            throw LifecycleError("cannot write config/metadata.toml: \(error)", exitCode: LifecycleError.Code.buildGeneric)
        }
        return metadata
    }

    /// The most an SBOM file may hold: SBOMs of large apps run to megabytes, not hundreds.
    static let sbomLimit = 64 << 20

    /// Copies the buildpack's SBOM files to `<layers>/sbom/{launch,build,cache}/<id>/` (§5.4), where
    /// export takes the launch ones from; the buildpack cannot write there.
    static func collectSBOMs(_ scan: BuildpackLayers, from layers: ConfinedDirectory, into root: ConfinedDirectory,
                             escaped: String, descriptor: BuildpackTOML, buildpack: String,
                             disk: DiskAccount? = nil) throws(SpecError) {
        let files = try SBOMFile.find(in: try layers.entries(), layers: scan, escapedID: escaped,
                                      sbomFormats: descriptor.info.sbomFormats, directory: layers, buildpack: buildpack)
        for file in files {
            let bytes = try layers.readFile(file.fileName, limit: sbomLimit)
            do {
                try disk?.charge(DiskAccount.blocks(UInt64(bytes.count)) * UInt64(file.destinations.count),
                                 for: "its SBOM's copies")
            } catch {
                throw SpecError(.rule, "\(error)", file: layers.displayPath(file.fileName), buildpack: buildpack)
            }
            for destination in file.destinations {
                let path = "sbom/" + destination
                try root.createDirectory(String(path[..<path.lastIndex(of: "/")!]))
                try root.writeFile(path, contents: bytes)
            }
        }
    }

    /// Layer rules the scan leaves to the platform: a layer that asks to be
    /// used at build, cached or launched needs its directory, except a launch
    /// layer the previous image holds.
    static func check(_ scan: BuildpackLayers, buildpack: String, in layers: ConfinedDirectory,
                      reusable: Set<String> = [], escaped: String = "") throws(SpecError) {
        for layer in scan.layers {
            guard let metadata = layer.metadata else { continue }
            let keptFromImage = metadata.launch && !metadata.build && !metadata.cache
                && reusable.contains(escaped + "/" + layer.name)
            let needsContent = (metadata.build || metadata.cache || metadata.launch) && !keptFromImage
            if needsContent && layer.contentKind != .directory {
                let what = layer.contentKind.map { "is a \($0.rawValue), not a directory" } ?? "has no directory"
                throw SpecError(.rule, "layer \"\(layer.name)\" (\(metadata.typeSummary)) \(what)",
                                file: layers.displayPath(layer.name + ".toml"), buildpack: buildpack)
            }
        }
    }
}

extension LayerTOML {
    var typeSummary: String {
        let set = [("launch", launch), ("build", build), ("cache", cache)].filter(\.1).map { "\($0.0) = true" }
        return set.isEmpty ? "no types" : set.joined(separator: ", ")
    }
}
