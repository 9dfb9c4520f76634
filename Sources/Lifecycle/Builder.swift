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
    /// Whether `bin/build` may use the network.
    public var network: Bool
    /// What the buildpacks' writes are charged to; each is stopped when it would exceed it.
    public var disk: DiskAccount?
    /// Layers restored from the cache: each is fingerprinted around the one buildpack that owns it.
    public var restored: RestoredLayers?

    public init(context: LifecycleContext, store: BuildpackStore, executor: any BuildpackExecutor,
                progress: any ProgressReporter, network: Bool) {
        self.context = context
        self.store = store
        self.executor = executor
        self.progress = progress
        self.network = network
    }

    public struct Build: Sendable {
        public var metadata: MetadataTOML
        public var runs: [BuildpackRun]
    }

    /// Builds `group` with `plan`, then writes `<layers>/config/metadata.toml`.
    /// A `Result` rather than a typed throw: see `Sandbox.run(_:stdio:) async`.
    public func build(group: GroupTOML, plan: PlanTOML) async -> Result<Build, LifecycleError> {
        var runs: [BuildpackRun] = []
        do throws(LifecycleError) {
            return .success(try await build(group: group, plan: plan, runs: &runs))
        } catch {
            var error = error
            if error.runs.isEmpty { error.runs = runs }
            return .failure(error)
        }
    }

    private func build(group: GroupTOML, plan: PlanTOML, runs: inout [BuildpackRun]) async throws(LifecycleError) -> Build {
        var remaining = RemainingPlan(plan)
        var environment = context.environment
        var contributions = LaunchContributions()
        var built: [(descriptor: BuildpackTOML, entry: BuildpackStore.Entry)] = []
        let layersRoot: ConfinedDirectory
        do { layersRoot = try ConfinedDirectory(path: context.layersDirectory) } catch {
            throw LifecycleError("cannot open the layers directory: \(error)", exitCode: LifecycleError.Code.buildGeneric)
        }

        for element in group.group {
            let entry: BuildpackStore.Entry
            do { entry = try store.entry(for: element) } catch {
                throw LifecycleError.from(error, phaseCode: LifecycleError.Code.buildGeneric, runs: runs)
            }
            let descriptor = entry.descriptor
            let escaped = BuildpackID.escape(element.id)
            let received = remaining.buildpackPlan(for: element)
            let planDirectory = context.scratchDirectory + "/build-\(escaped)-\(element.version)"
            let hostLayers = context.layersDirectory + "/" + escaped
            let spec: BuildpackInvocation
            do {
                try layersRoot.createDirectory(escaped)
                try executor.makeWritable(hostLayers)
                let plans = try ConfinedDirectory(path: context.scratchDirectory)
                try plans.createDirectory(String(planDirectory.dropFirst(context.scratchDirectory.count + 1)))
                try received.write(to: try ConfinedDirectory(path: planDirectory), at: SandboxLayout.planFile)
                spec = try BuildpackInvocation.build(
                    descriptor: descriptor, buildpackDirectory: SandboxLayout.buildpack(descriptor),
                    appDirectory: SandboxLayout.workspace, layersDirectory: SandboxLayout.layers(of: descriptor),
                    platformDirectory: SandboxLayout.platform, platformSource: context.platformDirectory,
                    planPath: SandboxLayout.buildPlan + "/" + SandboxLayout.planFile, base: environment,
                    target: context.target, executionEnvironment: "production")
            } catch let error as LifecycleError {
                throw error
            } catch {
                throw LifecycleError("cannot prepare \(element)'s build: \(error)", exitCode: LifecycleError.Code.buildGeneric,
                                     runs: runs)
            }

            progress.line("---> \(element)")
            var views: [Invocation.View] = [
                .init(hostPath: context.appDirectory, path: SandboxLayout.workspace, writable: true),
            ]
            // Earlier buildpacks' layers read-only: their build layers are on PATH.
            for earlier in built {
                let name = BuildpackID.escape(earlier.descriptor.info.id)
                views.append(.init(hostPath: context.layersDirectory + "/" + name,
                                   path: SandboxLayout.layers + "/" + name, writable: false))
            }
            views += [
                .init(hostPath: hostLayers, path: SandboxLayout.layers(of: descriptor), writable: true),
                .init(hostPath: context.platformDirectory, path: SandboxLayout.platform, writable: false),
                .init(hostPath: entry.directory, path: SandboxLayout.buildpack(descriptor), writable: false),
                .init(hostPath: planDirectory, path: SandboxLayout.buildPlan, writable: false),
            ]
            let watch = disk.map { DiskWatch(account: $0, workspace: context.appDirectory, layers: hostLayers) }
            let invocation = Invocation(
                phase: .build, buildpack: element.description, executable: spec.executable, arguments: spec.arguments,
                environment: spec.environment.envp, workingDirectory: spec.workingDirectory, views: views,
                scratch: [SandboxLayout.layers], network: network, timeoutSeconds: context.timeoutSeconds,
                output: .stream(prefix: "[\(element.id)] "), disk: watch?.guardForBuildpack)
            restored?.seal(escaped: escaped, layersDirectory: context.layersDirectory)
            let result: InvocationResult
            switch await executor.run(invocation) {
            case .success(let value): result = value
            case .failure(let error): throw LifecycleError(error.message, exitCode: error.exitCode, runs: runs)
            }
            // Before anything of Stockade's touches the layers again (a chmod changes ctimes).
            restored?.settle(escaped: escaped, layersDirectory: context.layersDirectory)
            var run = BuildpackRun(phase: .build, id: element.id, version: element.version, outcome: .pass, exitCode: 0,
                                   message: nil, wallMicroseconds: result.wallMicroseconds,
                                   cpuMicroseconds: result.cpuMicroseconds, maxResidentKiB: result.maxResidentKiB,
                                   audit: result.audit)
            if let watch {
                do {
                    // What a subordinate range's stack user hid in private directories counts too.
                    try executor.makeReadable(hostLayers)
                    try executor.makeReadable(context.appDirectory)
                } catch {
                    throw LifecycleError(error.message, exitCode: error.exitCode, runs: runs)
                }
                let hitFileLimit = result.ending == .signaled(SIGXFSZ) || result.ending == .exited(128 + SIGXFSZ)
                if let overrun = watch.settle(buildpack: element.description, hitFileLimit: hitFileLimit) {
                    run.outcome = .error
                    run.exitCode = nil
                    run.message = overrun
                    runs.append(run)
                    throw LifecycleError(overrun, exitCode: LifecycleError.Code.buildOverBudget, runs: runs)
                }
            }
            switch result.ending {
            case .exited(0):
                break
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
            if run.outcome != .pass, let limit = result.limitReached {
                run.message = (run.message ?? "bin/build failed") + ": " + limit
                code = LifecycleError.Code.buildLimitReached
            }
            if run.outcome != .pass {
                runs.append(run)
                throw LifecycleError("\(element): \(run.message ?? "failed")", exitCode: code, runs: runs)
            }

            // What the buildpack wrote is hostile input: confined, capped, checked.
            do {
                let layers = try ConfinedDirectory(path: hostLayers, presentedAs: SandboxLayout.layers(of: descriptor))
                let buildpack = element.description
                let scan = try BuildpackLayers.scan(layers, buildpack: buildpack, api: descriptor.api)
                try Self.check(scan, buildpack: buildpack, in: layers, reusable: context.reusableLaunchLayers, escaped: escaped)
                try Self.collectSBOMs(scan, from: layers, into: layersRoot, escaped: escaped, descriptor: descriptor,
                                      buildpack: buildpack, disk: disk)
                try scan.renameIgnoredLayers(in: layers)
                let launch = try LaunchTOML.readIfPresent(from: layers, at: LaunchTOML.defaultFileName,
                                                          buildpack: buildpack, buildpackAPI: descriptor.api)
                let buildTOML = try BuildTOML.readIfPresent(from: layers, at: BuildTOML.defaultFileName,
                                                            buildpack: buildpack, buildpackAPI: descriptor.api)
                _ = try StoreTOML.readIfPresent(from: layers, at: StoreTOML.defaultFileName, buildpack: buildpack,
                                                buildpackAPI: descriptor.api)
                try remaining.complete(element, received: received, buildTOML: buildTOML,
                                       context: DocumentContext(file: layers.displayPath(BuildTOML.defaultFileName),
                                                                buildpack: buildpack, buildpackAPI: descriptor.api))
                if let launch {
                    for warning in contributions.add(launch, buildpackID: element.id) {
                        progress.line("warning: \(buildpack): \(warning)")
                    }
                }
                try environment.applyBuildLayers(of: layers, scan)
            } catch {
                run.outcome = .error
                run.message = "\(error)"
                runs.append(run)
                throw LifecycleError("\(element) left invalid output: \(error)", exitCode: LifecycleError.Code.buildFailed,
                                     runs: runs)
            }
            runs.append(run)
            built.append((descriptor, entry))
        }

        let metadata = contributions.metadata(buildpacks: group.group)
        do {
            try layersRoot.createDirectory("config")
            try metadata.write(to: try layersRoot.subdirectory("config"), at: MetadataTOML.defaultFileName)
        } catch {
            throw LifecycleError("cannot write config/metadata.toml: \(error)", exitCode: LifecycleError.Code.buildGeneric,
                                 runs: runs)
        }
        return Build(metadata: metadata, runs: runs)
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
