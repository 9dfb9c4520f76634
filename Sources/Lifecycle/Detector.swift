import BuildpackSpec
import Glibc
import OCI
import SystemCalls
import SystemPackage
import TerminalText

/// Phase 1: tries the order's groups until one passes, running each
/// buildpack's `bin/detect` through the executor, several at a time.
public struct Detector: Sendable {
    public var context: LifecycleContext
    public var store: BuildpackStore
    public var executor: any BuildpackExecutor
    public var progress: any ProgressReporter
    /// Where every `bin/detect` is recorded as it ends.
    public var runs: any RunSink
    /// How many `bin/detect` run at once.
    public var jobs: Int
    /// Bytes of each detect's output kept for the messages.
    public static let outputLimit = 64 << 10
    /// The most a detect may write into one file (its plan): one byte more than the plan reader takes.
    static let planLimit = ConfinedDirectory.defaultReadLimit + 1
    /// What detection may write is bounded by the budget's remainder; its plan files are not charged.
    public var disk: DiskAccount?
    /// Whether `group.toml` and `plan.toml` go into the layers directory (the `detector` phase
    /// writes them where `-group` and `-plan` say instead).
    public var writesPlanFiles = true

    public init(context: LifecycleContext, store: BuildpackStore, executor: any BuildpackExecutor,
                progress: any ProgressReporter, runs: any RunSink, jobs: Int) {
        self.context = context
        self.store = store
        self.executor = executor
        self.progress = progress
        self.runs = runs
        self.jobs = max(1, jobs)
    }

    /// Detects, then writes `group.toml` and `plan.toml` into the layers directory (`writesPlanFiles`).
    /// A `Result` rather than a typed throw: see `Sandbox.run(_:stdio:) async`.
    public func detect(order: [OrderGroup]) async -> Result<DetectedGroup, LifecycleError> {
        do throws(LifecycleError) {
            return .success(try await detect(candidates: try expand(order)))
        } catch {
            return .failure(error)
        }
    }

    private func expand(_ order: [OrderGroup]) throws(LifecycleError) -> [CandidateGroup] {
        do {
            return try OrderExpansion.candidates(order: order) { (element) throws(SpecError) in
                try store.descriptor(for: element)
            }
        } catch {
            throw LifecycleError.from(error, phaseCode: LifecycleError.Code.detectGeneric)
        }
    }

    private func detect(candidates: [CandidateGroup]) async throws(LifecycleError) -> DetectedGroup {
        var ran: [BuildpackRun] = []
        var outcomes: [ModuleKey: DetectOutcome] = [:]
        var failures: [(CandidateGroup, DetectFailure)] = []
        for candidate in candidates {
            let pending = candidate.elements.filter { outcomes[$0.element.key] == nil }
            for (element, outcome, run) in try await detectAll(pending).get() {
                outcomes[element.key] = outcome
                ran.append(run)
                runs.record(run)
            }
            let resolution: GroupDetection
            do {
                resolution = try GroupResolution.resolve(candidate.groupElements, outcomes: outcomes)
            } catch {
                throw LifecycleError.from(error, phaseCode: LifecycleError.Code.detectGeneric)
            }
            switch resolution {
            case .passed(let detected):
                report(candidate, outcomes: outcomes, ran: ran)
                if writesPlanFiles { try write(detected) }
                return detected
            case .failed(let failure):
                report(candidate, outcomes: outcomes, ran: ran)
                failures.append((candidate, failure))
            }
        }
        var message = "no buildpack group passed detection"
        if candidates.isEmpty { message = "the order has no groups to detect" }
        for (index, (candidate, failure)) in failures.enumerated() {
            let names = candidate.groupElements.map { $0.optional ? "\($0)?" : "\($0)" }.joined(separator: ", ")
            message += "\n  group \(index + 1) [\(names)]:"
            for line in failure.log { message += "\n    " + line }
        }
        throw LifecycleError(message, exitCode: DetectFailure.exitCode(for: failures.map(\.1)))
    }

    private func report(_ candidate: CandidateGroup, outcomes: [ModuleKey: DetectOutcome], ran: [BuildpackRun]) {
        progress.line("group: " + candidate.groupElements.map(\.description).joined(separator: ", "))
        for element in candidate.groupElements {
            guard let run = ran.last(where: { $0.id == element.id && $0.version == element.version }) else { continue }
            var outcome = run.outcome
            if outcome == .fail && element.optional { outcome = .skip }
            var line = "  \(outcome.rawValue.padding(5)) \(element)"
            if let message = run.message { line += ": \(message)" }
            progress.line(line)
        }
    }

