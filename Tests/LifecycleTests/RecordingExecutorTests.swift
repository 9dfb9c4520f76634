import BuildpackSpec
import Foundation
import Lifecycle
import Synchronization
import Testing

/// What one scripted `bin/detect` or `bin/build` does: the files it writes beneath its writable
/// view (detect: its plan directory; build: its layers directory) and how it ends.
struct Script: Sendable {
    var ending: InvocationResult.Ending = .exited(0)
    var files: [String: String] = [:]
    var output = ""
    var limitReached: String?
}

/// A `BuildpackExecutor` that runs nothing: it plays each buildpack's script and records every
/// invocation, so detection and build are shown in milliseconds without sandboxes.
final class RecordingExecutor: BuildpackExecutor {
    /// By `"detect id@version"` / `"build id@version"`; a buildpack without one exits 0 writing nothing.
    let scripts: [String: Script]
    /// Invocations the executor cannot start at all.
    let unrunnable: [String: ExecutionError]
    private let recorded = Mutex<[Invocation]>([])

    init(_ scripts: [String: Script] = [:], unrunnable: [String: ExecutionError] = [:]) {
        self.scripts = scripts
        self.unrunnable = unrunnable
    }

    var calls: [Invocation] { recorded.withLock { $0 } }
    var called: [String] { calls.map { "\($0.phase.rawValue) \($0.buildpack)" } }

    func run(_ invocation: Invocation) async -> Result<InvocationResult, ExecutionError> {
        recorded.withLock { $0.append(invocation) }
        let key = "\(invocation.phase.rawValue) \(invocation.buildpack)"
        if let error = unrunnable[key] { return .failure(error) }
        let script = scripts[key] ?? Script()
        let own = invocation.phase == .detect ? "/cnb/detect" : "/layers/"
        let target = invocation.views.first { $0.writable && $0.path.hasPrefix(own) }!.hostPath
        for (name, contents) in script.files {
            let url = URL(fileURLWithPath: target + "/" + name)
            try! FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try! contents.write(to: url, atomically: false, encoding: .utf8)
        }
        return .success(InvocationResult(ending: script.ending, output: Array(script.output.utf8), wallMicroseconds: 1500,
                                         cpuMicroseconds: 700, maxResidentKiB: 4096, limitReached: script.limitReached))
    }
}

/// Progress lines kept for the assertions.
final class Lines: ProgressReporter {
    private let kept = Mutex<[String]>([])
    func line(_ text: String) { kept.withLock { $0.append(text) } }
    var all: [String] { kept.withLock { $0 } }
}

/// Buildpacks on disk (descriptors and empty executables) and the directories of one session.
struct Workbench {
    let root: String
    var app: String { root + "/app" }
    var layers: String { root + "/layers" }

    init(buildpacks: [String]) throws {
        root = NSTemporaryDirectory() + "recording-" + UUID().uuidString
        for directory in ["app", "platform/env", "layers", "scratch"] {
            try FileManager.default.createDirectory(atPath: root + "/" + directory, withIntermediateDirectories: true)
        }
        for id in buildpacks {
            let directory = root + "/buildpacks/" + id.replacingOccurrences(of: "/", with: "_")
            try FileManager.default.createDirectory(atPath: directory + "/bin", withIntermediateDirectories: true)
            try "api = \"0.10\"\n[buildpack]\nid = \"\(id)\"\nversion = \"1.0.0\"\n"
                .write(toFile: directory + "/buildpack.toml", atomically: false, encoding: .utf8)
            for executable in ["detect", "build"] {
                FileManager.default.createFile(atPath: directory + "/bin/" + executable, contents: Data("#!/bin/sh\n".utf8),
                                               attributes: [.posixPermissions: 0o755])
            }
        }
    }

    func store() throws -> BuildpackStore {
        var store = BuildpackStore()
        for name in try FileManager.default.contentsOfDirectory(atPath: root + "/buildpacks").sorted() {
            try store.add(directory: root + "/buildpacks/" + name)
        }
        return store
    }

