import Foundation
import StockadeTestSupport
import Testing

/// The launcher as images run it: the real static binary at /cnb/lifecycle/launcher in a real sandbox,
/// with the layers at /layers and the app at /workspace.
@Suite struct LauncherTests {
    /// One buildpack with an `env` layer for the env tests; web and worker print their environment.
    func environmentImage() throws -> LaunchImage {
        let image = try LaunchImage(metadata: buildpack()
            + process("web", ["/usr/bin/env"]) + process("worker", ["/usr/bin/env"]))
        try image.write("test_bp/tools/env/VAR", "from-env")
        try image.write("test_bp/tools/env/ORDER", "env")
        try image.write("test_bp/tools/env.launch/ORDER", "launch")
        try image.write("test_bp/tools/env.launch/OTHER.append", "b")
        try image.write("test_bp/tools/env.launch/OTHER.delim", ",")
        try image.write("test_bp/tools/env.launch/KEPT.default", "default-value")
        try image.write("test_bp/tools/env.build/BUILD_ONLY", "build")
        try image.write("test_bp/tools/env.launch/web/ONLY_WEB", "web-value")
        try image.write("test_bp/tools/env.launch/worker/ONLY_WEB", "worker-value")
        // A later layer applies after the first one (the delimiter is read from its own directory).
        try image.write("test_bp/zz/env.launch/OTHER.prepend", "0")
        try image.write("test_bp/zz/env.launch/OTHER.delim", ":")
        return image
    }

    @Test(arguments: Invoker.all)
    func envFilesFollowTheSuffixRulesPerProcessType(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let image = try environmentImage()
        let baseEnv = ["OTHER=a", "KEPT=kept"]
        let web = image.launch(["/cnb/process/web"], env: baseEnv, as: invoker)
        #expect(web.status == 0, "\(web)")
        let env = web.environment
        #expect(env["VAR"] == "from-env")
        #expect(env["ORDER"] == "launch", "env.launch applies after env")
        #expect(env["OTHER"] == "0:a,b", "append with its .delim, then the next layer's prepend with its own")
        #expect(env["KEPT"] == "kept", ".default leaves a set value")
        #expect(env["BUILD_ONLY"] == nil, "env.build is for the build")
        #expect(env["ONLY_WEB"] == "web-value")
        for variable in ["CNB_LAYERS_DIR", "CNB_APP_DIR", "CNB_PLATFORM_API", "CNB_DEPRECATION_MODE"] {
            #expect(env[variable] == nil, "\(variable) is the launcher's alone")
        }
        #expect(env["PATH"] == "/usr/bin:/bin", "the launcher's own directories leave PATH")

        let worker = image.launch(["/cnb/process/worker"], env: baseEnv, as: invoker)
        #expect(worker.status == 0, "\(worker)")
        #expect(worker.environment["ONLY_WEB"] == "worker-value")
        #expect(worker.environment["VAR"] == "from-env")

        let user = image.launch(["/cnb/lifecycle/launcher", "--", "/usr/bin/env"], env: baseEnv, as: invoker)
        #expect(user.status == 0, "\(user)")
        #expect(user.environment["ONLY_WEB"] == nil, "a user command gets no env.launch/<type>")
        #expect(user.environment["ORDER"] == "launch")
    }

