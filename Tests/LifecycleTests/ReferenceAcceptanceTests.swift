import Foundation
import StockadeTestSupport
import Testing

/// The reference lifecycle's acceptance fixtures for `detector` and `builder`
/// (Tests/Fixtures/lifecycle-acceptance), run through Stockade's phase commands with the reference
/// tests' expectations. The fixtures' container root is a copy on the host: a path `/x` of the
/// reference test is `<copy>/x` here, and the defaults that name container paths (`/layers`,
/// `/workspace`, `/cnb/buildpacks`, `/platform`) are given by their `CNB_*` variables.
///
/// Cases not run, and why:
/// - "running as a root … errors": Stockade runs as root on purpose (it becomes the stack user,
///   and every buildpack runs sandboxed as it); `asRootTheDetectorRunsTheBuildpacksAsTheStackUser` instead.
/// - extensions (`order_with_ext.toml`, `group_with_ext.toml`): Stockade runs no image extensions.
/// - the log texts that print container paths (`platform_path: /custom_platform`, `app_dir:`,
///   `CNB_APP_DIR: /env_folders/…`, `PLATFORM_DIR:`, `LAYERS_DIR:`, `CNB_BUILDPACK_DIR:`): a buildpack
///   always sees the spec's `/workspace`, `/platform`, `/layers/<id>`, `/cnb/buildpacks/<id>/<version>`
///   inside its sandbox, whatever the host paths are; the cases run, and assert what the
///   buildpack did instead.
/// - the reference's own log lines (`simple_buildpack simple_buildpack_version`, `======== Results`,
///   "Please check that you are running against the correct path."): Stockade's output differs.
@Suite struct ReferenceAcceptanceTests {
    let fx = Fixture.shared

    /// A fresh copy of a fixture's container root, readable by every invoker.
    static func container(_ phase: String) throws -> String {
        let root = Fixture.shared.makeDirectory("acceptance-\(phase)")
        let copied = Fixture.run(["cp", "-R", Fixture.shared.repo + "/Tests/Fixtures/lifecycle-acceptance/\(phase)/container", root])
        try #require(copied.status == 0, "\(copied)")
        try #require(Fixture.run(["chmod", "-R", "a+rX", root]).status == 0)
        return root + "/container"
    }

    struct Run {
        let container: String
        let outcome: Outcome
        func file(_ path: String) -> String? { try? String(contentsOfFile: container + path, encoding: .utf8) }
    }

    /// `detector` or `builder` in a fixture copy, cwd `/layers` as the fixture's Dockerfile sets it.
    /// `environment` values starting with `/` are container paths.
    static func phase(_ phase: String, _ args: [String] = [], environment: [String: String] = [:], api: String = "0.15",
                      prepare: (String) throws -> Void = { _ in }) throws -> Run {
        let c = try container(phase)
        try prepare(c)
        var env = ["CNB_PLATFORM_API": api, "CNB_LAYERS_DIR": "/layers", "CNB_APP_DIR": "/workspace",
                   "CNB_BUILDPACKS_DIR": "/cnb/buildpacks", "CNB_PLATFORM_DIR": "/platform"]
        env.merge(environment) { $1 }
        env = env.mapValues { $0.hasPrefix("/") ? c + $0 : $0 }
        env["CNB_PLATFORM_API"] = environment["CNB_PLATFORM_API"] ?? api
        let outcome = LifecycleLinks().run(phase, args.map { $0.hasPrefix("-order=/") ? "-order=" + c + $0.dropFirst(7) : $0 },
                                           environment: env, cwd: c + "/layers")
        return Run(container: c, outcome: outcome)
    }

    // MARK: - detector (acceptance/detector_test.go)

    @Test func detectorCalledWithArgumentsErrors() throws {
        let run = try Self.phase("detector", ["some-arg"])
        #expect(run.outcome.status == 3 && run.outcome.stderr.contains("failed to parse arguments: received unexpected arguments"), "\(run.outcome)")
    }

