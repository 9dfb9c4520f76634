import Foundation
import StockadeTestSupport
import Testing

/// A second build reuses what did not change: the launch layer from the previous image, the
/// cache layer from the cache. A damaged cache is a warning and a rebuild, never a failure or
/// a wrong layer.
@Suite struct CacheAndReuseTests {
    let fx = Fixture.shared

    /// A first build into a fresh output with a fresh cache.
    func firstBuild() throws -> (output: String, cache: String) {
        let output = Images.newPath("reuse-out"), cache = Images.newPath("reuse-cache")
        let first = Images.build(output: output, cache: cache)
        try #require(first.status == 0, "\(first)")
        #expect(first.stdout.contains("Adding layer 'examples/shell:checksum'"), "\(first)")
        #expect(first.stdout.contains("Adding layer 'examples/shell:tools'"), "\(first)")
        #expect(first.stdout.contains("[examples/shell] shell: tools made"), "\(first)")
        #expect(first.stdout.contains("Cache saved to \(cache) (1 layer and their SBOMs)"), "\(first)")
        return (output, cache)
    }

    /// The cache's tagged image, read by hand: its layer blobs.
    func cacheLayers(_ cache: String) -> [String] { Images.layerDigests(cache, tag: "cache") }

    @Test func aSecondBuildReusesAndRestoresItsLayers() throws {
        let (output, cache) = try firstBuild()
        let layers = Images.layerDigests(output)
        let manifest = Images.manifestDigest(output)

        let second = Images.build(output: output, cache: cache)
        try #require(second.status == 0, "\(second)")
        let out = second.stdout
        #expect(out.contains("Restored layer 'examples/shell:tools' from the cache ("), "\(second)")
        #expect(out.contains("[examples/shell] shell: app.sh unchanged; checksum layer kept from the previous image"), "\(second)")
        #expect(out.contains("[examples/shell] shell: tools restored from the cache"), "\(second)")
        #expect(out.contains("Reusing layer 'examples/shell:checksum' from the previous image ("), "\(second)")
        #expect(out.contains("Reusing layer 'examples/shell:tools' ("), "\(second)")
        #expect(!out.contains("Adding layer"), "\(second)")
        #expect(!second.stderr.contains("warning:"), "\(second)")
        #expect(Images.layerDigests(output) == layers)
        #expect(Images.manifestDigest(output) == manifest)

        // The reused image still runs, the restored tools with it.
        let web = fx.stockade(["run", output + ":app"], as: .suiteUser)
        #expect(web.status == 0 && web.stdout.hasPrefix(Images.hello), "\(web)")
        let shout = fx.stockade(["run", output + ":app", "--process", "shout", "--", "again"], as: .suiteUser)
        #expect(shout.status == 0 && shout.stdout == "AGAIN\n", "\(shout)")
    }

    @Test func theLaunchLayerIsKeptFromAnExplicitPreviousImage() throws {
        // A new output, the shared image named as the previous one.
        let output = Images.newPath("previous")
        let built = Images.build(output: output, extra: ["--previous-image", try Images.sharedImage() + ":app"])
        try #require(built.status == 0, "\(built)")
        #expect(built.stdout.contains("Reusing layer 'examples/shell:checksum' from the previous image ("), "\(built)")
        #expect(built.stdout.contains("Adding layer 'examples/shell:tools'"), "\(built)")
        #expect(Images.layerDigests(output) == Images.layerDigests(try Images.sharedImage()))
        let web = fx.stockade(["run", output + ":app"], as: .suiteUser)
        #expect(web.status == 0 && web.stdout.hasPrefix(Images.hello) && !web.stdout.contains("unset"), "\(web)")
    }

    /// Damage: a layer blob of the cache holding `bytes` instead of the tar.
    @Test(arguments: ["garbage", "another tar"])
    func aDamagedCacheLayerIsRebuilt(_ damage: String) throws {
        let (first, cache) = try firstBuild()
        let layer = try #require(cacheLayers(cache).first)
        let blob = Images.blobPath(cache, layer)
        if damage == "garbage" {
            try Data("not a tar at all".utf8).write(to: URL(fileURLWithPath: blob))
        } else {
            // A well-formed tar of a tools layer whose shout would print EVIL.
            let staging = fx.makeDirectory("evil")
            try FileManager.default.createDirectory(atPath: staging + "/layers/examples_shell/tools/bin",
                                                    withIntermediateDirectories: true)
            try "#!/bin/sh\necho EVIL\n".write(toFile: staging + "/layers/examples_shell/tools/bin/shout",
                                              atomically: true, encoding: .utf8)
            chmod(staging + "/layers/examples_shell/tools/bin/shout", 0o755)
            let tarred = Fixture.run(["tar", "-C", staging, "-cf", blob, "layers"])
            try #require(tarred.status == 0, "\(tarred)")
        }
        #expect(Images.sha256(blob) != layer)

        let output = Images.newPath("after-damage")
        let second = Images.build(output: output, cache: cache)
        try #require(second.status == 0, "\(second)")
        let warnings = (second.stdout + second.stderr).split(separator: "\n").filter { $0.hasPrefix("warning:") }
        #expect(warnings.count == 1 && warnings[0].contains("examples/shell:tools"), "\(second)")
        #expect(second.stdout.contains("[examples/shell] shell: tools made"), "\(second)")
        #expect(!second.stdout.contains("Restored layer"), "\(second)")
        #expect(second.stdout.contains("Cache saved to \(cache) (1 layer and their SBOMs)"), "\(second)")
        // Rebuilt, the layer is the same as ever, and what the cache holds is whole again.
        #expect(Images.layerDigests(output) == Images.layerDigests(first))
        let saved = cacheLayers(cache)
        #expect(saved.count == 2)  // the tools layer and the SBOMs of cache layers
        for digest in saved { #expect(Images.sha256(Images.blobPath(cache, digest)) == digest) }
        let shout = fx.stockade(["run", output + ":app", "--process", "shout", "--", "ok"], as: .suiteUser)
        #expect(shout.status == 0 && shout.stdout == "OK\n", "\(shout)")

        // A third build restores from the repaired cache, without a warning.
        let third = Images.build(output: Images.newPath("after-repair"), cache: cache)
        #expect(third.status == 0, "\(third)")
        #expect(third.stdout.contains("Restored layer 'examples/shell:tools' from the cache ("), "\(third)")
        #expect(third.stdout.contains("[examples/shell] shell: tools restored from the cache"), "\(third)")
        #expect(!(third.stdout + third.stderr).contains("warning:"), "\(third)")
    }

    @Test func aCacheWithAGarbageIndexIsReplaced() throws {
        let (first, cache) = try firstBuild()
        try Data("garbage{".utf8).write(to: URL(fileURLWithPath: cache + "/index.json"))
        let output = Images.newPath("garbage-index")
        let second = Images.build(output: output, cache: cache)
        try #require(second.status == 0, "\(second)")
        #expect((second.stdout + second.stderr).split(separator: "\n").contains { $0.hasPrefix("warning:") }, "\(second)")
        #expect(second.stdout.contains("[examples/shell] shell: tools made"), "\(second)")
        #expect(Images.layerDigests(output) == Images.layerDigests(first))
        // The cache is an OCI layout again that another tool reads.
        let inspected = Fixture.run(["skopeo", "inspect", "oci:\(cache):cache"])
        #expect(inspected.status == 0, "\(inspected)")
        let third = Images.build(output: Images.newPath("garbage-after"), cache: cache)
        #expect(third.status == 0, "\(third)")
        #expect(third.stdout.contains("Restored layer 'examples/shell:tools' from the cache ("), "\(third)")
    }
}
