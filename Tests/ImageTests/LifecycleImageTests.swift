import Foundation
import StockadeTestSupport
import Testing

/// `make lifecycle-image`'s script: an OCI image whose one layer is /cnb/lifecycle/ as kpack's
/// ClusterLifecycle expects it, read back by tools nobody here wrote (skopeo, umoci), and its
/// phases answering from the unpacked tree.
@Suite struct LifecycleImageTests {
    let fx = Fixture.shared

    @Test func lifecycleImageHoldsStockadeAndItsLabels() throws {
        guard fx.isRoot else { try skip("umoci writes the layer's owners as the invoking user's: needs root") }
        let layout = Images.newPath("lifecycle-image")
        let bin = (fx.stockade as NSString).deletingLastPathComponent
        let made = Fixture.run(["bash", fx.repo + "/scripts/lifecycle-image.sh", layout, "v1", bin])
        try #require(made.status == 0, "\(made)")
        let config = Fixture.run(["skopeo", "inspect", "--config", "oci:\(layout):v1"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(config.stdout.utf8)) as? [String: Any], "\(config)")
        let labels = (json["config"] as? [String: Any])?["Labels"] as? [String: String] ?? [:]
        #expect(labels["io.buildpacks.lifecycle.version"] == "0.1.0")
        let apis = try #require(labels["io.buildpacks.lifecycle.apis"].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any])
        #expect((apis["platform"] as? [String: Any])?["supported"] as? [String] == (7...15).map { "0.\($0)" }, "\(apis)")
        #expect((apis["buildpack"] as? [String: Any])?["supported"] as? [String] == (7...12).map { "0.\($0)" }, "\(apis)")
        #expect(((json["rootfs"] as? [String: Any])?["diff_ids"] as? [Any])?.count == 1, "one layer: \(json)")

        let root = fx.makeDirectory("lifecycle-rootfs") + "/rootfs"
        let unpacked = Fixture.run(["umoci", "raw", "unpack", "--rootless", "--image", "\(layout):v1", root])
        try #require(unpacked.status == 0, "\(unpacked)")
        let lifecycle = root + "/cnb/lifecycle"
        for phase in ["analyzer", "detector", "restorer", "builder", "exporter", "creator", "rebaser"] {
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: lifecycle + "/" + phase)) == "lifecycle", "\(phase)")
        }
        #expect(Fixture.run(["cmp", lifecycle + "/lifecycle", fx.stockade]).status == 0)
        #expect(Fixture.run(["cmp", lifecycle + "/launcher", fx.stockade + "-launcher"]).status == 0)
        let toml = try String(contentsOfFile: lifecycle + "/lifecycle.toml", encoding: .utf8)
        #expect(toml.contains("supported = [\"0.7\", \"0.8\", \"0.9\", \"0.10\", \"0.11\", \"0.12\", \"0.13\", \"0.14\", \"0.15\"]"), "\(toml)")
        #expect(toml.contains("version = \"0.1.0\""), "\(toml)")
        let version = Fixture.run(["-i", "CNB_PLATFORM_API=0.9", lifecycle + "/detector", "-version"])
        #expect(version.status == 0 && version.stdout.contains("Platform API 0.7-0.15"), "\(version)")
    }
}