    @Test func layerBinAndLibArePrependedAndCommandsAreFoundThere() throws {
        let image = try LaunchImage(metadata: buildpack("test/first") + buildpack("test/second")
            + process("web", ["hello", "arg"], buildpack: "test/second"))
        for layer in ["test_first/a", "test_first/b"] {
            try image.write(layer + "/bin/.keep", "")
            try image.write(layer + "/lib/.keep", "")
        }
        try image.write("test_first/c.ignore/bin/.keep", "")
        try image.write("fake/bin/.keep", "")
        try image.link("test_first/linked", to: "/layers/fake")
        try image.script("test_second/z/bin/hello", #"echo "hello from z: $1"; env"#)
        try image.script("test_first/a/bin/hello", #"echo "hello from a""#)

        let r = image.launch(["/cnb/process/web"], env: ["LD_LIBRARY_PATH=/base/lib"])
        #expect(r.status == 0, "\(r)")
        #expect(r.lines.first == "hello from z: arg", "the later buildpack's bin comes first on PATH")
        #expect(r.environment["PATH"] == "/layers/test_second/z/bin:/layers/test_first/b/bin:/layers/test_first/a/bin:/usr/bin:/bin",
                "no .ignore layer, no symbolic link followed as a layer")
        #expect(r.environment["LD_LIBRARY_PATH"] == "/layers/test_first/b/lib:/layers/test_first/a/lib:/base/lib")
    }

    /// A default, two plain types, and two limited to execution environments.
    static let selectionMetadata = "buildpack-default-process-type = \"web\"\n" + buildpack()
        + process("anywhere", ["/bin/echo", "anywhere"], extra: "exec-env = ['*']")
        + process("dev", ["/bin/echo", "dev"], extra: "exec-env = ['development']")
        + process("web", ["/bin/echo", "web"]) + process("worker", ["/bin/echo", "worker"])

    static let selections: [(argv: [String], env: [String], output: String)] = [
        (["/cnb/lifecycle/launcher"], [], "web"),
        (["/cnb/lifecycle/launcher", "extra"], [], "web extra"),
        (["/cnb/lifecycle/launcher"], ["CNB_PROCESS_TYPE=worker"], "worker"),
        (["/cnb/lifecycle/launcher", "extra"], ["CNB_PROCESS_TYPE=worker"], "worker extra"),
        (["/cnb/process/worker"], [], "worker"),
        (["/cnb/process/worker"], ["CNB_PROCESS_TYPE=web"], "worker"),
        (["/cnb/lifecycle/launcher", "--", "/bin/echo", "direct"], [], "direct"),
        (["/cnb/lifecycle/launcher", "--", "echo", "found", "on", "PATH"], ["CNB_PROCESS_TYPE="], "found on PATH"),
        (["/cnb/process/anywhere"], [], "anywhere"),
        (["/cnb/process/dev"], ["CNB_EXEC_ENV=development"], "dev"),
    ]

    @Test(arguments: selections)
    func processSelection(_ argv: [String], _ env: [String], _ output: String) throws {
        let image = try LaunchImage(metadata: Self.selectionMetadata, types: ["web", "worker", "dev", "anywhere"])
        let r = image.launch(argv, env: env)
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout == output + "\n", "\(r)")
    }

    static let undefinedTypes: [(argv: [String], env: [String], type: String)] = [
        (["/cnb/process/ghost"], [], "ghost"),
        (["/cnb/process/ghost"], ["CNB_PROCESS_TYPE=web"], "ghost"),
        (["/cnb/lifecycle/launcher"], ["CNB_PROCESS_TYPE=ghost"], "ghost"),
        (["/cnb/process/dev"], [], "dev"),
        (["/cnb/process/dev"], ["CNB_EXEC_ENV=staging"], "dev"),
    ]

