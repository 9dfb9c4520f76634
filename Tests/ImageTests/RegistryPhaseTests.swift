import Foundation
import StockadeTestSupport
import Testing

/// Issue 9's "done when": a builder image made by `stockade builder create` holds Stockade as its
/// lifecycle; pushed to a loopback registry and pulled back, its root filesystem is unpacked as a
/// container runtime would, and the `/cnb/lifecycle/<phase>` binaries found there build an app
/// from the image's own `/cnb/buildpacks` and `/cnb/order.toml`, driven flag for flag as Tekton's
/// `buildpacks-phases` (Platform API 0.13) and kpack (0.9) drive them, against the registry: the
/// image ends up there, `skopeo inspect` reads it and `stockade run REF` runs it.
@Suite(.serialized) struct RegistryPhaseTests {
    let fx = Fixture.shared
    static let user = (name: "cnb", password: "s3cret-pass")

    /// A build pod whose image is the builder image, from the registry.
    struct Pod {
        let root: String
        /// The builder image's root filesystem, as the pod's containers see it.
        var rootfs: String { root + "/rootfs" }
        var layers: String { root + "/layers" }
        var workspace: String { root + "/workspace" }
        var platform: String { root + "/platform" }
        var cache: String { root + "/cache" }
        var home: String { root + "/home" }
        var report: String { root + "/report" }

        init(registry: TestRegistry, owner: String) throws {
            root = Fixture.shared.makeDirectory("registry-pod")
            let builder = try Builders.shellBuilder()
            let creds = "--dest-creds=\(RegistryPhaseTests.user.name):\(RegistryPhaseTests.user.password)"
            for (source, target) in [("oci:\(builder):builder", "builder:1"), ("oci:\(Images.runImageOne):latest", "run:1")] {
                let pushed = Fixture.run(["skopeo", "copy", "--dest-tls-verify=false", creds, source, "docker://\(registry.host)/\(target)"])
                try #require(pushed.status == 0, "\(pushed)")
            }
            // The container runtime: the image as the registry serves it, unpacked layer by layer.
            let pulled = Fixture.run(["skopeo", "copy", "--src-tls-verify=false",
                                      "--src-creds=\(RegistryPhaseTests.user.name):\(RegistryPhaseTests.user.password)",
                                      "docker://\(registry.host)/builder:1", "oci:\(root)/image:builder"])
            try #require(pulled.status == 0, "\(pulled)")
            let unpacked = Fixture.run(["umoci", "raw", "unpack", "--rootless", "--image", "\(root)/image:builder", rootfs])
            try #require(unpacked.status == 0, "\(unpacked)")
            for dir in ["layers", "workspace", "platform/env", "cache", "home", "report"] {
                try FileManager.default.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
            }
            try #require(Fixture.run(["cp", Fixture.shared.examples + "/apps/shell-app/app.sh", workspace + "/"]).status == 0)
            try #require(Fixture.run(["chmod", "-R", "a+rX", root]).status == 0)
            for dir in [layers, workspace, cache, home, report, platform] {
                try #require(Fixture.run(["chown", "-R", owner, dir]).status == 0)
            }
        }

        /// `/cnb/lifecycle/<phase> ARGS` of the unpacked image, as `invoker`, with `environment` alone.
        func run(_ phase: String, _ arguments: [String], environment: [String: String], as invoker: Invoker) -> Outcome {
            let env = ["-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"] + environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            return Fixture.run(env + invoker.prefix + [rootfs + "/cnb/lifecycle/" + phase] + arguments)
        }

        /// The pod's environment: the image's `/cnb` named through the `CNB_*` path variables.
        func environment(_ extra: [String: String]) -> [String: String] {
            ["CNB_BUILDPACKS_DIR": rootfs + "/cnb/buildpacks", "CNB_ORDER_PATH": rootfs + "/cnb/order.toml", "HOME": home]
                .merging(extra) { $1 }
        }
    }

    static var basic: String { "Basic " + Data("\(user.name):\(user.password)".utf8).base64EncodedString() }

    /// skopeo's view of `reference` in the registry: its manifest digest and its config.
    static func inspect(_ reference: String) -> (digest: String?, config: [String: Any]?) {
        let creds = "--creds=\(user.name):\(user.password)"
        let manifest = Fixture.run(["skopeo", "inspect", "--tls-verify=false", creds, "docker://" + reference])
        let config = Fixture.run(["skopeo", "inspect", "--tls-verify=false", creds, "--config", "docker://" + reference])
        let digest = (try? JSONSerialization.jsonObject(with: Data(manifest.stdout.utf8)) as? [String: Any])?["Digest"] as? String
        return (digest, try? JSONSerialization.jsonObject(with: Data(config.stdout.utf8)) as? [String: Any])
    }