    @Test func detectorCannotReadTheOrder() throws {
        let run = try Self.phase("detector", environment: ["CNB_ORDER_PATH": "/cnb/orders/none.toml"])
        #expect(run.outcome.status == 1 && run.outcome.stderr.contains("failed to read buildpack order file"), "\(run.outcome)")
    }

    @Test func noGroupPassesDetection() throws {
        let run = try Self.phase("detector", environment: ["CNB_ORDER_PATH": "/cnb/orders/fail_detect_order.toml"])
        #expect(run.outcome.status == 20, "platform code for failed detect: \(run.outcome)")
        #expect(run.outcome.stderr.contains("no buildpack group passed detection"), "\(run.outcome)")
    }

    @Test func writesGroupAndPlanAtTheDefaultLocations() throws {
        let run = try Self.phase("detector", environment: ["CNB_ORDER_PATH": "/cnb/orders/simple_order.toml"])
        try #require(run.outcome.status == 0, "\(run.outcome)")
        let group = try #require(run.file("/layers/group.toml"))
        #expect(group.contains("id = \"simple_buildpack\"") && group.contains("version = \"simple_buildpack_version\""), "\(group)")
        let plan = try #require(run.file("/layers/plan.toml"))
        for line in ["[[entries.providers]]\nid = \"simple_buildpack\"\nversion = \"simple_buildpack_version\"",
                     "name = \"some_requirement\"", "some_metadata_key = \"some_metadata_val\"", "version = \"some_version\""] {
            #expect(plan.contains(line), "\(plan)")
        }
    }

    @Test func environmentNamesTheDirectoriesAndTheOutputFiles() throws {
        let run = try Self.phase("detector", environment: [
            "CNB_ORDER_PATH": "/cnb/orders/always_detect_order.toml", "CNB_BUILDPACKS_DIR": "/cnb/custom_buildpacks",
            "CNB_APP_DIR": "/custom_workspace", "CNB_GROUP_PATH": "./custom_group.toml", "CNB_PLAN_PATH": "./custom_plan.toml",
            "CNB_PLATFORM_DIR": "/custom_platform"])
        try #require(run.outcome.status == 0, "\(run.outcome)")
        let group = try #require(run.file("/layers/custom_group.toml"))
        #expect(group.contains("id = \"always_detect_buildpack\"") && group.contains("version = \"always_detect_buildpack_version\""), "\(group)")
        // custom_buildpacks' always_detect writes no plan: the plan is empty.
        #expect(run.file("/layers/custom_plan.toml")?.trimmingCharacters(in: .whitespacesAndNewlines) == "")
    }

    @Test func orderFlagNamesTheOrder() throws {
        let run = try Self.phase("detector", ["-order=/custom/order.toml"]) { c in
            try FileManager.default.createDirectory(atPath: c + "/custom", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: c + "/cnb/orders/simple_order.toml", toPath: c + "/custom/order.toml")
            chmod(c + "/custom", 0o755)
            chmod(c + "/custom/order.toml", 0o644)
        }
        try #require(run.outcome.status == 0, "\(run.outcome)")
        #expect(run.file("/layers/group.toml")?.contains("id = \"simple_buildpack\"") == true)
    }

    @Test func orderFlagNamingNoFileErrors() throws {
        let run = try Self.phase("detector", ["-order=/custom/order.toml"])
        #expect(run.outcome.status == 1 && run.outcome.stderr.contains("failed to read buildpack order file"), "\(run.outcome)")
    }

    @Test func orderWithAnUnsupportedBuildpackAPI() throws {
        let run = try Self.phase("detector", ["-order=/cnb/orders/bad_api.toml"])
        #expect(run.outcome.status == 12, "platform code for buildpack api error: \(run.outcome)")
        #expect(run.outcome.stderr.contains("0.1"), "\(run.outcome)")
    }

    @Test func systemBuildpacksWrapTheOrder() throws {
        let run = try Self.phase("detector", environment: ["CNB_ORDER_PATH": "/cnb/orders/middle_order.toml",
                                                           "CNB_SYSTEM_PATH": "/cnb/test-data/system.toml"])
        try #require(run.outcome.status == 0, "\(run.outcome)")
        let ids = (run.file("/layers/group.toml") ?? "").split(separator: "\n").filter { $0.hasPrefix("id = ") }
        #expect(ids == ["id = \"always_detect_buildpack\"", "id = \"buildpack_for_ext\"", "id = \"simple_buildpack\""], "\(ids)")
    }

