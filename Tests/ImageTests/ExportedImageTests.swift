import Foundation
import StockadeTestSupport
import Testing

/// An exported image as tools nobody here wrote see it (skopeo, umoci, runc), and as
/// `stockade run` runs it.
@Suite struct ExportedImageTests {
    let fx = Fixture.shared

    /// What app.sh's checksum is, computed here: the launcher must set APP_SHA256 to it from
    /// the checksum layer's env.launch.
    var appSHA: String { String(Images.sha256(Images.shellApp + "/app.sh").dropFirst("sha256:".count)) }

    @Test func skopeoReadsTheImageAndItsMetadata() throws {
        let image = try Images.sharedImage()
        let (inspected, info) = Images.skopeo(image)
        #expect(inspected.status == 0, "\(inspected)")
        let (inspectedConfig, config) = Images.skopeo(image, config: true)
        #expect(inspectedConfig.status == 0, "\(inspectedConfig)")
        let info_ = try #require(info), config_ = try #require(config?["config"] as? [String: Any])

        #expect(info_["Digest"] as? String == Images.manifestDigest(image))
        #expect(config_["Entrypoint"] as? [String] == ["/cnb/process/web"])
        #expect(config_["User"] as? String == "1000:1000")
        #expect(config_["WorkingDir"] as? String == "/workspace")
        #expect(info_["Architecture"] as? String == Images.config(Images.runImageOne, tag: "latest")?["architecture"] as? String)

        // The run image's layer comes first, then the app's.
        let runLayers = Images.layerDigests(Images.runImageOne, tag: "latest")
        let layers = info_["Layers"] as? [String] ?? []
        #expect(runLayers.count == 1 && layers.first == runLayers.first, "\(layers)")
        #expect(layers.count > 1)

        let labels = info_["Labels"] as? [String: String] ?? [:]
        for key in ["io.buildpacks.lifecycle.metadata", "io.buildpacks.build.metadata", "io.buildpacks.project.metadata"] {
            let value = try #require(labels[key], "no label \(key) in \(labels.keys.sorted())")
            #expect((try? JSONSerialization.jsonObject(with: Data(value.utf8))) is [String: Any], "\(key): \(value)")
        }
        let lifecycle = try #require(labels["io.buildpacks.lifecycle.metadata"].flatMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        })
        // Every layer the metadata names is in the image, and it knows where the run image ends.
        #expect((lifecycle["runImage"] as? [String: Any])?["topLayer"] as? String == runLayers.first)
        let buildpacks = lifecycle["buildpacks"] as? [[String: Any]] ?? []
        let shell = try #require(buildpacks.first { $0["key"] as? String == "examples/shell" })
        let named = (shell["layers"] as? [String: [String: Any]] ?? [:]).mapValues { $0["sha"] as? String ?? "" }
        #expect(Set(named.keys) == ["checksum", "tools"], "\(named)")
        #expect(named.values.allSatisfy { layers.contains($0) }, "\(named) vs \(layers)")
        let build = try #require(labels["io.buildpacks.build.metadata"].flatMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        })
        let types = (build["processes"] as? [[String: Any]] ?? []).compactMap { $0["type"] as? String }
        #expect(Set(types) == ["web", "shout"], "\(build)")
        // The labeller buildpack's label made it too.
        #expect(labels["io.stockade.example"] == "yes")
    }

    @Test func skopeoCopiesTheImageCheckingEveryBlob() throws {
        let image = try Images.sharedImage()
        let target = Images.newPath("skopeo-copy")
        let copied = Fixture.run(["skopeo", "copy", "-q", "oci:\(image):app", "oci:\(target):copied"])
        #expect(copied.status == 0, "\(copied)")
        let original = Images.skopeo(image, config: true).1?["rootfs"] as? [String: Any]
        let copy = Images.skopeo(target, tag: "copied", config: true).1?["rootfs"] as? [String: Any]
        #expect(original?["diff_ids"] as? [String] == Images.layerDigests(image))
        #expect(copy?["diff_ids"] as? [String] == original?["diff_ids"] as? [String])
        // And skopeo notices a blob that is not what its digest says: the check above is real.
        let damaged = Images.copy(image)
        let layer = try #require(Images.layerDigests(damaged).last)
        try Images.flipBit(Images.blobPath(damaged, layer), at: 10)
        let refused = Fixture.run(["skopeo", "copy", "-q", "oci:\(damaged):app", "oci:\(Images.newPath("refused")):x"])
        #expect(refused.status != 0, "\(refused)")
    }