    func session(_ executor: RecordingExecutor, runs: RunLog = RunLog(), progress: Lines = Lines()) throws -> LifecycleSession {
        let context = LifecycleContext(
            appDirectory: app, platformDirectory: root + "/platform", layersDirectory: layers,
            scratchDirectory: root + "/scratch",
            environment: LifecycleContext.baseEnvironment(from: [], home: "/home/cnb"),
            target: HostInputs.target(rootfs: nil), timeoutSeconds: nil)
        var session = LifecycleSession(context: context, store: try store(), executor: executor, progress: progress,
                                       runs: runs, owner: .init(uid: 1000, gid: 1000))
        session.jobs = 2
        return session
    }

    func read(_ relative: String) -> String { (try? String(contentsOfFile: root + "/" + relative, encoding: .utf8)) ?? "" }

    func remove() { try? FileManager.default.removeItem(atPath: root) }
}

func bp(_ id: String, optional: Bool = false) -> GroupElement { GroupElement(id: id, version: "1.0.0", optional: optional) }

/// Runs synchronous phases on a thread of their own: their `runBlocking` must not wait on a thread
/// of the concurrency pool, where the tests run.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// The phase's error, or nil (recorded as an issue) when it did not fail with one.
func expectFailure<T: Sendable>(_ body: @escaping @Sendable () throws -> T,
                                sourceLocation: SourceLocation = #_sourceLocation) async -> LifecycleError? {
    do {
        _ = try await onOwnThread(body)
    } catch let error as LifecycleError {
        return error
    } catch {
        Issue.record("not a LifecycleError: \(error)", sourceLocation: sourceLocation)
        return nil
    }
    Issue.record("the phase did not fail", sourceLocation: sourceLocation)
    return nil
}

/// Detection through a recording executor: which group wins, what the plan holds, how failures
/// map to the Platform API's exit codes, and what each `bin/detect` is shown.
@Suite struct DetectorTests {
    @Test func theFirstGroupThatPassesWinsAndLaterGroupsNeverRun() async throws {
        let bench = try Workbench(buildpacks: ["t/a", "t/b", "t/c"])
        defer { bench.remove() }
        let executor = RecordingExecutor(["detect t/a@1.0.0": Script(ending: .exited(100))])
        let runs = RunLog()
        let detected = try await onOwnThread {
            try bench.session(executor, runs: runs)
                .detect(order: [OrderGroup([bp("t/a"), bp("t/b")]), OrderGroup([bp("t/b")]), OrderGroup([bp("t/c")])])
        }
        #expect(detected.group.group.map(\.description) == ["t/b@1.0.0"])
        #expect(Set(executor.called) == ["detect t/a@1.0.0", "detect t/b@1.0.0"], "t/b's outcome is reused, t/c never runs")
        #expect(bench.read("layers/group.toml").contains("id = \"t/b\"") && !bench.read("layers/group.toml").contains("t/a"))
        #expect(runs.runs.map(\.outcome) == [.fail, .pass] && runs.runs.map(\.id) == ["t/a", "t/b"])
        #expect(runs.runs.allSatisfy { $0.phase == .detect && $0.maxResidentKiB == 4096 && $0.wallMicroseconds == 1500 })
    }

    @Test func aFailingOptionalBuildpackIsLeftOutOfTheGroup() async throws {
        let bench = try Workbench(buildpacks: ["t/a", "t/b"])
        defer { bench.remove() }
        let executor = RecordingExecutor(["detect t/a@1.0.0": Script(ending: .exited(100))])
        let runs = RunLog()
        let detected = try await onOwnThread { try bench.session(executor, runs: runs).detect(order: [OrderGroup([bp("t/a", optional: true), bp("t/b")])]) }
        #expect(detected.group.group.map(\.description) == ["t/b@1.0.0"])
        #expect(runs.runs.first { $0.id == "t/a" }?.outcome == .skip)
    }

    @Test func aRequiredFailureFailsTheGroupWith20() async throws {
        let bench = try Workbench(buildpacks: ["t/a", "t/b"])
        defer { bench.remove() }
        let executor = RecordingExecutor(["detect t/a@1.0.0": Script(ending: .exited(100))])
        let error = await expectFailure { try bench.session(executor).detect(order: [OrderGroup([bp("t/a"), bp("t/b")])]) }
        #expect(error?.exitCode == LifecycleError.Code.detectAllFailed)
        #expect(error?.message.contains("no buildpack group passed detection") == true)
        #expect(!FileManager.default.fileExists(atPath: bench.layers + "/group.toml"))
    }

