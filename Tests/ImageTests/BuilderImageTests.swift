import Foundation
import StockadeTestSupport
import Testing

/// Builder images: `stockade builder create` writes what pack writes, and `stockade build
/// --builder oci:…` unpacks one into a shared store once and builds from it.
enum Builders {
    static var fx: Fixture { Fixture.shared }

    /// A builder.toml naming the example buildpacks (by absolute path) and `extra` lines.
    static func config(buildpacks: [String] = ["shell", "labeller"], order: [String] = ["examples/shell"],
                       buildImage: String = Images.runImageOne, runImage: String? = Images.runImageOne,
                       extra: String = "") -> String {
        var text = "description = \"test builder\"\n"
        for name in buildpacks { text += "[[buildpacks]]\nuri = \"\(name.hasPrefix("/") || name.contains(":") ? name : fx.examples + "/buildpacks/" + name)\"\n" }
        for id in order { text += "[[order]]\n[[order.group]]\nid = \"\(id)\"\n" }
        text += "[build]\nimage = \"oci:\(buildImage):latest\"\n"
        if let runImage { text += "[[run.images]]\nimage = \"oci:\(runImage):latest\"\nmirrors = [\"oci:/nonexistent/mirror:latest\"]\n" }
        let path = fx.makeDirectory("builder-config") + "/builder.toml"
        try! (text + extra).write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o644)
        return path
    }

    /// `stockade builder create` into a new layout, tagged `builder`.
    static func create(_ config: String, as invoker: Invoker = .suiteUser) -> (layout: String, outcome: Outcome) {
        let layout = Images.newPath("builder")
        let made = fx.stockade(["builder", "create", "oci:\(layout):builder", "--config", config], as: invoker)
        _ = Fixture.run(["chmod", "-R", "a+rX", layout])
        return (layout, made)
    }

    static let shell: (layout: String, outcome: Outcome) = create(config())

    static func shellBuilder() throws -> String {
        try #require(shell.outcome.status == 0, "builder create: \(shell.outcome)")
        return shell.layout
    }

    /// A store directory every invoker may create its store in.
    static func store() -> String { Images.newPath("store") }

    static func build(builder: String, store: String, app: String = Images.shellApp, output: String? = nil,
                      extra: [String] = [], as invoker: Invoker = .suiteUser) -> Outcome {
        var args = ["build", "--builder", "oci:\(builder):builder", "--store", store, "--path", app, "--network", "none"]
        if let output { args += ["--output", "oci:\(output):app"] }
        return fx.stockade(args + extra, as: invoker)
    }

    /// The store's entries (unpacked trees and any leftover temporary directory).
    static func entries(_ store: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: store)) ?? []).sorted()
    }

    static func label(_ config: [String: Any], _ key: String) -> Any? {
        guard let labels = (config["config"] as? [String: Any])?["Labels"] as? [String: String], let text = labels[key] else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(text.utf8))
    }
}

