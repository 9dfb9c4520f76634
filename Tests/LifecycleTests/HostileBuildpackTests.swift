import Foundation
import StockadeTestSupport
import Testing

/// Buildpacks that attack: what they write is hostile input, and where they
/// write must be only their own layers and the workspace.
@Suite struct HostileBuildpackTests {
    let fx = Fixture.shared

    func layersPath() -> String { fx.makeDirectory("work", mode: 0o777) + "/layers" }

    @Test(arguments: Invoker.all)
    func aBuildpackCannotWriteOutsideItsLayersAndTheWorkspace(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let first = try fx.scriptBuildpack(id: "test/first", build: """
            mkdir -p "$CNB_LAYERS_DIR/tools/bin" && printf '[types]\\nbuild = true\\n' > "$CNB_LAYERS_DIR/tools.toml"
            """)
        let intruder = try fx.scriptBuildpack(id: "test/intruder", build: """
            try() { if (echo pwned > "$1") 2>/dev/null; then echo "WROTE $1"; else echo "DENIED $1"; fi; }
            {
              try /layers/test_first/pwned
              try /layers/test_first/tools/bin/pwned
              try /platform/pwned
              try "$CNB_BUILDPACK_DIR/bin/pwned"
              try /etc/pwned
              try /usr/pwned
              try /pwned
              try /cnb/plan/plan.toml
              try /workspace/allowed
              try "$CNB_LAYERS_DIR/allowed"
            } > "$CNB_LAYERS_DIR/results"
            """)
        let platform = fx.makeDirectory("platform", mode: 0o777)
        try FileManager.default.createDirectory(atPath: platform + "/env", withIntermediateDirectories: true)
        let layers = layersPath()
        let app = fx.makeDirectory("app")
        let r = fx.stockade(["build", "--buildpack", first, "--buildpack", intruder, "--path", app,
                             "--platform", platform, "--layers", layers], as: invoker)
        #expect(r.status == 0, "\(r)")
        let results = (try? String(contentsOfFile: layers + "/test_intruder/results", encoding: .utf8)) ?? ""
        let lines = results.split(separator: "\n").map(String.init)
        #expect(lines.count == 10, "\(results)")
        for line in lines where !line.hasSuffix("/allowed") {
            #expect(line.hasPrefix("DENIED"), "\(line)")
        }
        #expect(lines.filter { $0.hasSuffix("/allowed") }.allSatisfy { $0.hasPrefix("WROTE") }, "\(results)")
        for path in [layers + "/test_first/pwned", layers + "/test_first/tools/bin/pwned", platform + "/pwned",
                     intruder + "/bin/pwned"] {
            #expect(!FileManager.default.fileExists(atPath: path), "\(path) was written")
        }
        #expect(!FileManager.default.fileExists(atPath: app + "/allowed"), "the user's app is never written: the build gets a copy")
    }

    /// The build's temporary layers go afterwards, whatever the buildpack left there: links are
    /// removed as links, so what they point at survives even where the invoker could delete it
    /// (a world-writable directory), and read-only and deep directories go too.
    @Test(arguments: Invoker.all)
    func removingABuildsLayersFollowsNoLinkTheBuildpackPlanted(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let victim = fx.makeDirectory("victim", mode: 0o777)
        try FileManager.default.createDirectory(atPath: victim + "/inner", withIntermediateDirectories: true)
        chmod(victim + "/inner", 0o777)
        FileManager.default.createFile(atPath: victim + "/inner/kept", contents: Data("kept".utf8))
        chmod(victim + "/inner/kept", 0o666)
        let planter = try fx.scriptBuildpack(id: "test/planter", build: """
            cd "$CNB_LAYERS_DIR"
            ln -s "\(victim)" toDirectory
            ln -s "\(victim)/inner/kept" toFile
            mkdir -p deep/a/b/c/d/e/f/g && ln -s "\(victim)/inner" deep/a/b/c/d/e/f/g/toInner
            mkdir readOnly && ln -s "\(victim)" readOnly/link && chmod 500 readOnly
            """)
        let scratch = fx.makeDirectory("tmp", mode: 0o777)
        let r = Fixture.run(invoker.prefix + ["/usr/bin/env", "TMPDIR=" + scratch, fx.stockade,
                                              "build", "--buildpack", planter, "--path", fx.makeDirectory("app")])
        #expect(r.status == 0, "\(r)")
        #expect(try String(contentsOfFile: victim + "/inner/kept", encoding: .utf8) == "kept")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch) == [], "the build left its scratch space behind")
    }