    @Test func aDetectThatErrsFailsWith21AndItsOutputIsTheReason() async throws {
        let bench = try Workbench(buildpacks: ["t/a"])
        defer { bench.remove() }
        let executor = RecordingExecutor(["detect t/a@1.0.0": Script(ending: .exited(3), output: "first\nno python here\n")])
        let runs = RunLog()
        let error = await expectFailure { try bench.session(executor, runs: runs).detect(order: [OrderGroup([bp("t/a")])]) }
        #expect(error?.exitCode == LifecycleError.Code.detectBuildpackError)
        #expect(runs.runs.first?.exitCode == 3 && runs.runs.first?.message == "bin/detect exited with 3: no python here")
    }

    @Test func aRequirementMetByAnEarlierProviderIsInThePlan() async throws {
        let bench = try Workbench(buildpacks: ["t/provider", "t/consumer"])
        defer { bench.remove() }
        let executor = RecordingExecutor([
            "detect t/provider@1.0.0": Script(files: ["plan.toml": "[[provides]]\nname = \"greeting\"\n"]),
            "detect t/consumer@1.0.0": Script(files: ["plan.toml": "[[requires]]\nname = \"greeting\"\n[requires.metadata]\nwords = \"hi\"\n"]),
        ])
        let detected = try await onOwnThread { try bench.session(executor).detect(order: [OrderGroup([bp("t/provider"), bp("t/consumer")])]) }
        #expect(detected.plan.entries.count == 1)
        #expect(detected.plan.entries.first?.providers == [bp("t/provider")])
        #expect(detected.plan.entries.first?.requires.first?.name == "greeting")
        #expect(bench.read("layers/plan.toml").contains("words = \"hi\""))
    }

    @Test func anUnmetRequirementFailsTheGroupAndTheNextOneIsTried() async throws {
        let bench = try Workbench(buildpacks: ["t/consumer", "t/plain"])
        defer { bench.remove() }
        let executor = RecordingExecutor([
            "detect t/consumer@1.0.0": Script(files: ["plan.toml": "[[requires]]\nname = \"greeting\"\n"]),
        ])
        let detected = try await onOwnThread { try bench.session(executor).detect(order: [OrderGroup([bp("t/consumer")]), OrderGroup([bp("t/plain")])]) }
        #expect(detected.group.group.map(\.description) == ["t/plain@1.0.0"])
        let error = await expectFailure { try bench.session(executor).detect(order: [OrderGroup([bp("t/consumer")])]) }
        #expect(error?.exitCode == LifecycleError.Code.detectAllFailed)
    }

    @Test func anExecutorThatCannotStartStopsDetectionWithItsCodeAndTheRunIsRecorded() async throws {
        let bench = try Workbench(buildpacks: ["t/a"])
        defer { bench.remove() }
        let executor = RecordingExecutor(unrunnable: ["detect t/a@1.0.0": ExecutionError("no user namespaces", exitCode: 69)])
        let runs = RunLog()
        let error = await expectFailure { try bench.session(executor, runs: runs).detect(order: [OrderGroup([bp("t/a")])]) }
        #expect(error?.exitCode == 69 && error?.message == "no user namespaces")
        #expect(runs.runs.map(\.id) == ["t/a"] && runs.runs.first?.outcome == .error)
    }

    @Test func aBuildpackTheStoreDoesNotHoldIsAnErrorBeforeAnythingRuns() async throws {
        let bench = try Workbench(buildpacks: ["t/a"])
        defer { bench.remove() }
        let executor = RecordingExecutor()
        let error = await expectFailure { try bench.session(executor).detect(order: [OrderGroup([bp("t/a"), bp("t/missing")])]) }
        #expect(error?.exitCode == LifecycleError.Code.detectGeneric)
        #expect(executor.calls.isEmpty)
    }

    @Test func detectSeesTheAppAndPlatformReadOnlyNoNetworkAndOnlyItsPlanWritable() async throws {
        let bench = try Workbench(buildpacks: ["t/a"])
        defer { bench.remove() }
        let executor = RecordingExecutor()
        _ = try await onOwnThread { try bench.session(executor).detect(order: [OrderGroup([bp("t/a")])]) }
        let invocation = try #require(executor.calls.first)
        #expect(invocation.views.filter(\.writable).map(\.path) == ["/cnb/detect"])
        #expect(invocation.views.contains { $0.path == "/workspace" && $0.hostPath == bench.app && !$0.writable })
        #expect(!invocation.network && invocation.timeoutSeconds == LifecycleSession.detectTimeoutSeconds)
        #expect(invocation.executable == "/cnb/buildpacks/t_a/1.0.0/bin/detect")
        #expect(invocation.environment.contains("CNB_BUILD_PLAN_PATH=/cnb/detect/plan.toml"))
    }
}

