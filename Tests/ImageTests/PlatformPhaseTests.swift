import Foundation
import StockadeTestSupport
import Testing

/// The phases driven as Kubernetes platforms drive the reference lifecycle, flag for flag, in the
/// OCI layout mode (images are layouts under CNB_LAYOUT_DIR, given by environment so that every
/// flag stays the platform's own): Tekton's `buildpacks-phases` 0.3 and kpack's init containers.
/// A pod's volumes are directories of one host directory; the defaults that name the pod's own
/// paths (`/cnb/buildpacks`, `/cnb/order.toml`, `/layers`, `/platform`) are given by their `CNB_*` variables.
@Suite(.serialized) struct PlatformPhaseTests {
    let fx = Fixture.shared

    /// A build pod: the builder's /cnb (the shell example buildpack, its order, the lifecycle
    /// links), the app in the workspace, empty layers, platform, cache, home and a layout volume
    /// with the run image as `run`.
    struct Pod {
        let root: String
        let lifecycle: LifecycleLinks
        var layers: String { root + "/layers" }
        var workspace: String { root + "/workspace" }
        var platform: String { root + "/platform" }
        var cache: String { root + "/cache" }
        var home: String { root + "/home" }
        var oci: String { root + "/oci" }
        var report: String { root + "/report" }

        init(owner: String) throws {
            root = Fixture.shared.makeDirectory("pod")
            lifecycle = LifecycleLinks(in: root + "/cnb/lifecycle")
            let examples = Fixture.shared.examples
            for dir in ["cnb/buildpacks/examples_shell", "layers", "workspace", "platform/env", "cache", "home", "oci", "report"] {
                try FileManager.default.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
            }
            try #require(Fixture.run(["cp", "-R", examples + "/buildpacks/shell", root + "/cnb/buildpacks/examples_shell/0.1.0"]).status == 0)
            try "[[order]]\n[[order.group]]\nid = \"examples/shell\"\nversion = \"0.1.0\"\n"
                .write(toFile: root + "/cnb/order.toml", atomically: true, encoding: .utf8)
            try #require(Fixture.run(["cp", examples + "/apps/shell-app/app.sh", root + "/workspace/"]).status == 0)
            let run = Fixture.run(["bash", examples + "/make-run-image.sh", root + "/oci/index.docker.io/library/run/latest", "latest", "one"])
            try #require(run.status == 0, "\(run)")
            try #require(Fixture.run(["chmod", "-R", "a+rX", root]).status == 0)
            // The prepare step: the volumes the phases write are the CNB user's.
            for dir in [layers, workspace, cache, home, oci, report, platform] {
                try #require(Fixture.run(["chown", "-R", owner, dir]).status == 0)
            }
        }

        /// `stockade run` of the layout an image name maps to: the default process's output.
        func run(_ name: String) -> Outcome {
            Fixture.shared.stockade(["run", oci + "/index.docker.io/library/\(name)/latest:latest"], as: .suiteUser)
        }
    }