    private func write(_ detected: DetectedGroup) throws(LifecycleError) {
        do {
            let layers = try ConfinedDirectory(path: context.layersDirectory)
            try detected.group.write(to: layers, at: GroupTOML.defaultFileName)
            try detected.plan.write(to: layers, at: PlanTOML.defaultFileName)
        } catch {
            throw LifecycleError("cannot write group.toml and plan.toml: \(error)", exitCode: LifecycleError.Code.detectGeneric)
        }
    }

    /// Runs every pending element's detect, at most `jobs` at a time; the
    /// results come back in the elements' order.
    private func detectAll(_ elements: [CandidateElement]) async
        -> Result<[(GroupElement, DetectOutcome, BuildpackRun)], LifecycleError>
    {
        var results: [ModuleKey: (DetectOutcome, BuildpackRun)] = [:]
        // Each task returns its element's key rather than a captured loop
        // index, and async calls return `Result`s (here, `Sandbox.run`,
        // `runBlocking`) rather than throw: swiftc 6.3.1 -O hands a task that
        // catches around `try await` the first iteration's index. Remove both
        // when this prints "ok" under `swiftc -O -parse-as-library`:
        //
        //     struct E: Error {}
        //     @inline(never) func work(_ i: Int) async throws(E) -> Int { i }
        //     @main struct Main {
        //         static func main() async {
        //             let seen = await withTaskGroup(of: (Int, Int).self) { group in
        //                 for i in 0..<4 {
        //                     group.addTask { do throws(E) { return (i, try await work(i)) } catch { return (i, -1) } }
        //                 }
        //                 var all: [(Int, Int)] = []
        //                 for await pair in group { all.append(pair) }
        //                 return all
        //             }
        //             print(seen.allSatisfy { $0.0 == $0.1 } ? "ok" : "wrong: \(seen)")  // wrong: [(0, 0), (0, 1), ...]
        //         }
        //     }
        let failure = await withTaskGroup(of: (ModuleKey, Result<(DetectOutcome, BuildpackRun), LifecycleError>).self) { group in
            var next = 0
            var running = 0
            var firstError: LifecycleError?
            while true {
                // Keep `jobs` detects running; start no new one after an error.
                while next < elements.count && running < jobs && firstError == nil {
                    let element = elements[next]
                    next += 1
                    running += 1
                    group.addTask { (element.element.key, await detect(element)) }
                }
                guard let (key, result) = await group.next() else { break }
                running -= 1
                switch result {
                case .success(let value): results[key] = value
                case .failure(let error): firstError = firstError ?? error
                }
            }
            return firstError
        }
        if let failure { return .failure(failure) }
        return .success(elements.compactMap { candidate in
            results[candidate.element.key].map { (candidate.element, $0.0, $0.1) }
        })
    }

    /// One `bin/detect`, in a sandbox of its own.
    func detect(_ candidate: CandidateElement) async -> Result<(DetectOutcome, BuildpackRun), LifecycleError> {
        do throws(LifecycleError) {
            let (plan, invocation, run) = try prepare(candidate)
            guard let invocation else { return .success((plan, run)) }
            switch await executor.run(invocation) {
            case .success(let result): return .success(classify(result, candidate: candidate, run: run))
            case .failure(let error):
                runs.record(run)
                throw LifecycleError(error.message, exitCode: error.exitCode)
            }
        } catch {
            return .failure(error)
        }
    }