    @Test(.enabled(if: Fixture.shared.isRoot, "umoci unpack and runc need root"))
    func umociUnpacksItAndRuncRunsItsProcesses() throws {
        // umoci may write into the layout it reads: a copy, not the shared image.
        let image = Images.copy(try Images.sharedImage())
        let bundle = fx.makeDirectory("bundle") + "/bundle"
        defer { try? FileManager.default.removeItem(atPath: bundle) }
        let unpacked = Fixture.run(["umoci", "unpack", "--image", image + ":app", bundle])
        try #require(unpacked.status == 0, "\(unpacked)")
        let rootfs = bundle + "/rootfs"
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: rootfs + "/cnb/process/web")) == "/cnb/lifecycle/launcher")
        #expect(FileManager.default.isExecutableFile(atPath: rootfs + "/cnb/lifecycle/launcher"))
        #expect(Images.text(rootfs + "/etc/run-image") == "one\n")

        /// runc with the bundle's config, without a terminal, with other process args when given.
        func runc(_ args: [String]? = nil) throws -> Outcome {
            let path = bundle + "/config.json"
            var config = try #require(Images.json(path))
            var process = try #require(config["process"] as? [String: Any])
            process["terminal"] = false
            if let args { process["args"] = args }
            config["process"] = process
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path))
            return Fixture.run(["runc", "run", "--bundle", bundle, "stockade-image-test-" + UUID().uuidString.prefix(12)])
        }
        let web = try runc()
        #expect(web.status == 0, "\(web)")
        #expect(web.stdout == Images.hello + appSHA + "\n", "\(web)")
        let shout = try runc(["/cnb/process/shout", "from", "runc"])
        #expect(shout.status == 0, "\(shout)")
        #expect(shout.stdout == "FROM RUNC\n", "\(shout)")
    }

    @Test(arguments: Invoker.all)
    func stockadeRunsEachProcess(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let image = try Images.sharedImage() + ":app"
        let web = fx.stockade(["run", image], as: invoker)
        #expect(web.status == 0, "\(web)")
        #expect(web.stdout == Images.hello + appSHA + "\n", "\(web)")

        let shout = fx.stockade(["run", image, "--process", "shout", "--", "a", "b"], as: invoker)
        #expect(shout.status == 0 && shout.stdout == "A B\n", "\(shout)")
        // Without arguments, the process's own.
        let defaults = fx.stockade(["run", image, "--process", "shout"], as: invoker)
        #expect(defaults.status == 0 && defaults.stdout == "DEFAULT ARGS\n", "\(defaults)")

        let nope = fx.stockade(["run", image, "--process", "nope"], as: invoker)
        #expect(nope.status == 64, "\(nope)")
        #expect(nope.stdout.isEmpty)
        let lines = nope.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("nope") && lines[0].contains("shout") && lines[0].contains("web"), "\(nope)")
    }

    @Test func theRootFilesystemIsReadOnlyAndTmpWritable() throws {
        // `stockade run` gives the image's processes a read-only root and a writable /tmp.
        let layers = try HandMadeLayers()
        try """
            buildpack-default-process-type = "try"

            [[buildpacks]]
            api = "0.10"
            id = "t/bp"
            version = "1.0.0"

            [[processes]]
            type = "try"
            command = ["sh", "-c", "echo x > /workspace/new 2>/dev/null && echo app-writable; echo y > /tmp/new && cat /tmp/new"]
            args = []
            direct = true
            buildpack-id = "t/bp"
            """.write(toFile: layers.layers + "/config/metadata.toml", atomically: true, encoding: .utf8)
        let output = Images.newPath("ro") + ":ro"
        let exported = layers.export(to: output)
        try #require(exported.status == 0, "\(exported)")
        let ran = fx.stockade(["run", output], as: .suiteUser)
        #expect(ran.status == 0, "\(ran)")
        #expect(ran.stdout == "y\n", "\(ran)")
    }
}