    @Test func systemTOMLIsIgnoredBeforePlatform015() throws {
        let run = try Self.phase("detector", environment: ["CNB_ORDER_PATH": "/cnb/orders/simple_order.toml",
                                                           "CNB_SYSTEM_PATH": "/cnb/test-data/system.toml"], api: "0.14")
        try #require(run.outcome.status == 0, "\(run.outcome)")
        let ids = (run.file("/layers/group.toml") ?? "").split(separator: "\n").filter { $0.hasPrefix("id = ") }
        #expect(ids == ["id = \"simple_buildpack\""], "\(ids)")
    }

    /// Where the reference refuses root, Stockade becomes the stack user; the buildpack never runs as root.
    @Test func asRootTheDetectorRunsTheBuildpacksAsTheStackUser() throws {
        guard fx.isRoot else { try skip("needs a suite running as root") }
        let run = try Self.phase("detector", environment: ["CNB_ORDER_PATH": "/cnb/orders/simple_order.toml", "CNB_USER_ID": "1234",
                                                           "CNB_GROUP_ID": "1000"])
        try #require(run.outcome.status == 0, "\(run.outcome)")
        #expect(fx.owner(of: run.container + "/layers/group.toml") == 1234)
    }

    // MARK: - builder (acceptance/builder_test.go)

    static let group = "/cnb/group_tomls/always_detect_group.toml"
    static let plan = "/cnb/plan_tomls/always_detect_plan.toml"

    @Test func builderCalledWithArgumentsErrors() throws {
        let run = try Self.phase("builder", ["some-arg"])
        #expect(run.outcome.status == 3 && run.outcome.stderr.contains("failed to parse arguments: received unexpected arguments"), "\(run.outcome)")
    }

    @Test(arguments: ["0.15", "0.9"])
    func builderWritesMetadata(api: String) throws {
        let run = try Self.phase("builder", environment: ["CNB_GROUP_PATH": Self.group, "CNB_PLAN_PATH": Self.plan], api: api)
        try #require(run.outcome.status == 0, "\(run.outcome)")
        let metadata = try #require(run.file("/layers/config/metadata.toml"))
        #expect(!metadata.contains("processes ="), "\(metadata)")
        #expect(metadata.contains("[[buildpacks]]\napi = \"0.10\"\nid = \"hello_world\"\nversion = \"0.0.1\""), "\(metadata)")
        let process = "[[processes]]\nargs = [\"arg1\"]\nbuildpack-id = \"hello_world\"\ncommand = [\"echo world\"]\ndirect = true\ntype = \"hello\""
        #expect(metadata.contains(process), "\(metadata)")
        #expect(!metadata.contains("working-dir") && !metadata.contains("default = true"), "\(metadata)")
    }

    @Test(arguments: [("CNB_GROUP_PATH", "/cnb/group_tomls/none.toml", "failed to read group file"),
                      ("CNB_GROUP_PATH", "/cnb/group_tomls/wrong_group.toml", "failed to read group file"),
                      ("CNB_PLAN_PATH", "/cnb/plan_tomls/none.toml", "failed to read plan file"),
                      ("CNB_PLAN_PATH", "/cnb/plan_tomls/wrong_plan.toml", "failed to read plan file")])
    func builderInvalidInputFiles(variable: String, path: String, message: String) throws {
        var env = ["CNB_GROUP_PATH": Self.group, "CNB_PLAN_PATH": Self.plan]
        env[variable] = path
        let run = try Self.phase("builder", environment: env)
        #expect(run.outcome.status == 1 && run.outcome.stderr.contains(message), "\(run.outcome)")
        #expect(run.outcome.stderr.split(separator: "\n").count == 1, "one line: \(run.outcome)")
    }

