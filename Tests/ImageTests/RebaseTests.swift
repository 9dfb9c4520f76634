import Foundation
import StockadeTestSupport
import Testing

/// `stockade rebase`: the run image's layers swapped, the app's kept by digest; a run image of
/// another platform refused with the image left as it was.
@Suite struct RebaseTests {
    let fx = Fixture.shared

    @Test func rebaseSwapsTheRunImageAndKeepsTheAppLayers() throws {
        let image = Images.copy(try Images.sharedImage())
        let before = Images.layerDigests(image)
        let oldRun = Images.layerDigests(Images.runImageOne, tag: "latest")
        let newRun = Images.layerDigests(Images.runImageTwo, tag: "latest")
        try #require(oldRun.count == 1 && newRun.count == 1 && oldRun != newRun)
        #expect(before.first == oldRun.first)

        let rebased = fx.stockade(["rebase", image + ":app", "--run-image", Images.runImageTwo], as: .suiteUser)
        try #require(rebased.status == 0, "\(rebased)")
        let digest = try #require(Images.manifestDigest(image))
        #expect(rebased.stdout.contains("\(image):app \(digest)"), "\(rebased)")

        // skopeo's view: the new run layer first, every app layer as it was.
        let (inspected, info) = Images.skopeo(image)
        #expect(inspected.status == 0, "\(inspected)")
        let layers = info?["Layers"] as? [String] ?? []
        #expect(layers.first == newRun.first, "\(layers)")
        #expect(Array(layers.dropFirst()) == Array(before.dropFirst()), "\(layers) vs \(before)")
        let lifecycle = (info?["Labels"] as? [String: String])?["io.buildpacks.lifecycle.metadata"].flatMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let runImage = lifecycle?["runImage"] as? [String: Any]
        #expect(runImage?["topLayer"] as? String == newRun.first, "\(runImage ?? [:])")
        #expect(runImage?["reference"] as? String == Images.manifestDigest(Images.runImageTwo, tag: "latest"))

        let web = fx.stockade(["run", image + ":app"], as: .suiteUser)
        #expect(web.status == 0 && web.stdout.hasPrefix(Images.hello) && !web.stdout.contains("unset"), "\(web)")
    }

    @Test func aRebasedImageRunsOnTheNewRunImage() throws {
        // An image whose default process prints the run image's /etc/run-image.
        let layers = try HandMadeLayers()
        let output = Images.newPath("rebase-marker")
        let exported = layers.export(to: output + ":m")
        try #require(exported.status == 0, "\(exported)")
        let before = fx.stockade(["run", output + ":m"], as: .suiteUser)
        #expect(before.status == 0 && before.stdout == "one\n", "\(before)")

        let rebased = fx.stockade(["rebase", output + ":m", "--run-image", Images.runImageTwo + ":latest"], as: .suiteUser)
        try #require(rebased.status == 0, "\(rebased)")
        let after = fx.stockade(["run", output + ":m"], as: .suiteUser)
        #expect(after.status == 0 && after.stdout == "two\n", "\(after)")
    }

    @Test func aRunImageOfAnotherArchitectureIsRefused() throws {
        let foreign = Images.copy(Images.runImageTwo)
        let native = try #require(Images.config(foreign, tag: "latest")?["architecture"] as? String)
        let other = native == "s390x" ? "riscv64" : "s390x"
        try Images.setArchitecture(other, of: foreign)
        #expect(Images.config(foreign, tag: "latest")?["architecture"] as? String == other)
        // skopeo reads the crafted run image: the refusal is about the platform, not the layout.
        #expect(Fixture.run(["skopeo", "inspect", "oci:\(foreign):latest"]).status == 0)

        let image = Images.copy(try Images.sharedImage())
        let index = try Data(contentsOf: URL(fileURLWithPath: image + "/index.json"))
        let refused = fx.stockade(["rebase", image + ":app", "--run-image", foreign], as: .suiteUser)
        #expect(refused.status == 72, "\(refused)")
        let lines = refused.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains(other), "\(refused)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: image + "/index.json")) == index)
        #expect(Images.manifestDigest(image) == Images.manifestDigest(try Images.sharedImage()))
        let web = fx.stockade(["run", image + ":app"], as: .suiteUser)
        #expect(web.status == 0 && web.stdout.hasPrefix(Images.hello), "\(web)")

        // Building onto it is refused too: the launcher and the buildpacks' output are this machine's.
        let output = Images.newPath("foreign-build")
        let built = Images.build(output: output, runImage: foreign)
        #expect(built.status == 62 && built.stderr.contains(other), "\(built)")
        #expect(Images.manifestDigest(output) == nil)
    }
}