    static func ids(of user: String) -> (uid: String, gid: String) {
        (Fixture.run(["id", "-u", user]).stdout.trimmingCharacters(in: .whitespacesAndNewlines),
         Fixture.run(["id", "-g", user]).stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Tekton's `buildpacks-phases` 0.3: Platform API 0.13, CNB_EXPERIMENTAL_MODE=silent, HOME
    /// /tekton/home, every step as the builder's CNB user after a root `prepare` step chowned the
    /// volumes; the phases' arguments as its steps write them, empty parameters included. Built
    /// twice: the second build restores the cache and keeps the launch layer from the first image.
    @Test func tektonBuildpacksPhasesTask() throws {
        try Invoker.plainUser.requireAvailable()
        let (uid, gid) = Self.ids(of: "stockade-plain")
        let pod = try Pod(owner: "\(uid):\(gid)")
        let env = ["CNB_PLATFORM_API": "0.13", "CNB_EXPERIMENTAL_MODE": "silent", "HOME": pod.home,
                   "CNB_USE_LAYOUT": "true", "CNB_LAYOUT_DIR": pod.oci,
                   "CNB_BUILDPACKS_DIR": pod.root + "/cnb/buildpacks", "CNB_ORDER_PATH": pod.root + "/cnb/order.toml"]
        func step(_ phase: String, _ args: [String], extra: [String: String] = [:]) throws -> Outcome {
            let outcome = pod.lifecycle.run(phase, args, environment: env.merging(extra) { $1 }, as: .plainUser)
            try #require(outcome.status == 0, "\(phase): \(outcome)")
            return outcome
        }
        var digests: [String] = []
        for round in 1...2 {
            if round == 2 {  // a new pod's layers volume
                try #require(Fixture.run(["find", pod.layers, "-mindepth", "1", "-delete"]).status == 0)
            }
            let analyze = try step("analyzer", ["-log-level=info", "-layers=\(pod.layers)", "-run-image=run", "-cache-image=",
                                                "-uid=\(uid)", "-gid=\(gid)", "-insecure-registry=", "-tag=", "-skip-layers=false", "my-app"])
            #expect(analyze.stdout.contains("Previous image my-app") == (round == 2), "\(analyze)")
            _ = try step("detector", ["-log-level=info", "-app=\(pod.workspace)/", "-group=\(pod.layers)/group.toml",
                                      "-plan=\(pod.layers)/plan.toml", "-layers=\(pod.layers)", "-platform=\(pod.platform)"])
            // The restore step is a script: its flags come from the step's variables.
            let restore = try step("restorer", ["-log-level=info", "-build-image=builder", "-group=/\(pod.layers)/group.toml",
                                                "-layers=\(pod.layers)", "-cache-dir=\(pod.cache)", "-cache-image=",
                                                "-uid=\(uid)", "-gid=\(gid)", "-insecure-registry=", "-skip-layers=false"],
                                   extra: ["UID": uid, "GID": gid, "CNB_LOG_LEVEL": "info", "CNB_BUILD_IMAGE": "",
                                           "CNB_BUILDER_IMAGE": "builder", "CNB_CACHE_IMAGE": "", "CNB_INSECURE_REGISTRIES": "",
                                           "CNB_SKIP_LAYERS": "false"])
            #expect(restore.stdout.contains("Restored layer 'examples/shell:tools' from the cache") == (round == 2), "\(restore)")
            let build = try step("builder", ["-log-level=info", "-app=\(pod.workspace)/", "-layers=\(pod.layers)",
                                             "-group=\(pod.layers)/group.toml", "-plan=\(pod.layers)/plan.toml", "-platform=\(pod.platform)"])
            #expect(build.stdout.contains(round == 1 ? "shell: tools made" : "shell: tools restored from the cache"), "\(build)")
            #expect(build.stdout.contains(round == 1 ? "shell: checksum layer written" : "checksum layer kept from the previous image"), "\(build)")
            _ = try step("exporter", ["-log-level=info", "-app=\(pod.workspace)/", "-layers=\(pod.layers)",
                                      "-group=\(pod.layers)/group.toml", "-cache-dir=\(pod.cache)", "-cache-image=",
                                      "-report=\(pod.layers)/report.toml", "-process-type=web", "-uid=\(uid)", "-gid=\(gid)",
                                      "-insecure-registry=", "my-app"])
            // The results step reads report.toml's digest.
            let report = try String(contentsOfFile: pod.layers + "/report.toml", encoding: .utf8)
            let layout = pod.oci + "/index.docker.io/library/my-app/latest"
            let digest = try #require(Images.manifestDigest(layout, tag: "latest"))
            #expect(report.contains("digest = \"\(digest)\""), "\(report)")
            #expect(report.contains("tags = [\"my-app\"]"), "\(report)")
            digests.append(digest)
            let web = pod.run("my-app")
            #expect(web.status == 0 && web.stdout.hasPrefix(Images.hello) && !web.stdout.contains("unset"), "\(web)")
        }
        #expect(digests[0] == digests[1], "the same inputs give the same image: \(digests)")
    }

    /// kpack's build pod (Platform API 0.9): analyzer, detector, restorer, builder, exporter as init
    /// containers with kpack's arguments, the CNB user from the builder image's environment, a cache
    /// volume, project metadata written by the prepare container, the report on its own volume and
    /// an additional tag. Here the pod's user is one with a subordinate id range.
    @Test func kpackBuildPod() throws {
        try Invoker.subordinateUser.requireAvailable()
        let (uid, gid) = Self.ids(of: "stockade-sub")
        let pod = try Pod(owner: "\(uid):\(gid)")
        try "[source]\ntype = \"git\"\n[source.version]\ncommit = \"abc123\"\n[source.metadata]\nrepository = \"https://example.invalid/app\"\n"
            .write(toFile: pod.layers + "/project-metadata.toml", atomically: true, encoding: .utf8)
        try #require(Fixture.run(["chown", "\(uid):\(gid)", pod.layers + "/project-metadata.toml"]).status == 0)
        let env = ["CNB_PLATFORM_API": "0.9", "HOME": pod.home, "CNB_USER_ID": "1000", "CNB_GROUP_ID": "1000",
                   "CNB_USE_LAYOUT": "true", "CNB_LAYOUT_DIR": pod.oci, "CNB_EXPERIMENTAL_MODE": "warn",
                   "CNB_BUILDPACKS_DIR": pod.root + "/cnb/buildpacks", "CNB_ORDER_PATH": pod.root + "/cnb/order.toml",
                   "CNB_RUN_IMAGE": "run",
                   // The pod's /layers and /platform, where the phases look when no flag names them.
                   "CNB_LAYERS_DIR": pod.layers, "CNB_PLATFORM_DIR": pod.platform]
        let steps: [(String, [String])] = [
            ("analyzer", ["-layers=\(pod.layers)", "-analyzed=\(pod.layers)/analyzed.toml", "kpack/app"]),
            ("detector", ["-app=\(pod.workspace)", "-group=\(pod.layers)/group.toml", "-plan=\(pod.layers)/plan.toml"]),
            ("restorer", ["-group=\(pod.layers)/group.toml", "-layers=\(pod.layers)", "-cache-dir=\(pod.cache)"]),
            ("builder", ["-layers=\(pod.layers)", "-app=\(pod.workspace)", "-group=\(pod.layers)/group.toml", "-plan=\(pod.layers)/plan.toml"]),
            ("exporter", ["-layers=\(pod.layers)", "-app=\(pod.workspace)", "-group=\(pod.layers)/group.toml",
                          "-analyzed=\(pod.layers)/analyzed.toml", "-project-metadata=\(pod.layers)/project-metadata.toml",
                          "-cache-dir=\(pod.cache)", "-process-type=web", "-report=\(pod.report)/report.toml",
                          "kpack/app", "kpack/app:b1.20261206"]),
        ]
        for (phase, args) in steps {
            let outcome = pod.lifecycle.run(phase, args, environment: env, as: .subordinateUser)
            try #require(outcome.status == 0, "\(phase): \(outcome)")
        }
        let report = try String(contentsOfFile: pod.report + "/report.toml", encoding: .utf8)
        let main = pod.oci + "/index.docker.io/kpack/app/latest"
        let extra = pod.oci + "/index.docker.io/kpack/app/b1.20261206"
        let digest = try #require(Images.manifestDigest(main, tag: "latest"))
        #expect(Images.manifestDigest(extra, tag: "b1.20261206") == digest)
        #expect(report.contains("digest = \"\(digest)\"") && report.contains("\"kpack/app:b1.20261206\""), "\(report)")
        let (inspected, info) = Images.skopeo(main, tag: "latest")
        try #require(inspected.status == 0, "\(inspected)")
        let labels = info?["Labels"] as? [String: String] ?? [:]
        #expect(labels["io.buildpacks.project.metadata"]?.contains("abc123") == true, "\(labels)")
        #expect((info?["Env"] as? [String])?.contains("CNB_PLATFORM_API=0.9") == true, "\(info ?? [:])")
        let web = Fixture.shared.stockade(["run", main + ":latest"], as: .suiteUser)
        #expect(web.status == 0 && web.stdout.hasPrefix(Images.hello), "\(web)")
    }

    /// Started as root (Tekton's task, or a platform that does not set a user), the phases hand
    /// the layers to -uid/-gid and become that user; the buildpacks run as the stack user in their
    /// sandboxes, never as root.
    @Test func asRootThePhasesBecomeTheStackUser() throws {
        guard fx.isRoot else { try skip("needs a suite running as root") }
        let (uid, gid) = Self.ids(of: "stockade-plain")
        let pod = try Pod(owner: "0:0")
        // Links in the layers volume to root's files elsewhere: handing the layers over must not follow them.
        let outside = fx.makeDirectory("outside")
        try "root's".write(toFile: outside + "/file", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: outside + "/dir", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: pod.layers + "/file-link", withDestinationPath: outside + "/file")
        try FileManager.default.createSymbolicLink(atPath: pod.layers + "/dir-link", withDestinationPath: outside + "/dir")
        let env = ["CNB_PLATFORM_API": "0.13", "CNB_EXPERIMENTAL_MODE": "quiet", "CNB_USE_LAYOUT": "true", "CNB_LAYOUT_DIR": pod.oci,
                   "CNB_BUILDPACKS_DIR": pod.root + "/cnb/buildpacks", "CNB_ORDER_PATH": pod.root + "/cnb/order.toml",
                   "CNB_USER_ID": uid, "CNB_GROUP_ID": gid]
        let analyze = pod.lifecycle.run("analyzer", ["-layers=\(pod.layers)", "-run-image=run", "my-app"], environment: env)
        try #require(analyze.status == 0, "\(analyze)")
        #expect(fx.owner(of: pod.layers) == UInt32(uid), "the layers are handed to the stack user")
        #expect(fx.owner(of: pod.layers + "/analyzed.toml") == UInt32(uid), "and written by it")
        for target in [outside, outside + "/file", outside + "/dir"] {
            #expect(fx.owner(of: target) == 0, "\(target) is not the layers' to hand over")
        }
        var st = stat()
        #expect(lstat(pod.layers + "/file-link", &st) == 0 && st.st_uid == UInt32(uid), "the link itself is handed over")
        let detect = pod.lifecycle.run("detector", ["-app=\(pod.workspace)", "-layers=\(pod.layers)"], environment: env)
        try #require(detect.status == 0, "\(detect)")
        #expect(fx.owner(of: pod.layers + "/group.toml") == UInt32(uid))
        let build = pod.lifecycle.run("builder", ["-app=\(pod.workspace)", "-layers=\(pod.layers)"], environment: env)
        try #require(build.status == 0, "\(build)")
        // What the buildpack wrote is the stack user's on the host: not root's.
        #expect(fx.owner(of: pod.layers + "/examples_shell/checksum.toml") == UInt32(uid))
        #expect(fx.owner(of: pod.workspace) == UInt32(uid))
    }

    /// The layout mode is experimental in the reference: CNB_EXPERIMENTAL_MODE=error (its default) refuses it.
    @Test func layoutModeNeedsExperimentalMode() {
        let links = LifecycleLinks()
        let outcome = links.run("analyzer", ["-layout", "-layout-dir=\(fx.makeDirectory("oci"))", "-layers=\(fx.makeDirectory("layers"))",
                                             "-run-image=run", "my-app"],
                                environment: ["CNB_PLATFORM_API": "0.13", "CNB_USER_ID": "1000", "CNB_GROUP_ID": "1000"])
        #expect(outcome.status == 3 && outcome.stderr.contains("CNB_EXPERIMENTAL_MODE"), "\(outcome)")
    }

    /// `creator`, spelled `stockade lifecycle create`, as pack and CI jobs run it: the whole build in
    /// one process, an additional -tag, then `rebaser` onto another run image.
    @Test func creatorThenRebaser() throws {
        try Invoker.plainUser.requireAvailable()
        let (uid, gid) = Self.ids(of: "stockade-plain")
        let pod = try Pod(owner: "\(uid):\(gid)")
        let run2 = pod.oci + "/index.docker.io/library/run2/latest"
        let made = Fixture.run(["bash", fx.examples + "/make-run-image.sh", run2, "latest", "two"])
        try #require(made.status == 0, "\(made)")
        try #require(Fixture.run(["chown", "-R", "\(uid):\(gid)", pod.oci]).status == 0)
        let env = ["CNB_PLATFORM_API=0.13", "CNB_EXPERIMENTAL_MODE=warn", "CNB_USER_ID=\(uid)", "CNB_GROUP_ID=\(gid)",
                   "CNB_BUILDPACKS_DIR=\(pod.root)/cnb/buildpacks", "CNB_ORDER_PATH=\(pod.root)/cnb/order.toml"]
        let create = Fixture.run(["-i", "PATH=/usr/bin:/bin"] + env + Invoker.plainUser.prefix + [fx.stockade, "lifecycle", "create",
            "-app=\(pod.workspace)", "-layers=\(pod.layers)", "-platform=\(pod.platform)", "-cache-dir=\(pod.cache)",
            "-run-image=run", "-layout", "-layout-dir=\(pod.oci)", "-tag=my-app:v2", "-report=\(pod.report)/report.toml", "my-app"])
        try #require(create.status == 0, "\(create)")
        #expect(create.stderr.contains("experimental"), "CNB_EXPERIMENTAL_MODE=warn warns: \(create)")
        let main = pod.oci + "/index.docker.io/library/my-app/latest"
        let digest = try #require(Images.manifestDigest(main, tag: "latest"))
        #expect(Images.manifestDigest(pod.oci + "/index.docker.io/library/my-app/v2", tag: "v2") == digest)
        let web = pod.run("my-app")
        #expect(web.status == 0 && web.stdout.hasPrefix(Images.hello), "\(web)")

        let rebase = pod.lifecycle.run("rebaser", ["-run-image=run2", "-report=\(pod.report)/rebase.toml", "my-app"],
                                       environment: ["CNB_PLATFORM_API": "0.13", "CNB_EXPERIMENTAL_MODE": "quiet",
                                                     "CNB_USE_LAYOUT": "true", "CNB_LAYOUT_DIR": pod.oci],
                                       as: .plainUser)
        try #require(rebase.status == 0, "\(rebase)")
        let layers = Images.layerDigests(main, tag: "latest")
        #expect(layers.first == Images.layerDigests(run2, tag: "latest").first, "the new run image's layer first")
        let rebased = try #require(Images.manifestDigest(main, tag: "latest"))
        #expect(rebased != digest)
        #expect((try? String(contentsOfFile: pod.report + "/rebase.toml", encoding: .utf8))?.contains(rebased) == true)
        let after = pod.run("my-app")
        #expect(after.status == 0 && after.stdout.hasPrefix(Images.hello), "\(after)")
    }

    /// The exporter's -process-type must name a process the buildpacks defined; -log-level=warn
    /// keeps the progress lines off stdout; an unknown level is one line.
    @Test func processTypeAndLogLevel() throws {
        try Invoker.plainUser.requireAvailable()
        let (uid, gid) = Self.ids(of: "stockade-plain")
        let pod = try Pod(owner: "\(uid):\(gid)")
        let env = ["CNB_PLATFORM_API": "0.13", "CNB_EXPERIMENTAL_MODE": "quiet", "CNB_USE_LAYOUT": "true", "CNB_LAYOUT_DIR": pod.oci,
                   "CNB_BUILDPACKS_DIR": pod.root + "/cnb/buildpacks", "CNB_ORDER_PATH": pod.root + "/cnb/order.toml",
                   "CNB_LAYERS_DIR": pod.layers, "CNB_APP_DIR": pod.workspace, "CNB_PLATFORM_DIR": pod.platform,
                   "CNB_USER_ID": uid, "CNB_GROUP_ID": gid]
        for (phase, args) in [("analyzer", ["-run-image=run", "-log-level=warn", "my-app"]), ("detector", ["-log-level=warn"]),
                              ("builder", [])] {
            let outcome = pod.lifecycle.run(phase, args, environment: env, as: .plainUser)
            try #require(outcome.status == 0, "\(phase): \(outcome)")
            if phase != "builder" { #expect(outcome.stdout.isEmpty, "\(phase) at warn: \(outcome)") }
        }
        let unknown = pod.lifecycle.run("exporter", ["-process-type=worker", "my-app"], environment: env, as: .plainUser)
        #expect(unknown.status == 62 && unknown.stderr.contains("worker"), "\(unknown)")
        #expect(unknown.stderr.split(separator: "\n").count == 1, "\(unknown)")
        let badLevel = pod.lifecycle.run("exporter", ["-log-level=loud", "my-app"], environment: env, as: .plainUser)
        #expect(badLevel.status == 1 && badLevel.stderr.contains("log level"), "\(badLevel)")
        let shout = pod.lifecycle.run("exporter", ["-process-type=shout", "my-app"], environment: env, as: .plainUser)
        try #require(shout.status == 0, "\(shout)")
        let run = fx.stockade(["run", pod.oci + "/index.docker.io/library/my-app/latest:latest", "--", "hey"], as: .suiteUser)
        #expect(run.status == 0 && run.stdout == "HEY\n", "the chosen default process: \(run)")
    }

    /// The detector writes group.toml and plan.toml where -group and -plan say, and only there
    /// (a platform that keeps them on another volume finds no stale copy in the layers).
    @Test func detectorWritesThePlanFilesOnlyWhereAsked() throws {
        try Invoker.plainUser.requireAvailable()
        let (uid, gid) = Self.ids(of: "stockade-plain")
        let pod = try Pod(owner: "\(uid):\(gid)")
        let env = ["CNB_PLATFORM_API": "0.13", "CNB_BUILDPACKS_DIR": pod.root + "/cnb/buildpacks",
                   "CNB_ORDER_PATH": pod.root + "/cnb/order.toml", "CNB_PLATFORM_DIR": pod.platform]
        let outcome = pod.lifecycle.run("detector", ["-app=\(pod.workspace)", "-layers=\(pod.layers)", "-group=\(pod.report)/g.toml",
                                                     "-plan=\(pod.report)/p.toml"], environment: env, as: .plainUser)
        try #require(outcome.status == 0, "\(outcome)")
        let group = try String(contentsOfFile: pod.report + "/g.toml", encoding: .utf8)
        #expect(group.contains("examples/shell"), "\(group)")
        #expect(FileManager.default.fileExists(atPath: pod.report + "/p.toml"))
        for name in ["group.toml", "plan.toml"] {
            #expect(!FileManager.default.fileExists(atPath: pod.layers + "/" + name), "\(name) is not the layers' to hold")
        }
    }
}