    /// What a buildpack leaves behind, and the error the build must end with.
    static let hostileOutputs: [(String, String)] = [
        (#"printf '[types]\nlaunch = true\n' > "$CNB_LAYERS_DIR/..toml""#, "layer name"),
        (#"printf '[types]\nlaunch = true\n' > "$CNB_LAYERS_DIR/...toml""#, "layer name"),
        (#"ln -s /etc/passwd "$CNB_LAYERS_DIR/launch.toml""#, "symbolic link"),
        (#"mkdir -p "$CNB_LAYERS_DIR/real" && ln -s real "$CNB_LAYERS_DIR/sneaky" && printf '[types]\nbuild = true\n' > "$CNB_LAYERS_DIR/sneaky.toml""#, "sneaky"),
        (#"mkfifo "$CNB_LAYERS_DIR/launch.toml""#, "not a regular file"),
        (#"truncate -s 100M "$CNB_LAYERS_DIR/launch.toml""#, "more than the limit"),
        (#"python3 -c 'print("x = " + "[" * 100000)' > "$CNB_LAYERS_DIR/launch.toml""#, "deep"),
        (#"printf 'x = "\377"\n' > "$CNB_LAYERS_DIR/launch.toml""#, "UTF-8"),
        (#"printf 'launch = true\n' > "$CNB_LAYERS_DIR/top.toml""#, "types"),
        (#"printf '[types]\ncache = true\n' > "$CNB_LAYERS_DIR/ghost.toml""#, "has no directory"),
        (#"printf '[[unmet]]\nname = "nothing-asked"\n' > "$CNB_LAYERS_DIR/build.toml""#, "unmet"),
        (#"printf '[[processes]]\ntype = "we/b"\ncommand = ["x"]\n' > "$CNB_LAYERS_DIR/launch.toml""#, "we/b"),
        (#"printf '[[processes]]\ntype = "web"\ncommand = ["x"]\ndefault = true\n[[processes]]\ntype = "w2"\ncommand = ["y"]\ndefault = true\n' > "$CNB_LAYERS_DIR/launch.toml""#, "default"),
    ]

    @Test(.timeLimit(.minutes(5)), arguments: hostileOutputs)
    func hostileOutputIsThatBuildpacksError(_ script: String, _ expected: String) throws {
        let hostile = try fx.scriptBuildpack(id: "test/hostile", build: "set -e\n" + script)
        let r = fx.stockade(["build", "--buildpack", hostile, "--path", fx.makeDirectory("app"), "--layers", layersPath()],
                            as: .suiteUser)
        #expect(r.status == 51, "\(r)")
        let errorLine = r.stderr.split(separator: "\n").first { $0.hasPrefix("stockade: error: ") }.map(String.init) ?? ""
        #expect(errorLine.contains("test/hostile@0.0.1"), "\(r.stderr)")
        #expect(errorLine.localizedCaseInsensitiveContains(expected), "\(r.stderr)")
        #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("backtrace"))
    }

    @Test func aFailingBuildStopsThePhaseWith51() throws {
        let failing = try fx.scriptBuildpack(id: "test/failing", build: "echo about to fail; exit 3")
        let r = fx.stockade(["build", "--buildpack", failing, "--path", fx.makeDirectory("app")], as: .suiteUser)
        #expect(r.status == 51, "\(r)")
        #expect(r.stdout.contains("[test/failing] about to fail"))
        #expect(r.stderr.contains("bin/build exited with 3"))
    }

    @Test func anUnsupportedBuildpackAPIExits12() throws {
        let old = try fx.scriptBuildpack(id: "test/old", build: "exit 0", api: "0.6")
        let r = fx.stockade(["detect", "--buildpack", old, "--path", fx.makeDirectory("app")], as: .suiteUser)
        #expect(r.status == 12, "\(r)")
        #expect(r.stderr.contains("0.6"))
    }

    @Test(.timeLimit(.minutes(5)))
    func aHangingDetectIsReportedAsATimeout() throws {
        let dir = try fx.scriptBuildpack(id: "test/sleepy", build: "exit 0")
        try "#!/bin/sh\nsleep 600\n".write(toFile: dir + "/bin/detect", atomically: true, encoding: .utf8)
        chmod(dir + "/bin/detect", 0o755)
        let r = fx.stockade(["detect", "--buildpack", dir, "--path", fx.makeDirectory("app"), "--timeout", "1"], as: .suiteUser)
        #expect(r.status == 21, "\(r)")
        #expect(r.stdout.contains("timeout"), "\(r)")
        #expect(r.stderr.contains("timed out after 1 s"), "\(r)")
    }

    /// The sandbox's pid 1 is a copy of the supervisor: in detect and in build, nothing a
    /// buildpack reads of it shows the supervisor's arguments (`--report` here) or environment.
    @Test(arguments: Invoker.all)
    func aBuildpackSeesNothingOfTheSupervisor(_ invoker: Invoker) throws {
        let marker = "supervisor-marker-7d2b"
        let read = "cat /proc/1/cmdline /proc/[0-9]*/cmdline /proc/1/environ /proc/1/maps /proc/1/auxv 2>/dev/null | tr '\\0' ' '"
        let bp = try fx.scriptBuildpack(id: "test/peek", build: """
            echo "pid 1: $(\(read))"
            echo "cmdline of pid 1: $(wc -c < /proc/1/cmdline) bytes"
            """)
        let detect = fx.makeDirectory("bp-peek-detect")
        try FileManager.default.createDirectory(atPath: detect + "/bin", withIntermediateDirectories: true)
        for name in ["buildpack.toml", "bin/build"] { try FileManager.default.copyItem(atPath: bp + "/" + name, toPath: detect + "/" + name) }
        // Detect's output reaches the user only in the message of a failed detect: its last line.
        try """
            #!/bin/sh
            out=$(\(read))
            case "$out" in *\(marker)*|*--report*) echo "leaked: $out" ;; *) echo "clean: $(wc -c < /proc/1/cmdline) bytes" ;; esac
            exit 1
            """.write(toFile: detect + "/bin/detect", atomically: true, encoding: .utf8)
        for path in [detect + "/bin", detect + "/bin/detect", detect + "/bin/build"] { chmod(path, 0o755) }
        let report = fx.makeDirectory("report-\(marker)", mode: 0o777) + "/report.json"
        let app = fx.makeDirectory("app")
        func stockade(_ args: [String]) -> Outcome {
            Fixture.run(["STOCKADE_SUPERVISOR_SECRET=\(marker)"] + invoker.prefix + [fx.stockade] + args + ["--report", report])
        }
        let built = stockade(["build", "--buildpack", bp, "--path", app])
        #expect(built.status == 0, "\(built)")
        #expect(built.stdout.contains("cmdline of pid 1: 0 bytes"), "\(built)")
        #expect(built.stdout.contains("pid 1: ") && !built.stdout.contains(marker) && !built.stdout.contains("--report"), "\(built)")
        let detected = stockade(["detect", "--buildpack", detect, "--path", app])
        #expect(detected.stderr.contains("clean: 0 bytes") || detected.stdout.contains("clean: 0 bytes"), "\(detected)")
        #expect(!detected.stderr.contains(marker) && !detected.stdout.contains(marker), "\(detected)")
    }
}