    @Test func builderInvalidBuildpackAPIInTheGroup() throws {
        let run = try Self.phase("builder", environment: ["CNB_GROUP_PATH": "/cnb/group_tomls/invalid_buildpack_api_group.toml",
                                                          "CNB_PLAN_PATH": Self.plan])
        #expect(run.outcome.status == 12 && run.outcome.stderr.contains("hello_world@0.0.1"), "\(run.outcome)")
    }

    @Test func builderEmptyGroupOrPlanSucceeds() throws {
        let emptyGroup = try Self.phase("builder", environment: ["CNB_GROUP_PATH": "/cnb/group_tomls/empty_group.toml", "CNB_PLAN_PATH": Self.plan])
        try #require(emptyGroup.outcome.status == 0, "\(emptyGroup.outcome)")
        #expect(emptyGroup.file("/layers/config/metadata.toml")?.contains("[[processes]]") == false)
        let emptyPlan = try Self.phase("builder", environment: ["CNB_GROUP_PATH": Self.group, "CNB_PLAN_PATH": "/cnb/plan_tomls/empty_plan.toml"])
        try #require(emptyPlan.outcome.status == 0, "\(emptyPlan.outcome)")
        #expect(emptyPlan.file("/layers/config/metadata.toml")?.contains("id = \"hello_world\"") == true)
    }

    @Test func builderFindsGroupAndPlanInTheLayersDirectory() throws {
        let groupFromLayers = try Self.phase("builder", environment: [
            "CNB_LAYERS_DIR": "/layers/different_layer_dir_from_env", "CNB_PLAN_PATH": "/cnb/plan_tomls/always_detect_plan_buildpack_2.toml"])
        try #require(groupFromLayers.outcome.status == 0, "\(groupFromLayers.outcome)")
        #expect(groupFromLayers.file("/layers/different_layer_dir_from_env/config/metadata.toml")?.contains("id = \"hello_world_2\"") == true)
        let planFromLayers = try Self.phase("builder", environment: [
            "CNB_LAYERS_DIR": "/layers/different_layer_dir_from_env", "CNB_GROUP_PATH": "/cnb/group_tomls/always_detect_group_buildpack2.toml"])
        try #require(planFromLayers.outcome.status == 0, "\(planFromLayers.outcome)")
        #expect(planFromLayers.file("/layers/different_layer_dir_from_env/config/metadata.toml")?.contains("version = \"0.0.2\"") == true)
    }

    @Test func builderGivesEachBuildpackItsShareOfThePlan() throws {
        let run = try Self.phase("builder", environment: ["CNB_GROUP_PATH": Self.group,
                                                          "CNB_PLAN_PATH": "/cnb/plan_tomls/different_plan_from_env.toml"])
        try #require(run.outcome.status == 0, "\(run.outcome)")
        #expect(run.outcome.stdout.contains("name = \"different_plan_from_env.toml_reqires_subset_content\""), "\(run.outcome)")
    }

    @Test func builderTakesBuildpacksFromCNBBuildpacksDir() throws {
        let run = try Self.phase("builder", environment: ["CNB_GROUP_PATH": Self.group, "CNB_PLAN_PATH": Self.plan,
                                                          "CNB_BUILDPACKS_DIR": "/env_folders/different_buildpack_dir_from_env"])
        try #require(run.outcome.status == 0, "\(run.outcome)")
        // Only that directory's hello_world prints its directory.
        #expect(run.outcome.stdout.contains("CNB_BUILDPACK_DIR: /cnb/buildpacks/hello_world/0.0.1"), "\(run.outcome)")
    }

    @Test func builderSetsTheTargetFromAnalyzedTOML() throws {
        let run = try Self.phase("builder", environment: ["CNB_LAYERS_DIR": "/layers/03_layer",
                                                          "CNB_PLAN_PATH": "/cnb/plan_tomls/always_detect_plan_buildpack_3.toml"])
        try #require(run.outcome.status == 0, "\(run.outcome)")
        for line in ["CNB_TARGET_ARCH: amd64", "CNB_TARGET_ARCH_VARIANT: some-variant", "CNB_TARGET_OS: linux"] {
            #expect(run.outcome.stdout.contains(line), "\(run.outcome)")
        }
    }
}