@Suite struct BuilderImageTests {
    /// The labels' JSON in pack's shapes, one layer per buildpack at the escaped id and version,
    /// the lifecycle's phase links, and the tools nobody here wrote reading it.
    @Test func builderCreateWritesWhatPackWrites() throws {
        let layout = try Builders.shellBuilder()
        let config = try #require(Images.config(layout, tag: "builder"))
        let diffIDs = try #require((config["rootfs"] as? [String: Any])?["diff_ids"] as? [String])
        let metadata = try #require(Builders.label(config, "io.buildpacks.builder.metadata") as? [String: Any])
        #expect(metadata["description"] as? String == "test builder")
        let infos = try #require(metadata["buildpacks"] as? [[String: Any]])
        #expect(infos.map { "\($0["id"] ?? "")@\($0["version"] ?? "")" } == ["examples/labeller@0.0.1", "examples/shell@0.1.0"])
        let runImage = (metadata["stack"] as? [String: Any])?["runImage"] as? [String: Any]
        #expect(runImage?["image"] as? String == "oci:\(Images.runImageOne):latest")
        #expect((metadata["images"] as? [[String: Any]])?.first?["mirrors"] as? [String] == ["oci:/nonexistent/mirror:latest"])
        let apis = ((metadata["lifecycle"] as? [String: Any])?["apis"] as? [String: Any])
        #expect(((apis?["platform"] as? [String: Any])?["supported"] as? [String])?.contains("0.9") == true)
        #expect(((apis?["buildpack"] as? [String: Any])?["supported"] as? [String])?.contains("0.10") == true)
        #expect((metadata["createdBy"] as? [String: Any])?["name"] as? String == "Stockade")
        let order = try #require(Builders.label(config, "io.buildpacks.buildpack.order") as? [[String: Any]])
        #expect((order.first?["group"] as? [[String: Any]])?.first?["version"] as? String == "0.1.0")
        let layers = try #require(Builders.label(config, "io.buildpacks.buildpack.layers") as? [String: [String: [String: Any]]])
        let shell = try #require(layers["examples/shell"]?["0.1.0"])
        #expect(shell["api"] as? String == "0.10")
        let diffID = try #require(shell["layerDiffID"] as? String)
        #expect(diffIDs.contains(diffID))
        // That layer holds the buildpack under its escaped id and version, owned by root.
        let digests = Images.layerDigests(layout, tag: "builder")
        let index = try #require(diffIDs.firstIndex(of: diffID))
        let entries = try #require(Images.tarEntries(Images.blobPath(layout, digests[index])))
        #expect(entries.map(\.name).contains("cnb/buildpacks/examples_shell/0.1.0/bin/build"), "\(entries.map(\.name))")
        #expect(entries.allSatisfy { $0.name.hasPrefix("cnb") && $0.uid == 0 && $0.gid == 0 }, "\(entries.map(\.name))")
        let env = (config["config"] as? [String: Any])?["Env"] as? [String] ?? []
        #expect(env.contains("CNB_USER_ID=1000") && env.contains("CNB_GROUP_ID=1000"), "\(env)")
        #expect((config["config"] as? [String: Any])?["WorkingDir"] as? String == "/layers")

        let (inspected, parsed) = Images.skopeo(layout, tag: "builder")
        #expect(inspected.status == 0, "\(inspected)")
        #expect((parsed?["Labels"] as? [String: String])?["io.buildpacks.builder.metadata"] != nil)
        let bundle = Images.newPath("umoci-bundle")
        let unpacked = Fixture.run(["umoci", "unpack", "--rootless", "--image", "\(layout):builder", bundle])
        #expect(unpacked.status == 0, "\(unpacked)")
        let root = bundle + "/rootfs"
        #expect(Images.text(root + "/cnb/order.toml")?.contains("examples/shell") == true)
        #expect(Images.text(root + "/cnb/run.toml")?.contains(Images.runImageOne) == true)
        #expect(FileManager.default.fileExists(atPath: root + "/cnb/buildpacks/examples_shell/0.1.0/buildpack.toml"))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/cnb/lifecycle/detector") == "lifecycle")
        #expect(FileManager.default.isExecutableFile(atPath: root + "/cnb/lifecycle/launcher"))
        #expect(FileManager.default.isExecutableFile(atPath: root + "/bin/busybox"), "the build image's layers come first")
    }

