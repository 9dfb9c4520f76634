import Foundation
import StockadeTestSupport
import Testing

/// What the reference lifecycle and pack accept and Stockade must too: IDs with `_`, builders holding
/// buildpacks the order never names, project.toml in both schemas, inline buildpacks, pre and post groups.
@Suite struct CompatibilityTests {
    let fx = Fixture.shared

    func layersPath() -> String { fx.makeDirectory("work", mode: 0o777) + "/layers" }

    func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    func write(_ text: String, to path: String, mode: mode_t = 0o644) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, mode)
    }

    /// A buildpack at `dir` whose detect passes and whose build runs `build`.
    func buildpack(at dir: String, id: String, version: String = "0.0.1", api: String = "0.10",
                   build: String = "echo \"built in $(pwd)\"", extra: String = "") throws {
        try write("api = \"\(api)\"\n[buildpack]\nid = \"\(id)\"\nversion = \"\(version)\"\n" + extra, to: dir + "/buildpack.toml")
        try write("#!/bin/sh\nexit 0\n", to: dir + "/bin/detect", mode: 0o755)
        try write("#!/bin/sh\n" + build + "\n", to: dir + "/bin/build", mode: 0o755)
        chmod(dir + "/bin", 0o755)
    }

    /// A builder layout (`<dir>/<escaped id>/<version>/`) holding a good buildpack with `_` in its ID, one with
    /// an unsupported API, one whose buildpack.toml is not TOML, and a composite naming the good one.
    func builderLayout() throws -> String {
        let dir = fx.makeDirectory("buildpacks")
        try buildpack(at: dir + "/simple_buildpack/0.0.1", id: "simple_buildpack")
        try buildpack(at: dir + "/future/0.0.1", id: "future", api: "0.99")
        try write("this is [not toml", to: dir + "/broken/0.0.1/buildpack.toml")
        try write("api = \"0.10\"\n[buildpack]\nid = \"meta/composite\"\nversion = \"1.0.0\"\n"
                  + "[[order]]\n[[order.group]]\nid = \"simple_buildpack\"\nversion = \"0.0.1\"\n",
                  to: dir + "/meta_composite/1.0.0/buildpack.toml")
        for sub in ["simple_buildpack", "future", "broken", "meta_composite"] { chmod(dir + "/" + sub, 0o755) }
        return dir
    }

    func order(_ ids: [(String, String)]) throws -> String {
        let path = fx.makeDirectory("order") + "/order.toml"
        try write("[[order]]\n" + ids.map { "[[order.group]]\nid = \"\($0.0)\"\nversion = \"\($0.1)\"\n" }.joined(), to: path)
        return path
    }

    @Test(arguments: Invoker.all)
    func anIDWithUnderscoreBuildsWithOneWarningAndOthersInTheBuilderAreNotRead(_ invoker: Invoker) throws {
        let buildpacks = try builderLayout()
        let layers = layersPath()
        let r = fx.stockade(["build", "--buildpacks-dir", buildpacks, "--order", try order([("simple_buildpack", "0.0.1")]),
                             "--path", fx.makeDirectory("app"), "--layers", layers], as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("[simple_buildpack] built in /workspace"), "\(r)")
        let warnings = r.stderr.split(separator: "\n").filter { $0.contains("warning:") }
        #expect(warnings.count == 1 && warnings[0].contains("\"simple_buildpack\" contains \"_\""), "\(r.stderr)")
        #expect(read(layers + "/group.toml").contains("id = \"simple_buildpack\""))
        #expect(FileManager.default.fileExists(atPath: layers + "/simple_buildpack"))
    }

    @Test(arguments: Invoker.all)
    func aCompositeIsReadThroughAndAnUnsupportedAPIItNamesStillFailsWith12(_ invoker: Invoker) throws {
        let buildpacks = try builderLayout()
        let app = fx.makeDirectory("app")
        let composite = fx.stockade(["detect", "--buildpacks-dir", buildpacks, "--order", try order([("meta/composite", "1.0.0")]),
                                     "--path", app], as: invoker)
        #expect(composite.status == 0, "\(composite)")
        #expect(composite.stdout.contains("pass  simple_buildpack@0.0.1"), "\(composite)")
        let future = fx.stockade(["build", "--buildpacks-dir", buildpacks, "--order", try order([("future", "0.0.1")]),
                                  "--path", app], as: invoker)
        #expect(future.status == 12, "\(future)")
        #expect(future.stderr.contains("Buildpack API 0.99 is not supported"), "\(future)")
        let broken = fx.stockade(["build", "--buildpacks-dir", buildpacks, "--order", try order([("broken", "0.0.1")]),
                                  "--path", app], as: invoker)
        #expect(broken.status == 3 && broken.stderr.contains("broken/0.0.1/buildpack.toml"), "\(broken)")
    }

    @Test func aCompositeCycleIsAnErrorNotAHang() throws {
        let dir = fx.makeDirectory("buildpacks")
        for (me, other) in [("a", "b"), ("b", "a")] {
            try write("api = \"0.10\"\n[buildpack]\nid = \"\(me)\"\nversion = \"1\"\n"
                      + "[[order]]\n[[order.group]]\nid = \"\(other)\"\nversion = \"1\"\n", to: dir + "/\(me)/1/buildpack.toml")
        }
        let r = fx.stockade(["detect", "--buildpacks-dir", dir, "--order", try order([("a", "1")]),
                             "--path", fx.makeDirectory("app")], as: .suiteUser)
        #expect(r.status == 3 && r.stderr.contains("a@1 -> b@1 -> a@1"), "\(r)")
    }

    @Test func idsSharingAnEscapedDirectoryNameAreAnErrorNamingBoth() throws {
        let slash = fx.makeDirectory("bp")
        let underscore = fx.makeDirectory("bp")
        try buildpack(at: slash, id: "x/y")
        try buildpack(at: underscore, id: "x_y")
        let r = fx.stockade(["build", "--buildpack", slash, "--buildpack", underscore, "--path", fx.makeDirectory("app")],
                            as: .suiteUser)
        #expect(r.status == 3, "\(r)")
        #expect(r.stderr.contains("x/y (\(slash))") && r.stderr.contains("x_y (\(underscore))")
                && r.stderr.contains("share the directory name x_y"), "\(r.stderr)")
        // In a builder layout both live in <dir>/x_y/: the one found must be the one asked for.
        let layout = fx.makeDirectory("buildpacks")
        try buildpack(at: layout + "/x_y/0.0.1", id: "x_y")
        let asked = fx.stockade(["build", "--buildpacks-dir", layout, "--order", try order([("x/y", "0.0.1")]),
                                 "--path", fx.makeDirectory("app")], as: .suiteUser)
        #expect(asked.status == 3 && asked.stderr.contains("holds buildpack x_y, not x/y"), "\(asked)")
    }

    @Test(arguments: Invoker.all)
    func theSchema01ScriptAppBuildsFromItsProjectTOMLAlone(_ invoker: Invoker) {
        let app = fx.examples + "/apps/script-app"
        let layers = layersPath()
        let r = fx.stockade(["build", "--path", app, "--layers", layers], as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("[examples/script_runner] ---> Script runner: GREETING=hello from project.toml"), "\(r)")
        #expect(!r.stdout.contains("is in the workspace"), "\(r)")
        #expect(r.stdout.contains("web (default): ./run.sh"))
        #expect(read(layers + "/examples_script_runner/greeting/env.launch/GREETING.default") == "hello from project.toml")
        let detect = fx.stockade(["detect", "--path", app], as: invoker)
        #expect(detect.status == 0 && detect.stdout.contains("pass  examples/script_runner@0.0.1"), "\(detect)")
    }

    @Test func withoutBuildpacksAnywhereTheErrorSaysWhereToGiveThem() {
        let r = fx.stockade(["build", "--path", fx.makeDirectory("app")], as: .suiteUser)
        #expect(r.status == 64 && r.stderr.contains("stockade: error: no buildpacks:") && r.stderr.contains("project.toml"), "\(r)")
    }

    /// The inline script tries the writes other buildpacks are refused (its own synthesised directory
    /// included); the workspace and its own layers are the control that writing works at all.
    @Test(arguments: Invoker.all)
    func anInlineBuildpackRunsSandboxedAndPreAndPostWrapTheGroup(_ invoker: Invoker) throws {
        let bp = fx.makeDirectory("bp")
        try buildpack(at: bp, id: "test/middle", build: "echo \"middle sees $(cat /workspace/pre-was-here)\"")
        let app = fx.makeDirectory("app")
        try write("""
            [_]
            schema-version = "0.2"

            [[io.buildpacks.pre.group]]
            id = "test/inline_pre"
              [io.buildpacks.pre.group.script]
              api = "0.10"
              shell = "/bin/sh"
              inline = '''
            try() { if (echo pwned > "$1") 2>/dev/null; then echo "WROTE $1"; else echo "DENIED $1"; fi; }
            {
              try /etc/pwned
              try /pwned
              try /platform/pwned
              try "$CNB_BUILDPACK_DIR/bin/build"
              try "$CNB_BUILDPACK_DIR/pwned"
              try /workspace/pre-was-here
              try "$CNB_LAYERS_DIR/allowed"
            } > "$CNB_LAYERS_DIR/results"
            echo "inline pre says hello from $(pwd)"
            '''

            [[io.buildpacks.post.group]]
            id = "test/inline_post"
              [io.buildpacks.post.group.script]
              api = "0.10"
              inline = "echo inline post ran last"
            """, to: app + "/project.toml")
        let layers = layersPath()
        let r = fx.stockade(["build", "--buildpack", bp, "--path", app, "--layers", layers], as: invoker)
        #expect(r.status == 0, "\(r)")
        let out = r.stdout
        guard let pre = out.range(of: "[test/inline_pre] inline pre says hello from /workspace"),
              let middle = out.range(of: "[test/middle] middle sees pwned"),
              let post = out.range(of: "[test/inline_post] inline post ran last") else {
            Issue.record("missing output: \(r)")
            return
        }
        #expect(pre.lowerBound < middle.lowerBound && middle.lowerBound < post.lowerBound)
        let group = read(layers + "/group.toml")
        #expect(group.contains("test/inline_pre") && group.contains("test/middle") && group.contains("test/inline_post"), "\(group)")
        let results = read(layers + "/test_inline_pre/results").split(separator: "\n").map(String.init)
        #expect(results.count == 7, "\(results)")
        for line in results {
            let allowed = line.hasSuffix("/pre-was-here") || line.hasSuffix("/allowed")
            #expect(line.hasPrefix(allowed ? "WROTE" : "DENIED"), "\(line)")
        }
        #expect(!FileManager.default.fileExists(atPath: "/etc/pwned") && !FileManager.default.fileExists(atPath: "/pwned"))
        #expect(!FileManager.default.fileExists(atPath: app + "/pre-was-here"), "the user's app is never written")
    }

    @Test func buildpackFlagsReplaceTheProjectGroup() throws {
        let bp = fx.makeDirectory("bp")
        try buildpack(at: bp, id: "test/flagged")
        let app = fx.makeDirectory("app")
        try write("[[build.buildpacks]]\nid = \"test/not-available\"\nversion = \"1\"\n", to: app + "/project.toml")
        let r = fx.stockade(["build", "--buildpack", bp, "--path", app], as: .suiteUser)
        #expect(r.status == 0 && r.stdout.contains("[test/flagged] built in /workspace"), "\(r)")
        let alone = fx.stockade(["build", "--path", app], as: .suiteUser)
        #expect(alone.status != 0 && alone.stderr.contains("test/not-available@1 is not available"), "\(alone)")
    }

    @Test func anInlineBuildpackWithAnUnsupportedAPIFailsWith12() throws {
        let app = fx.makeDirectory("app")
        try write("[[build.buildpacks]]\nid = \"test/old\"\n[build.buildpacks.script]\napi = \"0.2\"\ninline = \"true\"\n",
                  to: app + "/project.toml")
        let r = fx.stockade(["build", "--path", app], as: .suiteUser)
        #expect(r.status == 12 && r.stderr.contains("inline buildpack test/old"), "\(r)")
    }
}
