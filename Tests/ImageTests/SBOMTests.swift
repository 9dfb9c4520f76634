import Foundation
import StockadeTestSupport
import Testing

/// SBOM files (§5.4): what buildpacks declare goes into the image's SBOM layer; what they do not
/// declare, or name wrongly, is that buildpack's error.
@Suite struct SBOMTests {
    @Test func launchSBOMsAreALayerOfTheImage() throws {
        let image = try Images.sharedImage()
        let config = try #require(Images.config(image))
        let labels = (config["config"] as? [String: Any])?["Labels"] as? [String: String] ?? [:]
        let lifecycle = try #require(labels["io.buildpacks.lifecycle.metadata"]
            .flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any])
        let sbom = try #require((lifecycle["sbom"] as? [String: String])?["sha"], "\(lifecycle)")
        #expect(Images.layerDigests(image).contains(sbom))
        let entries = try #require(Images.tarEntries(Images.blobPath(image, sbom)))
        let files = entries.filter { $0.type == "0" }.map(\.name).sorted()
        #expect(files == ["layers/sbom/launch/examples_shell/checksum/sbom.cdx.json",
                          "layers/sbom/launch/examples_shell/sbom.cdx.json",
                          "layers/sbom/launch/examples_shell/tools/sbom.cdx.json"], "\(entries)")
    }

    /// The shell example writes a layer's SBOM only when it makes the layer: kept from the previous
    /// image or restored from the cache, the SBOM must come back with it.
    @Test func keptAndCachedLayersKeepTheirSBOMs() throws {
        let output = Images.newPath("sbom-kept"), cache = Images.newPath("sbom-cache")
        let first = Images.build(output: output, cache: cache)
        try #require(first.status == 0, "\(first)")
        let second = Images.build(output: output, cache: cache)
        try #require(second.status == 0, "\(second)")
        #expect(second.stdout.contains("checksum layer kept from the previous image"), "\(second)")
        #expect(second.stdout.contains("tools restored from the cache"), "\(second)")
        #expect(!second.stdout.contains("warning:"), "\(second)")
        let sbomOf = { (stdout: String) in stdout.split(separator: "\n").first { $0.hasPrefix("Adding SBOM layer") } }
        #expect(sbomOf(first.stdout) != nil && sbomOf(first.stdout) == sbomOf(second.stdout), "\(first)\n\(second)")
        #expect(first.stdout.split(separator: "\n").last { $0.hasPrefix("Image ") }
                == second.stdout.split(separator: "\n").last { $0.hasPrefix("Image ") })
    }

    /// A buildpack that writes one SBOM file, `name`, declaring `formats`.
    static func buildpack(writing name: String, formats: [String]) -> String {
        Images.buildpack("sbom", sbomFormats: formats, build: """
            mkdir -p "$CNB_LAYERS_DIR/lib"
            printf '[types]\\nlaunch = true\\n' > "$CNB_LAYERS_DIR/lib.toml"
            echo '{}' > "$CNB_LAYERS_DIR/\(name)"
            printf '[[processes]]\\ntype = "web"\\ncommand = ["/bin/true"]\\ndefault = true\\n' > "$CNB_LAYERS_DIR/launch.toml"
            """)
    }

    @Test(arguments: [
        ("lib.sbom.spdx.json", ["application/vnd.cyclonedx+json"], "sbom-formats"),
        ("launch.sbom.xml", ["application/vnd.cyclonedx+json"], "cdx.json, spdx.json or syft.json"),
    ])
    func undeclaredOrUnknownSBOMsAreTheBuildpacksError(name: String, formats: [String], mentioning: String) throws {
        let app = Fixture.shared.makeDirectory("sbom-app")
        try "x".write(toFile: app + "/f", atomically: true, encoding: .utf8)
        let output = Images.newPath("sbom-bad")
        let built = Fixture.shared.stockade(["build", "--buildpack", Self.buildpack(writing: name, formats: formats),
                                             "--path", app, "--network", "none", "--output", output + ":app"], as: .suiteUser)
        #expect(built.status == 51, "\(built)")
        #expect(built.stderr.contains(name) && built.stderr.contains(mentioning), "\(built)")
        #expect(Images.manifestDigest(output) == nil)
    }

    @Test func aDeclaredLayerSBOMGoesWithItsLayer() throws {
        let app = Fixture.shared.makeDirectory("sbom-app")
        try "x".write(toFile: app + "/f", atomically: true, encoding: .utf8)
        let output = Images.newPath("sbom-good")
        let built = Fixture.shared.stockade(["build", "--buildpack",
                                             Self.buildpack(writing: "lib.sbom.spdx.json", formats: ["application/spdx+json"]),
                                             "--path", app, "--network", "none", "--output", output + ":app"], as: .suiteUser)
        try #require(built.status == 0, "\(built)")
        let names = Images.layerDigests(output).compactMap { Images.tarEntries(Images.blobPath(output, $0)) }.flatMap { $0 }
            .map(\.name)
        #expect(names.contains("layers/sbom/launch/test_sbom/lib/sbom.spdx.json"), "\(names)")
    }
}