    /// The first build unpacks the builder into the store; the second unpacks nothing (no
    /// "Unpacking layer" line, the same tree) and both use the builder's order, buildpacks and
    /// run image (its run.toml's, the mirror that does not exist passed over).
    @Test(arguments: Invoker.all)
    func aSecondBuildUnpacksNothing(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let builder = try Builders.shellBuilder()
        let store = Builders.store()
        let output = Images.newPath("builder-app")
        let first = Builders.build(builder: builder, store: store, output: output, as: invoker)
        #expect(first.status == 0, "\(first)")
        #expect(first.stdout.contains("Unpacking layer 1/"), "\(first)")
        let trees = Builders.entries(store)
        #expect(trees.count == 1 && !trees[0].hasPrefix("."), "\(trees)")
        let inode = try FileManager.default.attributesOfItem(atPath: store + "/" + trees[0])[.systemFileNumber] as? Int
        let second = Builders.build(builder: builder, store: store, as: invoker)
        #expect(second.status == 0, "\(second)")
        #expect(!second.stdout.contains("Unpacking"), "\(second)")
        #expect(second.stdout.contains("already unpacked"), "\(second)")
        #expect(Builders.entries(store) == trees)
        #expect(try FileManager.default.attributesOfItem(atPath: store + "/" + trees[0])[.systemFileNumber] as? Int == inode)
        // The app image sits on the builder's run image, which no flag named.
        let runLayers = Images.layerDigests(Images.runImageOne, tag: "latest")
        #expect(Array(Images.layerDigests(output, tag: "app").prefix(runLayers.count)) == runLayers)
        let ran = Images.fx.stockade(["run", "oci:\(output):app"], as: invoker)
        #expect(ran.stdout.hasPrefix(Images.hello), "\(ran)")
    }

