import Testing
@testable import BuildpackSpec

@Suite("Invoking bin/detect and bin/build (§4)")
struct InvocationTests {
    func descriptor(api: APIVersion, clearEnv: Bool = false, kind: ModuleKind = .buildpack) -> BuildpackTOML {
        BuildpackTOML(kind: kind, api: api, info: .init(id: "ex/a", version: "1.0.0", clearEnv: clearEnv))
    }

    @Test func detectEnvironmentByAPI() throws {
        let tmp = TemporaryDirectory()
        tmp.write("platform/env/FROM_PLATFORM", "p")
        tmp.write("platform/env/PATH", "/platform/bin")
        tmp.write("config/env/FROM_CONFIG", "c")
        let base = Environment(envp: ["PATH=/usr/bin", "HOME=/home/cnb", "SECRET=x"]).filtered(allowing: Environment.buildAllowlist)
        #expect(base.envp == ["PATH=/usr/bin", "HOME=/home/cnb"])
        let target = TargetPlatform(os: "linux", arch: "amd64", distro: Distro(name: "ubuntu", version: "22.04"))

        let new = try BuildpackInvocation.detect(
            descriptor: descriptor(api: APIVersion(0, 12)), buildpackDirectory: "/cnb/buildpacks/ex_a/1.0.0",
            appDirectory: "/workspace", platformDirectory: tmp.absolute("platform"), planPath: "/tmp/plan/plan.toml",
            base: base, buildConfigDirectory: tmp.absolute("config"), target: target, executionEnvironment: "production")
        #expect(new.executable == "/cnb/buildpacks/ex_a/1.0.0/bin/detect")
        #expect(new.arguments == [tmp.absolute("platform"), "/tmp/plan/plan.toml"])
        #expect(new.workingDirectory == "/workspace")
        #expect(new.environment.envp == [
            "PATH=/platform/bin:/usr/bin", "HOME=/home/cnb", "FROM_PLATFORM=p", "FROM_CONFIG=c",
            "CNB_BUILDPACK_DIR=/cnb/buildpacks/ex_a/1.0.0", "CNB_PLATFORM_DIR=\(tmp.absolute("platform"))",
            "CNB_BUILD_PLAN_PATH=/tmp/plan/plan.toml", "CNB_TARGET_OS=linux", "CNB_TARGET_ARCH=amd64",
            "CNB_TARGET_DISTRO_NAME=ubuntu", "CNB_TARGET_DISTRO_VERSION=22.04", "CNB_EXEC_ENV=production",
        ])

        let old = try BuildpackInvocation.detect(
            descriptor: descriptor(api: APIVersion(0, 7), clearEnv: true), buildpackDirectory: "/bp",
            appDirectory: "/workspace", platformDirectory: tmp.absolute("platform"), planPath: "/plan",
            base: base, buildConfigDirectory: tmp.absolute("config"), target: target, executionEnvironment: "production")
        // clear-env drops <platform>/env only; 0.7 gets no CNB_PLATFORM_DIR, targets or exec-env.
        #expect(old.environment.envp == ["PATH=/usr/bin", "HOME=/home/cnb", "FROM_CONFIG=c", "CNB_BUILDPACK_DIR=/bp"])
        #expect(old.arguments == [tmp.absolute("platform"), "/plan"])

        let ext = try BuildpackInvocation.detect(
            descriptor: descriptor(api: APIVersion(0, 9), kind: .extension), buildpackDirectory: "/ext",
            appDirectory: "/workspace", platformDirectory: tmp.absolute("missing"), planPath: "/plan", base: Environment())
        #expect(ext.environment.envp == ["CNB_EXTENSION_DIR=/ext", "CNB_PLATFORM_DIR=\(tmp.absolute("missing"))",
                                         "CNB_BUILD_PLAN_PATH=/plan"])
    }

    @Test func buildEnvironment() throws {
        let tmp = TemporaryDirectory()
        let build = try BuildpackInvocation.build(
            descriptor: descriptor(api: APIVersion(0, 10)), buildpackDirectory: "/bp", appDirectory: "/workspace",
            layersDirectory: "/layers/ex_a", platformDirectory: tmp.absolute("platform"), planPath: "/plan",
            base: Environment([("PATH", "/layers/ex_b/node/bin:/usr/bin")]),
            target: TargetPlatform(os: "linux", arch: "arm64", archVariant: "v8"), executionEnvironment: "test")
        #expect(build.executable == "/bp/bin/build")
        #expect(build.arguments == ["/layers/ex_a", tmp.absolute("platform"), "/plan"])
        #expect(build.environment.envp == [
            "PATH=/layers/ex_b/node/bin:/usr/bin", "CNB_BUILDPACK_DIR=/bp", "CNB_PLATFORM_DIR=\(tmp.absolute("platform"))",
            "CNB_BP_PLAN_PATH=/plan", "CNB_LAYERS_DIR=/layers/ex_a", "CNB_TARGET_OS=linux", "CNB_TARGET_ARCH=arm64",
            "CNB_TARGET_ARCH_VARIANT=v8",
        ])
    }

    @Test func classifiesDetectResults() throws {
        let tmp = TemporaryDirectory()
        tmp.write("plans/ok.toml", "[[provides]]\nname = \"x\"")
        tmp.write("plans/bad.toml", "[[requires]]\nname = \"x\"\nversion = \"1\"")
        tmp.write("plans/requires.toml", "[[requires]]\nname = \"x\"")
        tmp.mkfifo("plans/fifo.toml")
        let dir = try tmp.confined("plans")
        let a = GroupElement(id: "A", version: "v1")
        let x = GroupElement(id: "X", version: "v1", kind: .extension)
        #expect(DetectOutcome.fromDetect(exitCode: 0, planDirectory: dir, planFile: "ok.toml", element: a)
            == .pass(.plan(provides: ["x"])))
        #expect(DetectOutcome.fromDetect(exitCode: 100, planDirectory: dir, planFile: "ok.toml", element: a) == .fail)
        guard case .error(let bad) = DetectOutcome.fromDetect(exitCode: 0, planDirectory: dir, planFile: "bad.toml", element: a),
              case .error(let fifo) = DetectOutcome.fromDetect(exitCode: 0, planDirectory: dir, planFile: "fifo.toml", element: a),
              case .error(let ext) = DetectOutcome.fromDetect(exitCode: 0, planDirectory: dir, planFile: "requires.toml", element: x),
              case .error(let status) = DetectOutcome.fromDetect(exitCode: 3, planDirectory: dir, planFile: "ok.toml", element: a),
              case .error = DetectOutcome.fromDetect(exitCode: nil, planDirectory: dir, planFile: "ok.toml", element: a)
        else { Issue.record("expected errors"); return }
        #expect(bad.contains("requires[0].version"))
        #expect(bad.hasPrefix("buildpack A@v1: "))
        #expect(fifo.contains("FIFO"))
        #expect(ext.contains("cannot output \"requires\""))
        #expect(status == "bin/detect exited with status 3")
        // An empty plan file (nothing written) passes with an empty plan.
        tmp.write("plans/empty.toml", "")
        #expect(DetectOutcome.fromDetect(exitCode: 0, planDirectory: dir, planFile: "empty.toml", element: a) == .pass(DetectPlan()))
    }
}