    /// The invocation of one `bin/detect`, or the outcome when it must not run.
    private func prepare(_ candidate: CandidateElement) throws(LifecycleError) -> (DetectOutcome, Invocation?, BuildpackRun) {
        let element = candidate.element
        let descriptor = candidate.descriptor
        var run = BuildpackRun(phase: .detect, id: element.id, version: element.version, outcome: .error,
                               exitCode: nil, message: nil, wallMicroseconds: 0, cpuMicroseconds: 0, maxResidentKiB: 0)
        let entry: BuildpackStore.Entry
        do { entry = try store.entry(for: element) } catch {
            throw LifecycleError.from(error, phaseCode: LifecycleError.Code.detectGeneric)
        }
        // Platform API ≥ 0.12: a required element with no matching target is an error, unrun.
        let binaries = BuildpackStore.list(entry.directory + "/bin")
        let targets = descriptor.effectiveTargets(binaries: binaries)
        if !element.optional && !targets.isEmpty && !targets.contains(where: { $0.matches(context.target) }) {
            let message = "no target of the buildpack matches \(context.target.os)/\(context.target.arch)"
            run.message = message
            return (.error(message), nil, run)
        }

        let planDirectory = context.scratchDirectory + "/detect-\(BuildpackID.escape(element.id))-\(element.version)"
        let buildpackPath = PlatformPaths.buildpack(descriptor)
        let spec: BuildpackInvocation
        do {
            try makeEmptyPlan(in: planDirectory)
            try executor.makeWritable(planDirectory)
            spec = try BuildpackInvocation.detect(
                descriptor: descriptor, buildpackDirectory: buildpackPath, appDirectory: PlatformPaths.workspace,
                platformDirectory: PlatformPaths.platform, platformSource: context.platformDirectory,
                planPath: PlatformPaths.detectPlan + "/" + PlatformPaths.planFile, base: context.environment,
                target: context.target, executionEnvironment: "production")
        } catch let error as LifecycleError {
            throw error
        } catch {
            throw LifecycleError("cannot prepare \(element)'s detect: \(error)", exitCode: LifecycleError.Code.detectGeneric)
        }
        let invocation = Invocation(
            phase: .detect, buildpack: element.description, executable: spec.executable, arguments: spec.arguments,
            environment: spec.environment.envp, workingDirectory: spec.workingDirectory,
            views: [.init(hostPath: context.appDirectory, path: PlatformPaths.workspace, writable: false),
                    .init(hostPath: context.platformDirectory, path: PlatformPaths.platform, writable: false),
                    .init(hostPath: entry.directory, path: buildpackPath, writable: false),
                    .init(hostPath: planDirectory, path: PlatformPaths.detectPlan, writable: true)],
            network: false, timeoutSeconds: context.timeoutSeconds, output: .capture(limit: Self.outputLimit),
            disk: disk.map { DiskGuard(maxFileSize: min($0.remaining, UInt64(Self.planLimit))) })
        return (.skipped, invocation, run)
    }

    /// What a finished `bin/detect` means.
    private func classify(_ result: InvocationResult, candidate: CandidateElement, run: BuildpackRun) -> (DetectOutcome, BuildpackRun) {
        let element = candidate.element
        let planDirectory = context.scratchDirectory + "/detect-\(BuildpackID.escape(element.id))-\(element.version)"
        var run = run
        run.wallMicroseconds = result.wallMicroseconds
        run.cpuMicroseconds = result.cpuMicroseconds
        run.maxResidentKiB = result.maxResidentKiB
        run.audit = result.audit
        let output = Self.lastLine(result.output)
        switch result.ending {
        case .exited(let code) where code == 0 || code == 100:
            run.exitCode = code
            let outcome: DetectOutcome
            do {
                outcome = DetectOutcome.fromDetect(exitCode: code, planDirectory: try ConfinedDirectory(path: planDirectory),
                                                   planFile: PlatformPaths.planFile, element: element)
            } catch {
                outcome = .error("cannot read the plan: \(error)")
            }
            switch outcome {
            case .pass: run.outcome = .pass
            case .fail: run.outcome = element.optional ? .skip : .fail
            case .error(let message): run.message = message
            case .skipped: run.outcome = .skip
            }
            return (outcome, run)
        case .exited(let code):
            run.exitCode = code
            run.message = "bin/detect exited with \(code)" + (output.map { ": \($0)" } ?? "")
        case .signaled(let signal):
            run.exitCode = 128 + signal
            run.message = "bin/detect was killed by signal \(signal)"
        case .timedOut:
            run.outcome = .timeout
            run.message = "bin/detect timed out after \(Self.seconds(context.timeoutSeconds ?? 0)) s"
        case .notRunnable(let reason):
            run.message = reason
        }
        if let limit = result.limitReached { run.message = (run.message ?? "bin/detect failed") + ": " + limit }
        return (.error(run.message ?? "error"), run)
    }

    private func makeEmptyPlan(in directory: String) throws(LifecycleError) {
        guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
            throw LifecycleError("cannot create \(directory): \(Errno.current)",
                                 exitCode: LifecycleError.Code.detectGeneric)
        }
        let fd = open(directory + "/" + PlatformPaths.planFile, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw LifecycleError("cannot create a plan file in \(directory): \(Errno.current)",
                                 exitCode: LifecycleError.Code.detectGeneric)
        }
        close(fd)
    }

    /// The last non-empty line of a process's output, for a one-line message:
    /// plain text, with nothing a terminal would act on.
    static func lastLine(_ output: [UInt8]) -> String? {
        let text = TerminalFilter.sanitize(output, keepsColour: false)
        return text.split(separator: "\n").last.map { String($0.prefix(200)) }
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? String(Int64(value)) : String(value)
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