    @Test(arguments: undefinedTypes)
    func anUndefinedProcessTypeIsOneClearError(_ argv: [String], _ env: [String], _ type: String) throws {
        let image = try LaunchImage(metadata: Self.selectionMetadata, types: ["ghost", "dev"])
        let r = image.launch(argv, env: env)
        #expect(r.isOneLineLauncherError, "\(r)")
        #expect(r.stderr == "stockade-launcher: process type \"\(type)\" is not defined (defined: anywhere, web, worker)\n",
                "\(r)")
        #expect(r.stdout.isEmpty)
    }

    @Test func withoutADefaultArgumentsAreTheCommandAndNoneIsAnError() throws {
        let image = try LaunchImage(metadata: buildpack() + process("web", ["/bin/echo", "web"]))
        let user = image.launch(["/cnb/lifecycle/launcher", "echo", "user", "command"])
        #expect(user.status == 0, "\(user)")
        #expect(user.stdout == "user command\n")
        let none = image.launch(["/cnb/lifecycle/launcher"])
        #expect(none.isOneLineLauncherError, "\(none)")
        #expect(none.stderr.contains("no default process type"), "\(none)")
    }

    /// A current buildpack and a Buildpack API 0.8 one, whose processes print their arguments.
    static let argumentsMetadata = buildpack("test/new") + buildpack("test/old", api: "0.8")
        + process("new", ["/bin/echo", "fixed"], args: ["default"], buildpack: "test/new")
        + process("new-single", ["/bin/echo"], args: ["default"], buildpack: "test/new")
        + process("old-single", ["/bin/echo"], args: ["default"], buildpack: "test/old")
        + process("old-multi", ["/bin/echo", "fixed"], args: ["default"], buildpack: "test/old")
        + """
        [[processes]]
        type = "old-shell"
        command = 'echo "from bash $BASH_VERSINFO"'
        args = ["default"]
        direct = false
        buildpack-id = "test/old"

        """

    static let argumentCases: [(type: String, userArguments: [String], output: String)] = [
        ("new", [], "fixed default"),
        ("new", ["a", "b"], "fixed a b"),
        ("new", ["--", "x"], "fixed -- x"),
        ("new-single", ["a"], "a"),
        ("old-single", [], "default"),
        ("old-single", ["a"], "default a"),
        ("old-multi", ["a"], "fixed a"),
        ("old-shell", ["a b"], "from bash 5 default a b"),
    ]

    @Test(arguments: argumentCases)
    func userArgumentsReplaceOrFollowArgs(_ type: String, _ userArguments: [String], _ output: String) throws {
        let image = try LaunchImage(metadata: Self.argumentsMetadata, types: [type])
        let r = image.launch(["/cnb/process/" + type] + userArguments)
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout == output + "\n", "\(r)")
    }

    @Test func aShellProcessWithoutBashIsAnError() throws {
        let image = try LaunchImage(metadata: Self.argumentsMetadata, types: ["old-shell"])
        // Only the launcher's directories on PATH, which it removes: no bash to be found.
        let r = image.launch(["/cnb/process/old-shell"], env: ["PATH=/cnb/process:/cnb/lifecycle"])
        #expect(r.isOneLineLauncherError, "\(r)")
        #expect(r.stderr.contains("bash is not on PATH"), "\(r)")
    }

    @Test func workingDirectoryIsHonoured() throws {
        let image = try LaunchImage(metadata: buildpack()
            + process("absolute", ["/bin/pwd"], extra: "working-dir = '/workspace/sub'")
            + process("missing", ["/bin/pwd"], extra: "working-dir = '/workspace/none'")
            + process("relative", ["/bin/pwd"], extra: "working-dir = 'sub'")
            + process("web", ["/bin/pwd"]), types: ["absolute", "missing", "relative", "web"])
        try FileManager.default.createDirectory(atPath: image.app + "/sub", withIntermediateDirectories: true)
        for (type, expected) in [("absolute", "/workspace/sub"), ("relative", "/workspace/sub"), ("web", "/workspace")] {
            let r = image.launch(["/cnb/process/" + type])
            #expect(r.status == 0 && r.stdout == expected + "\n", "\(type): \(r)")
        }
        let missing = image.launch(["/cnb/process/missing"])
        #expect(missing.isOneLineLauncherError, "\(missing)")
        #expect(missing.stderr.contains("/workspace/none"), "\(missing)")
    }

    @Test func aCommandThatCannotRunIsAnError() throws {
        let image = try LaunchImage(metadata: buildpack() + process("web", ["no-such-program"])
            + process("worker", ["/workspace/data.txt"]))
        try image.write("data.txt", "not a program", under: image.app)
        let missing = image.launch(["/cnb/process/web"])
        #expect(missing.isOneLineLauncherError, "\(missing)")
        #expect(missing.stderr == "stockade-launcher: cannot run no-such-program: not found on PATH\n", "\(missing)")
        let denied = image.launch(["/cnb/process/worker"])
        #expect(denied.isOneLineLauncherError, "\(denied)")
        #expect(denied.stderr.contains("cannot run /workspace/data.txt: Permission denied"), "\(denied)")
    }
}