    /// `stockade run REF` as the suite's user, with `environment` for the registry's credentials.
    func runImage(_ reference: String, insecure: String?, environment: [String]) -> Outcome {
        Fixture.run(environment + Invoker.suiteUser.prefix + [fx.stockade, "run", reference]
                    + (insecure.map { ["--insecure-registry", $0] } ?? []))
    }

    /// The builder image carries Stockade as its lifecycle: a link per phase to `lifecycle`, the
    /// stockade binary itself, and the static launcher.
    @Test func builderImageHoldsStockadeAsItsLifecycle() throws {
        guard TestRegistry.available else { try skip("docker-registry is not installed") }
        let registry = try TestRegistry(user: Self.user)
        let pod = try Pod(registry: registry, owner: "0:0")
        for phase in ["analyzer", "detector", "restorer", "builder", "exporter", "creator", "rebaser"] {
            let target = try? FileManager.default.destinationOfSymbolicLink(atPath: pod.rootfs + "/cnb/lifecycle/" + phase)
            #expect(target == "lifecycle", "\(phase) -> \(target ?? "nothing")")
        }
        #expect(Fixture.run(["cmp", pod.rootfs + "/cnb/lifecycle/lifecycle", fx.stockade]).status == 0)
        #expect(Fixture.run(["cmp", pod.rootfs + "/cnb/lifecycle/launcher", fx.stockade + "-launcher"]).status == 0)
    }

    /// A registry and a pod owned by `stockade-plain`, as the Tekton task and the creator run them.
    private func podOfThePlainUser() throws -> (TestRegistry, Pod, uid: String, gid: String) {
        guard TestRegistry.available else { try skip("docker-registry is not installed") }
        try Invoker.plainUser.requireAvailable()
        let (uid, gid) = PlatformPhaseTests.ids(of: "stockade-plain")
        let registry = try TestRegistry(user: Self.user)
        return (registry, try Pod(registry: registry, owner: "\(uid):\(gid)"), uid, gid)
    }