/// Build through a recording executor: order, what each buildpack sees, what its output becomes,
/// and how failures map to exit codes.
@Suite struct BuilderTests {
    static let launch = """
        [[processes]]
        type = "web"
        command = ["serve"]
        default = true
        """

    func plan(_ bench: Workbench, _ executor: RecordingExecutor, _ order: [GroupElement]) async throws -> DetectedGroup {
        try await onOwnThread { try bench.session(executor).detect(order: [OrderGroup(order)]) }
    }

    @Test func buildpacksBuildInOrderAndEachSeesTheEarlierLayersReadOnly() async throws {
        let bench = try Workbench(buildpacks: ["t/a", "t/b"])
        defer { bench.remove() }
        let executor = RecordingExecutor([
            "build t/a@1.0.0": Script(files: ["tool.toml": "[types]\nbuild = true\n", "tool/bin/tool": "x"]),
            "build t/b@1.0.0": Script(files: ["launch.toml": Self.launch]),
        ])
        let detected = try await plan(bench, executor, [bp("t/a"), bp("t/b")])
        let runs = RunLog()
        let metadata = try await onOwnThread { try bench.session(executor, runs: runs).build(group: detected.group, plan: detected.plan) }
        #expect(executor.called.filter { $0.hasPrefix("build") } == ["build t/a@1.0.0", "build t/b@1.0.0"])
        let second = try #require(executor.calls.last)
        #expect(second.views.contains { $0.path == "/layers/t_a" && !$0.writable })
        #expect(second.views.filter(\.writable).map(\.path) == ["/workspace", "/layers/t_b"])
        #expect(second.environment.contains { $0.hasPrefix("PATH=/layers/t_a/tool/bin:") }, "a build layer is on the next PATH")
        #expect(metadata.processes.map(\.type) == ["web"] && metadata.buildpackDefaultProcessType == "web")
        #expect(bench.read("layers/config/metadata.toml").contains("command = [\"serve\"]"))
        #expect(runs.runs.map(\.outcome) == [.pass, .pass] && runs.runs.allSatisfy { $0.phase == .build })
    }

    @Test func eachBuildpackGetsTheEntriesItProvidesInItsPlan() async throws {
        let bench = try Workbench(buildpacks: ["t/provider", "t/consumer"])
        defer { bench.remove() }
        let executor = RecordingExecutor([
            "detect t/provider@1.0.0": Script(files: ["plan.toml": "[[provides]]\nname = \"greeting\"\n"]),
            "detect t/consumer@1.0.0": Script(files: ["plan.toml": "[[requires]]\nname = \"greeting\"\n[requires.metadata]\nwords = \"hi\"\n"]),
        ])
        let detected = try await plan(bench, executor, [bp("t/provider"), bp("t/consumer")])
        _ = try await onOwnThread { try bench.session(executor).build(group: detected.group, plan: detected.plan) }
        let provider = try String(contentsOfFile: bench.root + "/scratch/build-t_provider-1.0.0/plan.toml", encoding: .utf8)
        let consumer = try String(contentsOfFile: bench.root + "/scratch/build-t_consumer-1.0.0/plan.toml", encoding: .utf8)
        #expect(provider.contains("name = \"greeting\"") && provider.contains("words = \"hi\""))
        #expect(!consumer.contains("greeting"))
    }

