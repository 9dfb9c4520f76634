import Glibc
import Testing
@testable import BuildpackSpec

@Suite("Environment")
struct EnvironmentTests {
    func sorted(_ env: Environment) -> [String] { env.envp.sorted() }

    @Test func keepsInsertionOrder() {
        var env = Environment(envp: ["B=1", "A=2", "NOEQUALS", "=x", "C=a=b"])
        #expect(env.envp == ["B=1", "A=2", "C=a=b"])
        env["B"] = "3"
        env["D"] = ""
        #expect(env.envp == ["B=3", "A=2", "C=a=b", "D="])
        env["A"] = nil
        #expect(env.names == ["B", "C", "D"])
        #expect(env.filtered(allowing: ["D", "B"]).envp == ["B=3", "D="])
        #expect(Environment([("X", "1")]) == Environment(envp: ["X=1"]))
    }

    @Test(arguments: [
        ("VAR", EnvironmentAction.override, "VAR", EnvironmentAction?.some(.override)),
        ("VAR", .default, "VAR", .some(.default)),
        ("VAR.override", .default, "VAR", .some(.override)),
        ("VAR.default", .override, "VAR", .some(.default)),
        ("VAR.prepend", .override, "VAR", .some(.prepend)),
        ("VAR.append", .override, "VAR", .some(.append)),
        ("VAR.", .override, "VAR", .some(.prependPath)),
        ("VAR.delim", .override, "", nil),
        ("VAR.ignore", .override, "", nil),
        ("VAR.bar.append", .override, "", nil),
        ("VAR.APPEND", .override, "", nil),
        (".append", .override, "", nil),
        ("A=B.append", .override, "", nil),
        ("lower.case.x", .override, "", nil),
    ])
    func suffixRules(fileName: String, defaultAction: EnvironmentAction, name: String, action: EnvironmentAction?) {
        let parsed = EnvironmentDirectory.parse(fileName: fileName, defaultAction: defaultAction)
        #expect(parsed?.action == action, "\(fileName)")
        if let parsed { #expect(parsed.name == name) }
    }

    @Test(arguments: [
        // (action, old, value, delimiter, expected)
        (EnvironmentAction.override, String?.some("old"), "new", String?.some("[]"), "new"),
        (.override, nil, "new", nil, "new"),
        (.default, "old", "new", nil, "old"),
        (.default, "", "new", nil, "new"),
        (.default, nil, "new", nil, "new"),
        (.prepend, "old", "new", nil, "newold"),
        (.prepend, "old", "new", "[]", "new[]old"),
        (.prepend, "", "new", "[]", "new"),
        (.append, "old", "new", nil, "oldnew"),
        (.append, "old", "new", ":", "old:new"),
        (.append, nil, "new", ":", "new"),
        (.prependPath, "old", "new", nil, "new:old"),
        (.prependPath, "old", "new", "[]", "new[]old"),
    ])
    func actions(action: EnvironmentAction, old: String?, value: String, delimiter: String?, expected: String) {
        var env = Environment()
        if let old { env["V"] = old }
        env.apply(EnvironmentModification(fileName: "V", name: "V", action: action, value: value, delimiter: delimiter))
        #expect(env["V"] == expected)
    }

    /// E1: env files with suffixes (REF `env_test.go` "performs the matching action").
    @Test func e1PerformsTheMatchingAction() throws {
        let tmp = TemporaryDirectory()
        tmp.mkdir("env/some-dir")
        for name in ["VAR_APPEND", "VAR_APPEND_NEW"] { tmp.write("env/\(name).append", "value-append") }
        for name in ["VAR_APPEND_DELIM", "VAR_APPEND_DELIM_NEW"] {
            tmp.write("env/\(name).append", "value-append-delim")
            tmp.write("env/\(name).delim", "[]")
        }
        for name in ["VAR_PREPEND", "VAR_PREPEND_NEW"] { tmp.write("env/\(name).prepend", "value-prepend") }
        for name in ["VAR_PREPEND_DELIM", "VAR_PREPEND_DELIM_NEW"] {
            tmp.write("env/\(name).prepend", "value-prepend-delim")
            tmp.write("env/\(name).delim", "[]")
        }
        for name in ["VAR_DEFAULT", "VAR_DEFAULT_NEW"] { tmp.write("env/\(name).default", "value-default") }
        for name in ["VAR_OVERRIDE", "VAR_OVERRIDE_NEW"] { tmp.write("env/\(name).override", "value-override") }
        tmp.write("env/VAR_IGNORE.ignore", "value-ignore")

        var env = Environment([
            ("VAR_APPEND", "value-append-orig"), ("VAR_APPEND_DELIM", "value-append-delim-orig"),
            ("VAR_PREPEND", "value-prepend-orig"), ("VAR_PREPEND_DELIM", "value-prepend-delim-orig"),
            ("VAR_DEFAULT", "value-default-orig"), ("VAR_OVERRIDE", "value-override-orig"),
        ])
        env.apply(try EnvironmentDirectory.modifications(in: try tmp.confined(), at: "env", defaultAction: .override))
        #expect(sorted(env) == [
            "VAR_APPEND=value-append-origvalue-append",
            "VAR_APPEND_DELIM=value-append-delim-orig[]value-append-delim",
            "VAR_APPEND_DELIM_NEW=value-append-delim",
            "VAR_APPEND_NEW=value-append",
            "VAR_DEFAULT=value-default-orig",
            "VAR_DEFAULT_NEW=value-default",
            "VAR_OVERRIDE=value-override",
            "VAR_OVERRIDE_NEW=value-override",
            "VAR_PREPEND=value-prependvalue-prepend-orig",
            "VAR_PREPEND_DELIM=value-prepend-delim[]value-prepend-delim-orig",
            "VAR_PREPEND_DELIM_NEW=value-prepend-delim",
            "VAR_PREPEND_NEW=value-prepend",
        ])
    }

    /// E1, no suffix: override ignores the delimiter; the empty-suffix action prepends with it or `:`.
    @Test func e1FilesWithoutSuffix() throws {
        let tmp = TemporaryDirectory()
        tmp.mkdir("env/some-dir")
        for name in ["VAR_NORMAL", "VAR_NORMAL_NEW"] { tmp.write("env/\(name)", "value-normal") }
        for name in ["VAR_NORMAL_DELIM", "VAR_NORMAL_DELIM_NEW"] {
            tmp.write("env/\(name)", "value-normal-delim")
            tmp.write("env/\(name).delim", "[]")
        }
        let original = Environment([("VAR_NORMAL", "value-normal-orig"), ("VAR_NORMAL_DELIM", "value-normal-delim-orig")])
        var overridden = original
        overridden.apply(try EnvironmentDirectory.modifications(in: try tmp.confined(), at: "env", defaultAction: .override))
        #expect(sorted(overridden) == [
            "VAR_NORMAL=value-normal", "VAR_NORMAL_DELIM=value-normal-delim",
            "VAR_NORMAL_DELIM_NEW=value-normal-delim", "VAR_NORMAL_NEW=value-normal",
        ])
        var prepended = original
        prepended.apply(try EnvironmentDirectory.modifications(in: try tmp.confined(), at: "env", defaultAction: .prependPath))
        #expect(sorted(prepended) == [
            "VAR_NORMAL=value-normal:value-normal-orig", "VAR_NORMAL_DELIM=value-normal-delim[]value-normal-delim-orig",
            "VAR_NORMAL_DELIM_NEW=value-normal-delim", "VAR_NORMAL_NEW=value-normal",
        ])
    }

    @Test func filesApplyInFileNameOrder() throws {
        // "X.append" sorts before "X.prepend": append first, then prepend.
        let tmp = TemporaryDirectory()
        tmp.write("env/X.prepend", "pre")
        tmp.write("env/X.append", "post")
        tmp.write("env/X.delim", "-")
        var env = Environment([("X", "mid")])
        let modifications = try EnvironmentDirectory.modifications(in: try tmp.confined(), at: "env", defaultAction: .override)
        #expect(modifications.map(\.fileName) == ["X.append", "X.prepend"])
        env.apply(modifications)
        #expect(env["X"] == "pre-mid-post")
        // Contents are used verbatim: no trimming.
        tmp.write("env/Y", " spaced \n")
        env.apply(try EnvironmentDirectory.modifications(in: try tmp.confined(), at: "env", defaultAction: .override))
        #expect(env["Y"] == " spaced \n")
        // A missing directory contributes nothing.
        #expect(try EnvironmentDirectory.modifications(in: try tmp.confined(), at: "nope", defaultAction: .override).isEmpty)
    }

    /// The platform env rules (REF "should apply platform env vars as filename=file-contents").
    @Test func platformEnvHasNoSuffixParsingAndPrependsPathVariables() throws {
        let tmp = TemporaryDirectory()
        tmp.mkdir("platform/env/some-dir")
        tmp.write("platform/env/PATH", "value-path")
        tmp.write("platform/env/LD_LIBRARY_PATH", "value-ld-library-path")
        tmp.write("platform/env/LIBRARY_PATH", "value-library-path")
        tmp.write("platform/env/VAR_NORMAL", "value-normal")
        tmp.write("platform/env/VAR_OVERRIDE", "value-override")
        tmp.write("platform/env/FOO.append", "verbatim")
        tmp.symlink("platform/env/some-sym-dir", to: tmp.absolute("platform/env/some-dir"))
        tmp.symlink("platform/env/VAR_SYM", to: tmp.absolute("platform/env/VAR_NORMAL"))
        var env = Environment([("VAR_EMPTY", ""), ("VAR_OVERRIDE", "value-override-orig"), ("PATH", "value-path-orig"),
                               ("LD_LIBRARY_PATH", "value-ld-library-path-orig1:value-ld-library-path-orig2")])
        try env.applyPlatformEnvironment(try tmp.confined("platform"))
        #expect(sorted(env) == [
            "FOO.append=verbatim",
            "LD_LIBRARY_PATH=value-ld-library-path:value-ld-library-path-orig1:value-ld-library-path-orig2",
            "LIBRARY_PATH=value-library-path",
            "PATH=value-path:value-path-orig",
            "VAR_EMPTY=",
            "VAR_NORMAL=value-normal",
            "VAR_OVERRIDE=value-override",
            "VAR_SYM=value-normal",
        ])
    }

    /// E2: platform env, then the build-config env (no suffix = default).
    @Test func e2PlatformThenBuildConfig() throws {
        let tmp = TemporaryDirectory()
        tmp.mkdir("platform/env/some-dir")
        tmp.write("platform/env/VAR_DNE", "value-platform-dne")
        tmp.write("platform/env/VAR_PLATFORM_DEFAULT", "value-platform-override")
        tmp.write("platform/env/VAR_CHANGE", "value-platform-change")
        tmp.write("platform/env/VAR_OVERRIDE", "value-platform")
        tmp.mkdir("base/env/some-dir")
        tmp.write("base/env/VAR_NORMAL", "value-normal")
        tmp.write("base/env/VAR_OVERRIDE.override", "value-override")
        tmp.write("base/env/VAR_DNE.default", "value-dne")
        tmp.write("base/env/VAR_EXIST.default", "value-override")
        tmp.write("base/env/VAR_DEFAULT", "value-default")
        tmp.write("base/env/VAR_CHANGE.prepend", "value-prepend")
        tmp.write("base/env/VAR_CHANGE.delim", ":")
        tmp.write("base/env/VAR_CHANGE.append", "value-append")
        tmp.symlink("base/env/some-sym-dir", to: tmp.absolute("base/env/some-dir"))
        tmp.symlink("base/env/VAR_SYM", to: tmp.absolute("base/env/VAR_NORMAL"))
        var env = Environment([("VAR_EMPTY", ""), ("VAR_EXIST", "value-exist"), ("VAR_DEFAULT", "value-override-orig")])
        try env.applyPlatformEnvironment(try tmp.confined("platform"))
        try env.applyBuildConfigEnvironment(try tmp.confined("base"))
        #expect(sorted(env) == [
            "VAR_CHANGE=value-prepend:value-platform-change:value-append",
            "VAR_DEFAULT=value-override-orig",
            "VAR_DNE=value-platform-dne",
            "VAR_EMPTY=",
            "VAR_EXIST=value-exist",
            "VAR_NORMAL=value-normal",
            "VAR_OVERRIDE=value-override",
            "VAR_PLATFORM_DEFAULT=value-platform-override",
            "VAR_SYM=value-normal",
        ])
    }

    @Test func buildLayerPrependsPathsAndAppliesEnvThenEnvBuild() throws {
        let tmp = TemporaryDirectory()
        tmp.mkdir("layers/bp/node/bin")
        tmp.mkdir("layers/bp/node/lib")
        tmp.mkdir("layers/bp/node/pkgconfig")
        tmp.write("layers/bp/node/env/NODE_HOME.override", "/node")
        tmp.write("layers/bp/node/env/X", "from-env")
        tmp.write("layers/bp/node/env.build/X", "from-env-build")
        tmp.write("layers/bp/node/env.launch/X", "launch-only")
        var env = Environment([("PATH", "/usr/bin"), ("LIBRARY_PATH", "")])
        let layer = try tmp.confined("layers/bp/node")
        try env.applyBuildLayer(layer)
        let root = tmp.absolute("layers/bp/node")
        #expect(env["PATH"] == "\(root)/bin:/usr/bin")
        #expect(env["LD_LIBRARY_PATH"] == "\(root)/lib")
        #expect(env["LIBRARY_PATH"] == "\(root)/lib")
        #expect(env["PKG_CONFIG_PATH"] == "\(root)/pkgconfig")
        #expect(env["CPATH"] == nil)
        #expect(env["NODE_HOME"] == "/node")
        #expect(env["X"] == "from-env-build")
    }

    @Test func buildLayersOfABuildpackApplyInNameOrderAndOnlyBuildLayers() throws {
        let tmp = TemporaryDirectory()
        tmp.write("bp/a.toml", "[types]\nbuild = true")
        tmp.mkdir("bp/a/bin")
        tmp.write("bp/b.toml", "[types]\nbuild = true")
        tmp.mkdir("bp/b/bin")
        tmp.write("bp/c.toml", "[types]\nlaunch = true")
        tmp.mkdir("bp/c/bin")
        tmp.write("bp/launch.toml", "")
        let dir = try tmp.confined("bp")
        let layers = try BuildpackLayers.scan(dir, buildpack: "bp@1")
        var env = Environment([("PATH", "/usr/bin")])
        try env.applyBuildLayers(of: dir, layers)
        let root = tmp.absolute("bp")
        // Within one buildpack, the layer that sorts later lands in front (REF behaviour).
        #expect(env["PATH"] == "\(root)/b/bin:\(root)/a/bin:/usr/bin")
    }

    @Test(.timeLimit(.minutes(5)))
    func hostileLayerEnvDirectories() throws {
        let tmp = TemporaryDirectory()
        tmp.write("secret", "s3cr3t")
        tmp.mkdir("layer/env")
        tmp.symlink("layer/env/STOLEN", to: tmp.absolute("secret"))
        let symlinked = specError { () throws(SpecError) in
            try EnvironmentDirectory.modifications(in: try tmp.confined("layer"), at: "env", defaultAction: .override,
                                                   buildpack: "evil@1")
        }
        #expect(symlinked?.kind == .notRegularFile)
        #expect(symlinked?.buildpack == "evil@1")

        let fifo = TemporaryDirectory()
        fifo.mkdir("layer/env")
        fifo.mkfifo("layer/env/BLOCK")
        let fifoError = specError { () throws(SpecError) in
            try EnvironmentDirectory.modifications(in: try fifo.confined("layer"), at: "env", defaultAction: .override)
        }
        #expect(fifoError?.message.contains("FIFO") == true)

        let nul = TemporaryDirectory()
        nul.write("layer/env/X", bytes: [0x61, 0, 0x62])
        #expect(specError { () throws(SpecError) in
            try EnvironmentDirectory.modifications(in: try nul.confined("layer"), at: "env", defaultAction: .override)
        }?.message.contains("NUL") == true)

        let big = TemporaryDirectory()
        big.write("layer/env/X", bytes: [UInt8](repeating: 0x61, count: EnvironmentDirectory.fileLimit + 1))
        #expect(specError { () throws(SpecError) in
            try EnvironmentDirectory.modifications(in: try big.confined("layer"), at: "env", defaultAction: .override)
        }?.kind == .tooLarge)

        // The env directory itself being a symlink out of the layer is refused too.
        let linked = TemporaryDirectory()
        linked.write("elsewhere/X", "x")
        linked.mkdir("layer")
        linked.symlink("layer/env", to: linked.absolute("elsewhere"))
        #expect(specError { () throws(SpecError) in
            try EnvironmentDirectory.modifications(in: try linked.confined("layer"), at: "env", defaultAction: .override)
        }?.kind == .notRegularFile)
    }
}