    /// Builds racing on one new store: one tree, no half-made or leftover directory, both pass.
    @Test func concurrentBuildsShareOneTree() throws {
        let builder = try Builders.shellBuilder()
        let store = Builders.store()
        let outcomes = Locked<[Outcome]>([])
        DispatchQueue.concurrentPerform(iterations: 3) { _ in
            let outcome = Builders.build(builder: builder, store: store)
            outcomes.mutate { $0.append(outcome) }
        }
        for outcome in outcomes.value { #expect(outcome.status == 0, "\(outcome)") }
        let trees = Builders.entries(store)
        #expect(trees.count == 1 && !trees[0].hasPrefix("."), "\(trees)")
    }

    /// A build killed while unpacking leaves `.unpacking-…-<pid>-…`: the next unpacking into the
    /// store removes it once that process is gone, and leaves a live one's alone.
    @Test func anAbandonedUnpackingIsRemoved() throws {
        let builder = try Builders.shellBuilder()
        let store = Builders.store()
        let pidMax = Int32(Images.text("/proc/sys/kernel/pid_max")?.split(separator: "\n").first ?? "") ?? 32768
        let dead = try #require((1..<pidMax).reversed().first { kill($0, 0) != 0 && errno == ESRCH })
        let abandoned = store + "/.unpacking-000000000000-\(dead)-1"
        let live = store + "/.unpacking-000000000000-\(getpid())-2"
        for directory in [abandoned, live] {
            try FileManager.default.createDirectory(atPath: directory + "/sub", withIntermediateDirectories: true)
            try "x".write(toFile: directory + "/sub/file", atomically: true, encoding: .utf8)
        }
        let built = Builders.build(builder: builder, store: store)
        #expect(built.status == 0, "\(built)")
        #expect(!FileManager.default.fileExists(atPath: abandoned), "\(Builders.entries(store))")
        #expect(FileManager.default.fileExists(atPath: live + "/sub/file"), "\(Builders.entries(store))")
        #expect(Builders.entries(store).count == 2)
    }

    /// An older builder names its run image in /cnb/stack.toml only: that is the default run image.
    @Test func anOlderBuildersStackTOMLNamesTheRunImage() throws {
        let stack = "[run-image]\nimage = \"oci:\(Images.runImageTwo):latest\"\nmirrors = []\n"
        let builder = try HostileBuilderTests.craft([["cnb/stack.toml", "file", stack]])
        let output = Images.newPath("stack-toml-app")
        let built = Builders.build(builder: builder, store: Builders.store(), output: output,
                                   extra: ["--buildpack", Images.examples + "/buildpacks/shell"])
        #expect(built.status == 0, "\(built)")
        let runLayers = Images.layerDigests(Images.runImageTwo, tag: "latest")
        #expect(Array(Images.layerDigests(output, tag: "app").prefix(runLayers.count)) == runLayers)
    }

    /// A builder pushed to a registry (loopback docker-registry) builds by its reference: pulled
    /// into the blob cache, unpacked into the store, as a layout would be.
    @Test(.timeLimit(.minutes(5))) func aBuilderFromARegistryBuilds() throws {
        guard TestRegistry.available else { try skip("docker-registry is not installed") }
        let layout = try Builders.shellBuilder()
        let registry = try TestRegistry()
        let reference = "\(registry.host)/builder:1"
        let pushed = Fixture.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:\(layout):builder", "docker://" + reference])
        try #require(pushed.status == 0, "\(pushed)")
        let output = Images.newPath("registry-builder-app")
        let built = Images.fx.stockade(["build", "--builder", reference, "--insecure-registry", registry.host,
                                        "--store", Builders.store(), "--path", Images.shellApp, "--network", "none",
                                        "--output", "oci:\(output):app"], as: .suiteUser)
        #expect(built.status == 0, "\(built)")
        #expect(built.stdout.contains("Unpacking layer 1/"), "\(built)")
        let ran = Images.fx.stockade(["run", "oci:\(output):app"], as: .suiteUser)
        #expect(ran.stdout.hasPrefix(Images.hello), "\(ran)")
    }

    /// `--rootfs` and a builder image both name the build image.
    @Test func aBuilderImageAndRootfsConflict() throws {
        let builder = try Builders.shellBuilder()
        let ran = Builders.build(builder: builder, store: Builders.store(), extra: ["--rootfs", "/"])
        #expect(ran.status == 64 && ran.stderr.contains("--rootfs"), "\(ran)")
    }

    /// `buildpack package` as an image and as a .cnb file, and a builder made from both, from a
    /// .tgz, and from a directory; a registry urn is one clear error.
    @Test func packagesAndArchivesAreBuilderInputs() throws {
        let dir = Images.fx.makeDirectory("package")
        try "[buildpack]\nuri = \"\(Images.fx.examples)/buildpacks/shell\"\n".write(toFile: dir + "/package.toml", atomically: true, encoding: .utf8)
        let image = Images.newPath("package-image")
        let packaged = Images.fx.stockade(["buildpack", "package", "oci:\(image):bp", "--config", dir + "/package.toml"], as: .suiteUser)
        #expect(packaged.status == 0, "\(packaged)")
        let config = try #require(Images.config(image, tag: "bp"))
        let metadata = try #require(Builders.label(config, "io.buildpacks.buildpackage.metadata") as? [String: Any])
        #expect(metadata["id"] as? String == "examples/shell" && metadata["version"] as? String == "0.1.0", "\(metadata)")
        let layers = try #require(Builders.label(config, "io.buildpacks.buildpack.layers") as? [String: [String: [String: Any]]])
        #expect(layers["examples/shell"]?["0.1.0"]?["layerDiffID"] as? String
                == ((config["rootfs"] as? [String: Any])?["diff_ids"] as? [String])?.first)
        #expect(Images.skopeo(image, tag: "bp").0.status == 0)

        let cnb = dir + "/labeller.cnb"
        try "[buildpack]\nuri = \"\(Images.fx.examples)/buildpacks/labeller\"\n".write(toFile: dir + "/labeller.toml", atomically: true, encoding: .utf8)
        let filed = Images.fx.stockade(["buildpack", "package", cnb, "--config", dir + "/labeller.toml", "--format", "file"], as: .suiteUser)
        #expect(filed.status == 0, "\(filed)")
        // A .cnb is an OCI layout in a tar, as pack writes it: skopeo reads it once unpacked.
        let unpackedCNB = dir + "/cnb-layout"
        try FileManager.default.createDirectory(atPath: unpackedCNB, withIntermediateDirectories: true)
        #expect(Fixture.run(["tar", "-xf", cnb, "-C", unpackedCNB]).status == 0)
        #expect(Fixture.run(["skopeo", "inspect", "oci:\(unpackedCNB)"]).status == 0)

        let tgz = dir + "/provider.tgz"
        #expect(Fixture.run(["tar", "-czf", tgz, "-C", Images.fx.examples + "/buildpacks/greeting-provider", "."]).status == 0)
        let config2 = Builders.config(buildpacks: ["oci:\(image):bp", cnb, tgz, "greeting-consumer"],
                                      order: ["examples/shell", "examples/greeting-provider"])
        let (builder, made) = Builders.create(config2)
        #expect(made.status == 0, "\(made)")
        let builderConfig = try #require(Images.config(builder, tag: "builder"))
        let held = try #require(Builders.label(builderConfig, "io.buildpacks.buildpack.layers") as? [String: Any])
        #expect(Set(held.keys) == ["examples/shell", "examples/labeller", "examples/greeting-provider", "examples/greeting-consumer"])
        let built = Builders.build(builder: builder, store: Builders.store())
        #expect(built.status == 0 && built.stdout.contains("examples/shell@0.1.0"), "\(built)")

        let urn = Builders.create(Builders.config(buildpacks: ["urn:cnb:registry:example/x@1.0.0"]))
        #expect(urn.outcome.status == 3 && urn.outcome.stderr.contains("not supported"), "\(urn.outcome)")
        #expect(urn.outcome.stderr.split(separator: "\n").count == 1, "\(urn.outcome)")
    }