    @Test(arguments: [
        (Script(ending: .exited(1)), LifecycleError.Code.buildFailed, BuildpackRun.Outcome.fail, "bin/build exited with 1"),
        (Script(ending: .signaled(9)), LifecycleError.Code.buildFailed, .fail, "bin/build was killed by signal 9"),
        (Script(ending: .exited(137), limitReached: "memory limit 64 MiB reached"), LifecycleError.Code.buildLimitReached, .fail,
         "bin/build exited with 137: memory limit 64 MiB reached"),
        (Script(ending: .timedOut), LifecycleError.Code.buildFailed, .timeout, "bin/build timed out after 0 s"),
        (Script(ending: .notRunnable("bin/build is not executable")), LifecycleError.Code.buildFailed, .error,
         "bin/build is not executable"),
    ])
    func aFailedBuildStopsTheGroupWithItsCode(_ script: Script, _ code: Int32, _ outcome: BuildpackRun.Outcome,
                                               _ message: String) async throws {
        let bench = try Workbench(buildpacks: ["t/a", "t/b"])
        defer { bench.remove() }
        let executor = RecordingExecutor(["build t/a@1.0.0": script])
        let detected = try await plan(bench, executor, [bp("t/a"), bp("t/b")])
        let runs = RunLog()
        let error = await expectFailure { try bench.session(executor, runs: runs).build(group: detected.group, plan: detected.plan) }
        #expect(error?.exitCode == code)
        #expect(error?.message == "t/a@1.0.0: \(message)")
        #expect(!executor.called.contains("build t/b@1.0.0"))
        #expect(runs.runs.map(\.outcome) == [outcome] && runs.runs.first?.message == message)
        #expect(!FileManager.default.fileExists(atPath: bench.layers + "/config/metadata.toml"))
    }

    @Test func invalidOutputFailsTheBuildpackWith51() async throws {
        let bench = try Workbench(buildpacks: ["t/a"])
        defer { bench.remove() }
        let executor = RecordingExecutor(["build t/a@1.0.0": Script(files: ["ghost.toml": "[types]\nlaunch = true\n"])])
        let detected = try await plan(bench, executor, [bp("t/a")])
        let runs = RunLog()
        let error = await expectFailure { try bench.session(executor, runs: runs).build(group: detected.group, plan: detected.plan) }
        #expect(error?.exitCode == LifecycleError.Code.buildFailed)
        #expect(error?.message.contains("t/a@1.0.0 left invalid output") == true && error?.message.contains("ghost") == true)
        #expect(runs.runs.first?.outcome == .error)
    }

    @Test func aLaunchLayerThePreviousImageHoldsMayBeKeptWithoutItsDirectory() async throws {
        let bench = try Workbench(buildpacks: ["t/a"])
        defer { bench.remove() }
        let executor = RecordingExecutor(["build t/a@1.0.0": Script(files: ["kept.toml": "[types]\nlaunch = true\n"])])
        let detected = try await plan(bench, executor, [bp("t/a")])
        let unrestored = await expectFailure { try bench.session(executor).build(group: detected.group, plan: detected.plan) }
        #expect(unrestored?.message.contains("layer \"kept\" (launch = true) has no directory") == true, "\(String(describing: unrestored))")
        _ = try await onOwnThread {
            try bench.session(executor).build(group: detected.group, plan: detected.plan,
                                              restoration: .init(reusableLaunchLayers: ["t_a/kept"]))
        }
        #expect(FileManager.default.fileExists(atPath: bench.layers + "/config/metadata.toml"))
    }

    @Test func anExecutorThatCannotStartStopsTheBuildWithItsCode() async throws {
        let bench = try Workbench(buildpacks: ["t/a"])
        defer { bench.remove() }
        let executor = RecordingExecutor(unrunnable: ["build t/a@1.0.0": ExecutionError("cannot clone", exitCode: 71)])
        let detected = try await plan(bench, executor, [bp("t/a")])
        let error = await expectFailure { try bench.session(executor).build(group: detected.group, plan: detected.plan) }
        #expect(error?.exitCode == 71 && error?.message == "cannot clone")
    }

    @Test func buildOnlyGetsTheNetworkWhenTheSessionAllowsIt() async throws {
        let bench = try Workbench(buildpacks: ["t/a"])
        defer { bench.remove() }
        let executor = RecordingExecutor()
        let detected = try await plan(bench, executor, [bp("t/a")])
        try await onOwnThread {
            var session = try bench.session(executor)
            session.network = false
            _ = try session.build(group: detected.group, plan: detected.plan)
            session.network = true
            try FileManager.default.removeItem(atPath: bench.layers + "/config")
            _ = try session.build(group: detected.group, plan: detected.plan)
        }
        #expect(executor.calls.filter { $0.phase == .build }.map(\.network) == [false, true])
    }
}
