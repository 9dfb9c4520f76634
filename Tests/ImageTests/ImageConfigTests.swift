import Foundation
import StockadeTestSupport
import Testing

/// What the config says beyond the layers: when it was made and what project it came from.
@Suite struct ImageConfigTests {
    @Test func sourceDateEpochAndTheProjectDescriptorReachTheConfig() throws {
        let app = Images.copy(Images.shellApp)
        try """
            [_]
            schema-version = "0.2"
            id = "example/shell-app"
            version = "1.2.3"
            source-url = "https://example.invalid/shell-app"
            """.write(toFile: app + "/project.toml", atomically: true, encoding: .utf8)
        _ = Fixture.run(["chmod", "-R", "a+rX", app])
        let output = Images.newPath("config-epoch")
        let built = Fixture.run(["env", "SOURCE_DATE_EPOCH=1700000000", Fixture.shared.stockade, "build",
                                 "--builder", Fixture.shared.examples + "/builder.toml", "--path", app, "--network", "none",
                                 "--run-image", Images.runImageOne, "--output", output + ":app"])
        try #require(built.status == 0, "\(built)")
        let config = try #require(Images.config(output))
        #expect(config["created"] as? String == "2023-11-14T22:13:20Z")
        let history = config["history"] as? [[String: Any]] ?? []
        #expect(history.last?["created"] as? String == "2023-11-14T22:13:20Z", "\(history)")
        let labels = (config["config"] as? [String: Any])?["Labels"] as? [String: String] ?? [:]
        let project = try #require(labels["io.buildpacks.project.metadata"]
            .flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any])
        let source = project["source"] as? [String: Any]
        #expect(source?["type"] as? String == "project")
        #expect((source?["version"] as? [String: String])?["declared"] == "1.2.3")
        #expect((source?["metadata"] as? [String: String])?["url"] == "https://example.invalid/shell-app")

        let bad = Fixture.run(["env", "SOURCE_DATE_EPOCH=yesterday", Fixture.shared.stockade, "build",
                               "--builder", Fixture.shared.examples + "/builder.toml", "--path", app, "--network", "none",
                               "--output", Images.newPath("config-bad") + ":app"])
        #expect(bad.status == 64, "\(bad)")
        #expect(bad.stderr.contains("SOURCE_DATE_EPOCH"), "\(bad)")
    }

    /// `stockade build --path . --output ./image`: the layout and the cache inside the app are not
    /// part of the app, or every build would carry the one before it.
    @Test func anOutputInsideTheAppIsNotPartOfTheApp() throws {
        let app = Images.copy(Images.shellApp, mode: 0o777)
        _ = Fixture.run(["chmod", "-R", "a+rwX", app])
        var digests: [String] = []
        for _ in 0..<2 {
            let built = Images.build(output: app + "/image", app: app, cache: app + "/cache")
            try #require(built.status == 0, "\(built)")
            digests.append(try #require(Images.manifestDigest(app + "/image")))
        }
        #expect(digests[0] == digests[1])
        let names = Images.layerDigests(app + "/image").compactMap { Images.tarEntries(Images.blobPath(app + "/image", $0)) }
            .flatMap { $0.map(\.name) }
        #expect(names.contains("workspace/app.sh"), "\(names)")
        #expect(!names.contains { $0.hasPrefix("workspace/image") || $0.hasPrefix("workspace/cache") }, "\(names)")
    }
}