    /// Tekton's `buildpacks-phases` 0.3 against a registry (plain HTTP on loopback, so the task's
    /// INSECURE_REGISTRY parameter names it; credentials in `$HOME/.docker/config.json` as
    /// Tekton's credential initialisation writes them). Built twice: the second analysis finds the
    /// first image in the registry and the exporter keeps its launch layer; the same inputs give
    /// the same digest.
    @Test func tektonBuildpacksPhasesAgainstARegistry() throws {
        let (registry, pod, uid, gid) = try podOfThePlainUser()
        let host = registry.host
        let config = "{\"auths\":{\"\(host)\":{\"auth\":\"\(Data("\(Self.user.name):\(Self.user.password)".utf8).base64EncodedString())\"}}}"
        try FileManager.default.createDirectory(atPath: pod.home + "/.docker", withIntermediateDirectories: true)
        try config.write(toFile: pod.home + "/.docker/config.json", atomically: true, encoding: .utf8)
        try #require(Fixture.run(["chown", "-R", "\(uid):\(gid)", pod.home]).status == 0)
        let env = pod.environment(["CNB_PLATFORM_API": "0.13", "CNB_EXPERIMENTAL_MODE": "silent"])
        func step(_ phase: String, _ args: [String]) throws -> Outcome {
            let outcome = pod.run(phase, args, environment: env, as: .plainUser)
            try #require(outcome.status == 0, "\(phase): \(outcome)")
            return outcome
        }
        let app = "\(host)/team/app:1"
        var digests: [String] = []
        var manifests: [String] = []
        for round in 1...2 {
            if round == 2 { try #require(Fixture.run(["find", pod.layers, "-mindepth", "1", "-delete"]).status == 0) }
            let analyze = try step("analyzer", ["-log-level=info", "-layers=\(pod.layers)", "-run-image=\(host)/run:1", "-cache-image=",
                                                "-uid=\(uid)", "-gid=\(gid)", "-insecure-registry=\(host)", "-tag=", "-skip-layers=false", app])
            #expect(analyze.stdout.contains("Previous image \(app)") == (round == 2), "\(analyze)")
            let analyzed = try String(contentsOfFile: pod.layers + "/analyzed.toml", encoding: .utf8)
            #expect(analyzed.contains("reference = \"\(host)/run@sha256:"), "\(analyzed)")
            _ = try step("detector", ["-log-level=info", "-app=\(pod.workspace)/", "-group=\(pod.layers)/group.toml",
                                      "-plan=\(pod.layers)/plan.toml", "-layers=\(pod.layers)", "-platform=\(pod.platform)"])
            _ = try step("restorer", ["-log-level=info", "-build-image=\(host)/builder:1", "-group=\(pod.layers)/group.toml",
                                      "-layers=\(pod.layers)", "-cache-dir=\(pod.cache)", "-cache-image=",
                                      "-uid=\(uid)", "-gid=\(gid)", "-insecure-registry=\(host)", "-skip-layers=false"])
            let build = try step("builder", ["-log-level=info", "-app=\(pod.workspace)/", "-layers=\(pod.layers)",
                                             "-group=\(pod.layers)/group.toml", "-plan=\(pod.layers)/plan.toml", "-platform=\(pod.platform)"])
            #expect(build.stdout.contains(round == 1 ? "shell: checksum layer written" : "checksum layer kept from the previous image"), "\(build)")
            _ = try step("exporter", ["-log-level=info", "-app=\(pod.workspace)/", "-layers=\(pod.layers)",
                                      "-group=\(pod.layers)/group.toml", "-cache-dir=\(pod.cache)", "-cache-image=",
                                      "-report=\(pod.layers)/report.toml", "-process-type=web", "-uid=\(uid)", "-gid=\(gid)",
                                      "-insecure-registry=\(host)", app])
            let report = try String(contentsOfFile: pod.layers + "/report.toml", encoding: .utf8)
            let (digest, _) = Self.inspect(app)
            let pushed = try #require(digest, "skopeo inspect \(app)")
            #expect(report.contains("digest = \"\(pushed)\""), "\(report)")
            digests.append(pushed)
            manifests.append(Fixture.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds=\(Self.user.name):\(Self.user.password)", "docker://" + app]).stdout)
        }
        #expect(digests[0] == digests[1], "the same inputs give the same image: \(manifests)")
        let web = runImage(app, insecure: host, environment: ["HOME=\(pod.home)"])
        #expect(web.status == 0 && web.stdout.contains(Images.hello), "\(web)")
    }

    /// kpack's build pod (Platform API 0.9, which has no -insecure-registry) against a TLS
    /// registry whose CA the pod trusts (SSL_CERT_FILE), credentials in CNB_REGISTRY_AUTH, the
    /// cache a registry image (-cache-image), an additional tag. Built twice: the second restore
    /// takes the cached layer from the cache image.
    @Test func kpackBuildPodAgainstARegistry() throws {
        guard TestRegistry.available else { try skip("docker-registry is not installed") }
        try Invoker.subordinateUser.requireAvailable()
        let (uid, gid) = PlatformPhaseTests.ids(of: "stockade-sub")
        let registry = try TestRegistry(tls: true, user: Self.user)
        let certificate = try #require(registry.certificate)
        let pod = try Pod(registry: registry, owner: "\(uid):\(gid)")
        let host = registry.host
        let env = pod.environment([
            "CNB_PLATFORM_API": "0.9", "CNB_USER_ID": "1000", "CNB_GROUP_ID": "1000", "CNB_RUN_IMAGE": "\(host)/run:1",
            "CNB_REGISTRY_AUTH": "{\"\(host)\": \"\(Self.basic)\"}", "SSL_CERT_FILE": certificate,
            "CNB_LAYERS_DIR": pod.layers, "CNB_PLATFORM_DIR": pod.platform])
        let app = "\(host)/kpack/app"
        let cache = "\(host)/kpack/cache"
        for round in 1...2 {
            if round == 2 { try #require(Fixture.run(["find", pod.layers, "-mindepth", "1", "-delete"]).status == 0) }
            let steps: [(String, [String])] = [
                ("analyzer", ["-layers=\(pod.layers)", "-analyzed=\(pod.layers)/analyzed.toml", "-cache-image=\(cache)", app]),
                ("detector", ["-app=\(pod.workspace)", "-group=\(pod.layers)/group.toml", "-plan=\(pod.layers)/plan.toml"]),
                ("restorer", ["-group=\(pod.layers)/group.toml", "-layers=\(pod.layers)", "-cache-image=\(cache)"]),
                ("builder", ["-layers=\(pod.layers)", "-app=\(pod.workspace)", "-group=\(pod.layers)/group.toml", "-plan=\(pod.layers)/plan.toml"]),
                ("exporter", ["-layers=\(pod.layers)", "-app=\(pod.workspace)", "-group=\(pod.layers)/group.toml",
                              "-analyzed=\(pod.layers)/analyzed.toml", "-cache-image=\(cache)", "-process-type=web",
                              "-report=\(pod.report)/report.toml", app, "\(app):b1.\(round)"]),
            ]
            for (phase, args) in steps {
                let outcome = pod.run(phase, args, environment: env, as: .subordinateUser)
                try #require(outcome.status == 0, "\(phase): \(outcome)")
                if phase == "restorer" {
                    #expect(outcome.stdout.contains("Restored layer 'examples/shell:tools' from the cache") == (round == 2), "\(outcome)")
                }
            }
            let report = try String(contentsOfFile: pod.report + "/report.toml", encoding: .utf8)
            let (digest, config) = Self.inspect(app)
            let pushed = try #require(digest, "skopeo inspect \(app)")
            #expect(Self.inspect("\(app):b1.\(round)").digest == pushed)
            #expect(report.contains("digest = \"\(pushed)\"") && report.contains("\"\(app):b1.\(round)\""), "\(report)")
            let env = (config?["config"] as? [String: Any])?["Env"] as? [String]
            #expect(env?.contains("CNB_PLATFORM_API=0.9") == true, "\(config ?? [:])")
        }
        #expect(Self.inspect(cache).digest != nil, "the cache image is in the registry")
        let web = runImage(app, insecure: nil, environment: ["SSL_CERT_FILE=\(certificate)", "CNB_REGISTRY_AUTH={\"\(host)\": \"\(Self.basic)\"}"])
        #expect(web.status == 0 && web.stdout.contains(Images.hello), "\(web)")
    }

    /// The creator (pack's and CI jobs' single step) against the registry: one process analyses,
    /// detects, builds and pushes the image under its name and each -tag.
    @Test func creatorAgainstARegistry() throws {
        let (registry, pod, uid, gid) = try podOfThePlainUser()
        let host = registry.host
        let env = pod.environment(["CNB_PLATFORM_API": "0.13", "CNB_REGISTRY_AUTH": "{\"\(host)\": \"\(Self.basic)\"}"])
        let app = "\(host)/team/created:1"
        let outcome = pod.run("creator", ["-app=\(pod.workspace)", "-layers=\(pod.layers)", "-platform=\(pod.platform)",
                                          "-run-image=\(host)/run:1", "-insecure-registry=\(host)", "-tag=\(host)/team/created:extra",
                                          "-report=\(pod.report)/report.toml", app], environment: env, as: .plainUser)
        try #require(outcome.status == 0, "\(outcome)")
        let digest = try #require(Self.inspect(app).digest, "skopeo inspect \(app)")
        #expect(Self.inspect("\(host)/team/created:extra").digest == digest)
        let report = try String(contentsOfFile: pod.report + "/report.toml", encoding: .utf8)
        #expect(report.contains("digest = \"\(digest)\""), "\(report)")
        let web = runImage(app, insecure: host, environment: ["CNB_REGISTRY_AUTH={\"\(host)\": \"\(Self.basic)\"}"])
        #expect(web.status == 0 && web.stdout.contains(Images.hello), "\(web)")
    }

    /// A registry that is not there: one line, the phase's own failure code, nothing written.
    @Test(arguments: [("analyzer", 32), ("exporter", 62), ("rebaser", 72)])
    func unreachableRegistryIsOneLine(phase: String, code: Int32) throws {
        let links = LifecycleLinks()
        let layers = fx.makeDirectory("layers")
        try "[[group]]\nid = \"examples/shell\"\nversion = \"0.1.0\"\napi = \"0.10\"\n".write(toFile: layers + "/group.toml", atomically: true, encoding: .utf8)
        let args = phase == "rebaser" ? ["-run-image=registry.invalid/run", "registry.invalid/app"]
            : ["-layers=\(layers)", "-run-image=registry.invalid/run", "registry.invalid/app"]
        let outcome = links.run(phase, args, environment: ["CNB_PLATFORM_API": "0.13", "CNB_USER_ID": "1000", "CNB_GROUP_ID": "1000",
                                                           "HOME": fx.makeDirectory("home")])
        #expect(outcome.status == code, "\(outcome)")
        let lines = outcome.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("registry.invalid"), "\(outcome)")
        #expect(!FileManager.default.fileExists(atPath: layers + "/analyzed.toml"))
    }
}