    /// `--buildpack` takes what `builder create` takes: a buildpackage image, a .cnb, a .tgz.
    @Test func theBuildpackFlagTakesPackagesAndArchives() throws {
        let dir = Images.fx.makeDirectory("buildpack-flag")
        try "[buildpack]\nuri = \"\(Images.fx.examples)/buildpacks/shell\"\n".write(toFile: dir + "/package.toml", atomically: true, encoding: .utf8)
        let image = Images.newPath("shell-package")
        let packaged = Images.fx.stockade(["buildpack", "package", "oci:\(image):bp", "--config", dir + "/package.toml"], as: .suiteUser)
        #expect(packaged.status == 0, "\(packaged)")
        let cnb = dir + "/shell.cnb"
        let filed = Images.fx.stockade(["buildpack", "package", cnb, "--config", dir + "/package.toml", "--format", "file"], as: .suiteUser)
        #expect(filed.status == 0, "\(filed)")
        let tgz = dir + "/shell.tgz"
        #expect(Fixture.run(["tar", "-czf", tgz, "-C", Images.fx.examples + "/buildpacks/shell", "."]).status == 0)
        _ = Fixture.run(["chmod", "-R", "a+rX", dir, image])

        for given in ["oci:\(image):bp", cnb, tgz] {
            let output = Images.newPath("flag-app")
            let built = Images.fx.stockade(["build", "--buildpack", given, "--path", Images.shellApp, "--network", "none",
                                            "--output", "oci:\(output):app", "--run-image", Images.runImageOne], as: .suiteUser)
            #expect(built.status == 0 && built.stdout.contains("examples/shell@0.1.0"), "\(given): \(built)")
            let ran = Images.fx.stockade(["run", "oci:\(output):app"], as: .suiteUser)
            #expect(ran.status == 0 && ran.stdout.hasPrefix(Images.hello), "\(given): \(ran)")
        }

        let urn = Images.fx.stockade(["detect", "--buildpack", "urn:cnb:registry:example/x@1.0.0", "--path", Images.shellApp],
                                     as: .suiteUser)
        #expect(urn.status == 3 && urn.stderr.split(separator: "\n").count == 1, "\(urn)")
        let missing = Images.fx.stockade(["detect", "--buildpack", dir + "/nothing.cnb", "--path", Images.shellApp], as: .suiteUser)
        #expect(missing.status != 0 && missing.stderr.split(separator: "\n").count == 1, "\(missing)")
    }
}

/// A value several threads append to.
final class Locked<T>: @unchecked Sendable {
    private var stored: T
    private let lock = NSLock()
    init(_ value: T) { stored = value }
    var value: T { lock.withLock { stored } }
    func mutate(_ body: (inout T) -> Void) { lock.withLock { body(&stored) } }
}
