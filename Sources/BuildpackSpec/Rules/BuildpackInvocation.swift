/// How to run `bin/detect` or `bin/build` for one module (§4): the executable, its positional arguments,
/// working directory and environment. Running it (in a sandbox, as the build user, stdin `/dev/null`) is the
/// caller's business.
public struct BuildpackInvocation: Sendable, Equatable {
    /// `<buildpack dir>/bin/detect` or `<buildpack dir>/bin/build`.
    public var executable: String
    /// The positional arguments (after the executable), passed for every Buildpack API as the reference does.
    public var arguments: [String]
    /// `<app>`.
    public var workingDirectory: String
    /// The complete environment.
    public var environment: Environment

    /// The `bin/detect` invocation: `bin/detect <platform> <plan>`.
    ///
    /// The environment, in order (§4):
    /// 1. `base`: the lifecycle's environment, already filtered with `Environment.buildAllowlist`;
    /// 2. `<platform>/env` unless the descriptor sets `clear-env` (`applyPlatformEnvironment`);
    /// 3. `<build-config>/env` (`applyBuildConfigEnvironment`), regardless of `clear-env`;
    /// 4. `CNB_BUILDPACK_DIR` (`CNB_EXTENSION_DIR` for extensions); from API 0.8 `CNB_PLATFORM_DIR` and
    ///    `CNB_BUILD_PLAN_PATH`; from 0.10 the `CNB_TARGET_*` variables; from 0.12 `CNB_EXEC_ENV` (if set).
    /// Missing platform or build-config directories contribute nothing.
    /// - Parameter platformSource: where to read `<platform>/env` from when that is not `platformDirectory`
    ///   (the platform directory as the host sees it, for a buildpack that sees it elsewhere).
    public static func detect(descriptor: BuildpackTOML, buildpackDirectory: String, appDirectory: String,
                              platformDirectory: String, platformSource: String? = nil, planPath: String,
                              base: Environment, buildConfigDirectory: String? = nil, target: TargetPlatform? = nil,
                              executionEnvironment: String? = nil) throws(SpecError) -> BuildpackInvocation
    {
        var env = try overridden(base, descriptor: descriptor, platformDirectory: platformSource ?? platformDirectory,
                                 buildConfigDirectory: buildConfigDirectory)
        env[descriptor.kind == .extension ? "CNB_EXTENSION_DIR" : "CNB_BUILDPACK_DIR"] = buildpackDirectory
        if descriptor.api >= APIVersion(0, 8) {
            env["CNB_PLATFORM_DIR"] = platformDirectory
            env["CNB_BUILD_PLAN_PATH"] = planPath
        }
        addTargetAndExecEnv(&env, api: descriptor.api, target: target, executionEnvironment: executionEnvironment)
        return BuildpackInvocation(executable: buildpackDirectory + "/bin/detect",
                                   arguments: [platformDirectory, planPath],
                                   workingDirectory: appDirectory, environment: env)
    }

    /// The `bin/build` invocation: `bin/build <layers>/<escaped id> <platform> <plan>`.
    ///
    /// As for detect, except that `base` also holds what earlier buildpacks' `build = true` layers contributed
    /// (`Environment.applyBuildLayers`), and the variables of step 4 are `CNB_BUILDPACK_DIR` and, from API 0.8,
    /// `CNB_LAYERS_DIR`, `CNB_PLATFORM_DIR` and `CNB_BP_PLAN_PATH`.
    public static func build(descriptor: BuildpackTOML, buildpackDirectory: String, appDirectory: String,
                             layersDirectory: String, platformDirectory: String, platformSource: String? = nil,
                             planPath: String, base: Environment, buildConfigDirectory: String? = nil,
                             target: TargetPlatform? = nil,
                             executionEnvironment: String? = nil) throws(SpecError) -> BuildpackInvocation
    {
        var env = try overridden(base, descriptor: descriptor, platformDirectory: platformSource ?? platformDirectory,
                                 buildConfigDirectory: buildConfigDirectory)
        env["CNB_BUILDPACK_DIR"] = buildpackDirectory
        if descriptor.api >= APIVersion(0, 8) {
            env["CNB_PLATFORM_DIR"] = platformDirectory
            env["CNB_BP_PLAN_PATH"] = planPath
            env["CNB_LAYERS_DIR"] = layersDirectory
        }
        addTargetAndExecEnv(&env, api: descriptor.api, target: target, executionEnvironment: executionEnvironment)
        return BuildpackInvocation(executable: buildpackDirectory + "/bin/build",
                                   arguments: [layersDirectory, platformDirectory, planPath],
                                   workingDirectory: appDirectory, environment: env)
    }

    private static func overridden(_ base: Environment, descriptor: BuildpackTOML, platformDirectory: String,
                                   buildConfigDirectory: String?) throws(SpecError) -> Environment
    {
        var env = base
        if !descriptor.info.clearEnv, let platform = try openIfPresent(platformDirectory) {
            try env.applyPlatformEnvironment(platform)
        }
        if let buildConfigDirectory, let buildConfig = try openIfPresent(buildConfigDirectory) {
            try env.applyBuildConfigEnvironment(buildConfig)
        }
        return env
    }

    private static func openIfPresent(_ path: String) throws(SpecError) -> ConfinedDirectory? {
        do {
            return try ConfinedDirectory(path: path)
        } catch {
            if error.kind == .notFound { return nil }
            throw error
        }
    }

    private static func addTargetAndExecEnv(_ env: inout Environment, api: APIVersion, target: TargetPlatform?,
                                            executionEnvironment: String?)
    {
        if api >= APIVersion(0, 10), let target {
            for (name, value) in target.environment { env[name] = value }
        }
        if api >= APIVersion(0, 12), let executionEnvironment, !executionEnvironment.isEmpty {
            env["CNB_EXEC_ENV"] = executionEnvironment
        }
    }
}

extension DetectOutcome {
    /// Classifies a finished `bin/detect` (§3.2): exit 0 reads and checks the plan it wrote (a missing, unreadable,
    /// invalid or, for an extension, `requires`-bearing plan is an error); exit 100 is a failure; anything else
    /// (pass `nil` for a crash or signal) is an error.
    /// - Parameters:
    ///   - exitCode: the exit status, or `nil` if the process did not exit normally.
    ///   - planDirectory: the directory holding the plan file, opened confined (it is hostile).
    ///   - planFile: the plan file's name in that directory.
    ///   - element: the module, for messages and its kind.
    public static func fromDetect(exitCode: Int32?, planDirectory: ConfinedDirectory, planFile: String,
                                  element: GroupElement) -> DetectOutcome
    {
        switch exitCode {
        case 0?:
            do {
                let plan = try DetectPlan.read(from: planDirectory, at: planFile, buildpack: element.description)
                try plan.validate(for: element.kind, context: DocumentContext(file: planFile, buildpack: element.description))
                return .pass(plan)
            } catch {
                return .error(error.description)
            }
        case 100?:
            return .fail
        case let code?:
            return .error("bin/detect exited with status \(code)")
        case nil:
            return .error("bin/detect did not exit normally")
        }
    }
}
