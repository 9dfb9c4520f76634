import Foundation
import Glibc
import StockadeTestSupport
import Testing

/// Builds pushed to, run from and rebased in a real registry (Debian's docker-registry).
@Suite(.serialized, .timeLimit(.minutes(5))) struct RegistryFlowTests {
    static let invokers: [Invoker] = [.suiteUser, .subordinateUser]

    @Test(arguments: invokers)
    func buildPushesWhatSkopeoReadsAndRunRuns(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        guard TestRegistry.available else { try skip("docker-registry is not installed") }
        let registry = try TestRegistry()
        let reference = "\(registry.host)/app:1"
        let built = Registries.build(output: reference, as: invoker, extra: ["--insecure-registry", registry.host])
        #expect(built.status == 0, "\(built)")
        let pushed = built.lines.first { $0.hasPrefix("Pushed \(reference)@sha256:") }
        #expect(pushed != nil, "\(built.stdout)")
        let digest = pushed.map { String($0.split(separator: "@").last!) } ?? "?"

        let inspected = Fixture.run(["skopeo", "inspect", "--tls-verify=false", "docker://" + reference])
        #expect(inspected.status == 0, "\(inspected)")
        #expect(inspected.stdout.contains("\"Digest\": \"\(digest)\""), "\(inspected.stdout)")
        let copy = Registries.fx.makeDirectory("skopeo-copy") + "/layout"
        let copied = Fixture.run(["skopeo", "copy", "-q", "--src-tls-verify=false", "docker://" + reference, "oci:" + copy + ":app"])
        #expect(copied.status == 0, "\(copied)")

        let ran = Registries.stockade(["run", reference, "--insecure-registry", registry.host], as: invoker)
        #expect(ran.status == 0, "\(ran)")
        #expect(ran.stdout.contains(Registries.hello), "\(ran.stdout)")

        // The same build again: every blob is in the registry already; none is uploaded.
        let again = Registries.build(output: reference, as: invoker, extra: ["--insecure-registry", registry.host])
        #expect(again.status == 0, "\(again)")
        #expect(!again.stdout.contains("Pushing "), "\(again.stdout)")
        #expect(again.stdout.contains("already there"), "\(again.stdout)")
    }

    /// The issue's flow with every image in the registry: a buildpackage and then a builder pushed
    /// by stockade (the builder's buildpack, build and run image named by registry reference), a
    /// build from that builder pushed in turn, read by skopeo, run by stockade and (as root) by runc.
    @Test(arguments: invokers)
    func builderCreatedInTheRegistryBuildsWhatSkopeoStockadeAndRuncRead(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        guard TestRegistry.available else { try skip("docker-registry is not installed") }
        let registry = try TestRegistry()
        let host = registry.host, insecure = ["--insecure-registry", registry.host]
        let fx = Registries.fx
        #expect(Registries.skopeoPush(Registries.runImage + ":latest", to: "\(host)/run:1").status == 0)

        let dir = fx.makeDirectory("registry-builder")
        let buildpack = "\(host)/shell-bp:1"
        try write("[buildpack]\nuri = \"\(fx.examples)/buildpacks/shell\"\n", to: dir + "/package.toml")
        let packaged = Registries.stockade(["buildpack", "package", buildpack, "--config", dir + "/package.toml"] + insecure, as: invoker)
        #expect(packaged.status == 0, "\(packaged)")
        #expect(packaged.stdout.contains("Pushed \(buildpack)@sha256:"), "\(packaged.stdout)")

        try write("""
            [[buildpacks]]
            uri = "docker://\(buildpack)"
            [[order]]
            [[order.group]]
            id = "examples/shell"
            [build]
            image = "\(host)/run:1"
            [[run.images]]
            image = "\(host)/run:1"

            """, to: dir + "/builder.toml")
        let builder = "\(host)/builder:1"
        let created = Registries.stockade(["builder", "create", builder, "--config", dir + "/builder.toml"] + insecure, as: invoker)
        #expect(created.status == 0, "\(created)")
        #expect(created.stdout.contains("Pushed \(builder)@sha256:"), "\(created.stdout)")
        #expect(created.stdout.contains("buildpack examples/shell@0.1.0"), "\(created.stdout)")
        let builderInfo = Fixture.run(["skopeo", "inspect", "--tls-verify=false", "docker://" + builder])
        #expect(builderInfo.status == 0 && builderInfo.stdout.contains("io.buildpacks.builder.metadata"), "\(builderInfo)")
        // A buildpack uri naming a tag the registry lacks: one line, the registry's own exit code.
        try write("[[buildpacks]]\nuri = \"\(host)/shell-bp:missing\"\n[build]\nimage = \"\(host)/run:1\"\n", to: dir + "/missing.toml")
        let missing = Registries.stockade(["builder", "create", "\(host)/never:1", "--config", dir + "/missing.toml"] + insecure, as: invoker)
        #expect(missing.status == 82 && Registries.oneErrorLine(missing), "\(missing)")

        let app = "\(host)/app:1"
        let store = fx.makeDirectory("store", mode: 0o777) + "/store"
        let built = Registries.stockade(["build", "--builder", builder, "--store", store, "--path", fx.examples + "/apps/shell-app",
                                         "--network", "none", "--output", app] + insecure, as: invoker)
        #expect(built.status == 0, "\(built)")
        #expect(built.stdout.contains("Pushed \(app)@sha256:"), "\(built.stdout)")
        // On the builder's run image, which no flag named.
        let runLayers = Self.layers("docker://\(host)/run:1"), appLayers = Self.layers("docker://" + app)
        #expect(!runLayers.isEmpty && Array(appLayers.prefix(runLayers.count)) == runLayers, "\(appLayers) \(runLayers)")

        let copy = fx.makeDirectory("skopeo-copy") + "/layout"
        let copied = Fixture.run(["skopeo", "copy", "-q", "--src-tls-verify=false", "docker://" + app, "oci:" + copy + ":app"])
        #expect(copied.status == 0, "\(copied)")
        let ran = Registries.stockade(["run", app] + insecure, as: invoker)
        #expect(ran.status == 0 && ran.stdout.contains(Registries.hello), "\(ran)")

        guard fx.isRoot, invoker == .suiteUser, copied.status == 0 else { return }  // umoci unpack and runc need root
        let bundle = fx.makeDirectory("bundle") + "/bundle"
        defer { try? FileManager.default.removeItem(atPath: bundle) }
        let unpacked = Fixture.run(["umoci", "unpack", "--image", copy + ":app", bundle])
        try #require(unpacked.status == 0, "\(unpacked)")
        let configPath = bundle + "/config.json"
        var config = try #require((try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath)))) as? [String: Any])
        var process = try #require(config["process"] as? [String: Any])
        process["terminal"] = false
        config["process"] = process
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
        let runc = Fixture.run(["runc", "run", "--bundle", bundle, "stockade-registry-test-" + UUID().uuidString.prefix(12)])
        #expect(runc.status == 0 && runc.stdout.hasPrefix(Registries.hello), "\(runc)")
    }

    private func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o644)
    }

    @Test(arguments: invokers)
    func rebaseInTheRegistryDownloadsNoLayer(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        guard TestRegistry.available else { try skip("docker-registry is not installed") }
        let registry = try TestRegistry()
        let runTwo = Registries.makeRunImage(marker: "two")
        #expect(Registries.skopeoPush(Registries.runImage + ":latest", to: "\(registry.host)/run:1").status == 0)
        #expect(Registries.skopeoPush(runTwo + ":latest", to: "\(registry.host)/run:2").status == 0)
        let app = "\(registry.host)/app:1"
        let built = Registries.build(output: app, runImage: "\(registry.host)/run:1", as: invoker,
                                     extra: ["--insecure-registry", registry.host])
        #expect(built.status == 0, "\(built)")
        // The run image's layer is mounted from its repository, not uploaded.
        #expect(built.stdout.contains("mounted from run"), "\(built.stdout)")

        let before = registry.blobGETs().count
        let rebased = Registries.stockade(["rebase", app, "--run-image", "\(registry.host)/run:2",
                                           "--insecure-registry", registry.host], as: invoker)
        #expect(rebased.status == 0, "\(rebased)")
        let fetched = Array(registry.blobGETs()[before...])
        let appLayers = Self.layers("docker://" + app)
        let runLayers = Self.layers("docker://\(registry.host)/run:2")
        #expect(!appLayers.isEmpty && !runLayers.isEmpty)
        // Configs only (two documents of a few kB); no layer of either image.
        #expect(fetched.count <= 2, "\(fetched)")
        #expect(Set(fetched).isDisjoint(with: appLayers + runLayers), "\(fetched)")
        #expect(appLayers.first == runLayers.first, "the rebased image starts with run:2's layer: \(appLayers) \(runLayers)")
        let ran = Registries.stockade(["run", app, "--insecure-registry", registry.host], as: invoker)
        #expect(ran.stdout.contains(Registries.hello), "\(ran)")
    }

    @Test(arguments: invokers)
    func theCacheCanLiveInARegistryImage(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        guard TestRegistry.available else { try skip("docker-registry is not installed") }
        let registry = try TestRegistry()
        let cache = "\(registry.host)/cache:1"
        let flags = ["--cache-image", cache, "--insecure-registry", registry.host]
        let first = Registries.build(output: Registries.fx.makeDirectory("out-one", mode: 0o777) + "/image:app", as: invoker, extra: flags)
        #expect(first.status == 0, "\(first)")
        #expect(!first.stdout.contains("Restored layer"), "\(first.stdout)")
        #expect(first.stdout.contains("Pushed \(cache)@sha256:"), "\(first.stdout)")
        #expect(Fixture.run(["skopeo", "inspect", "--tls-verify=false", "docker://" + cache]).status == 0)
        let second = Registries.build(output: Registries.fx.makeDirectory("out-two", mode: 0o777) + "/image:app", as: invoker, extra: flags)
        #expect(second.status == 0, "\(second)")
        #expect(second.stdout.contains("Restored layer 'examples/shell:tools' from the cache"), "\(second.stdout)")
    }

    static func layers(_ reference: String) -> [String] {
        let inspected = Fixture.run(["skopeo", "inspect", "--tls-verify=false", reference])
        guard let json = try? JSONSerialization.jsonObject(with: Data(inspected.stdout.utf8)) as? [String: Any] else { return [] }
        return json["Layers"] as? [String] ?? []
    }

    /// A terminal gets one line rewritten in place with bytes and rate; a pipe gets plain lines.
    @Test func progressIsRewrittenOnATerminalAndPlainOtherwise() throws {
        guard TestRegistry.available else { try skip("docker-registry is not installed") }
        guard Fixture.run(["sh", "-c", "command -v script"]).status == 0 else { try skip("script (util-linux) is not installed") }
        let registry = try TestRegistry()
        let piped = Registries.stockade(["copy", Registries.appLayout, "\(registry.host)/piped:1", "--insecure-registry", registry.host])
        #expect(piped.status == 0, "\(piped)")
        let plain = piped.stdout + piped.stderr
        #expect(plain.contains("Pushed sha256:") && !plain.contains("\r") && !plain.contains("\u{1b}"), "\(plain)")

        // script(1) gives the command a pseudo-terminal, as an interactive shell would.
        let cache = Registries.fx.makeDirectory("xdg-cache", mode: 0o777)
        let command = ["env", "XDG_CACHE_HOME=" + cache, Registries.fx.stockade, "copy", Registries.appLayout,
                       "\(registry.host)/terminal:1", "--insecure-registry", registry.host].joined(separator: " ")
        let terminal = Fixture.run(["script", "-qec", command, "/dev/null"])
        #expect(terminal.status == 0, "\(terminal)")
        #expect(terminal.stdout.contains("\r\u{1b}[KPushing sha256:") || terminal.stdout.contains("\r\u{1b}[KPushed sha256:"),
                "\(terminal.stdout.debugDescription)")
        #expect(terminal.stdout.contains("/s"), "\(terminal.stdout.debugDescription)")
    }

    @Test func tlsNeedsTheCertificateOrTheInsecureFlag() throws {
        guard TestRegistry.available else { try skip("docker-registry is not installed") }
        let registry = try TestRegistry(tls: true)
        let app = "\(registry.host)/app:1"
        #expect(Registries.skopeoPush(Registries.appLayout, to: app).status == 0)

        let refused = Registries.stockade(["run", app])
        #expect(refused.status == 80, "\(refused)")
        #expect(Registries.oneErrorLine(refused), "\(refused.stderr)")
        #expect(refused.stderr.contains("TLS"), "\(refused.stderr)")

        for (args, environment) in [(["--insecure-registry", registry.host], [String: String]()),
                                    ([], ["SSL_CERT_FILE": registry.certificate!])] {
            let ran = Registries.stockade(["run", app] + args, environment: environment)
            #expect(ran.status == 0, "\(args) \(environment): \(ran)")
            #expect(ran.stdout.contains(Registries.hello), "\(ran.stdout)")
        }
    }

    @Test func unknownHostMissingTagAndNoRegistryHaveTheirOwnLines() throws {
        guard TestRegistry.available else { try skip("docker-registry is not installed") }
        let registry = try TestRegistry()
        let cases: [([String], Int32, String)] = [
            (["run", "no-such-host.invalid/app:1"], 68, "unknown host"),
            (["run", "\(registry.host)/app:missing", "--insecure-registry", registry.host], 82, "does not exist"),
        ]
        for (args, status, text) in cases {
            let outcome = Registries.stockade(args)
            #expect(outcome.status == status, "\(args): \(outcome)")
            #expect(Registries.oneErrorLine(outcome), "\(outcome.stderr)")
            #expect(outcome.stderr.contains(text), "\(outcome.stderr)")
        }
        let malformed = Registries.stockade(["run", "localhost:5000/App:1"])
        // A usage error: the reason on the first line, then the command's usage (as every usage error).
        #expect(malformed.status == 64, "\(malformed)")
        #expect(malformed.stderr.split(separator: "\n").first?.contains("App has upper-case letters") == true, "\(malformed.stderr)")
    }
}
