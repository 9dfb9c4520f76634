import Foundation
import StockadeTestSupport
import Testing

/// The same inputs give the same image, byte for byte: wherever it is written, whatever the
/// app's timestamps, whoever builds it.
@Suite struct ReproducibleImageTests {
    let fx = Fixture.shared

    @Test func twoBuildsGiveTheSameManifestAndLayers() throws {
        let first = Images.newPath("repro-a"), second = Images.newPath("repro-b")
        let a = Images.build(output: first)
        let b = Images.build(output: second)
        try #require(a.status == 0 && b.status == 0, "\(a)\n\(b)")
        let digest = try #require(Images.manifestDigest(first))
        #expect(Images.manifestDigest(second) == digest)
        #expect(Images.layerDigests(first) == Images.layerDigests(second))
        // run image, checksum, tools, SBOM, app, launcher, config, process types
        #expect(Images.layerDigests(first).count == 8, "\(Images.layerDigests(first))")
        // The digest stockade prints is the one index.json names, and sha256sum agrees with the name.
        #expect(a.stdout.contains("Image \(first):app \(digest)\n"), "\(a)")
        #expect(Images.sha256(Images.blobPath(first, digest)) == digest)
        for layer in Images.layerDigests(second) {
            #expect(Images.sha256(Images.blobPath(second, layer)) == layer)
        }
    }

    @Test func aFreshCopyOfTheAppGivesTheSameImage() throws {
        // Another directory, other inodes, other timestamps: the same files.
        let app = Images.copy(Images.shellApp)
        let touched = Fixture.run(["find", app, "-exec", "touch", "-h", "-d", "2011-11-11 11:11:11", "{}", "+"])
        try #require(touched.status == 0, "\(touched)")
        let output = Images.newPath("repro-copy")
        let built = Images.build(output: output, app: app)
        try #require(built.status == 0, "\(built)")
        #expect(Images.manifestDigest(output) == Images.manifestDigest(try Images.sharedImage()))
        #expect(Images.layerDigests(output) == Images.layerDigests(try Images.sharedImage()))

        // And a change to the app does change the image: the comparison above can fail.
        try "#!/bin/sh\necho changed\n".write(toFile: app + "/app.sh", atomically: false, encoding: .utf8)
        let changed = Images.newPath("repro-changed")
        let rebuilt = Images.build(output: changed, app: app)
        try #require(rebuilt.status == 0, "\(rebuilt)")
        #expect(Images.manifestDigest(changed) != Images.manifestDigest(output))
        #expect(Images.layerDigests(changed).first == Images.layerDigests(output).first)
    }

    @Test(arguments: Invoker.all)
    func theSameImageWhoeverBuildsIt(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let output = Images.newPath("repro-\(invoker.rawValue)")
        let built = Images.build(output: output, as: invoker)
        try #require(built.status == 0, "\(built)")
        let shared = try Images.sharedImage()
        let mine = Images.layerDigests(output), theirs = Images.layerDigests(shared)
        try #require(mine.count == theirs.count, "\(mine) vs \(theirs)")
        guard invoker == .subordinateUser else {
            // Which host user ran the build does not show in the image.
            #expect(Images.manifestDigest(output) == Images.manifestDigest(shared))
            #expect(mine == theirs)
            return
        }
        // README: with a subordinate range the stack user's trees are opened to all before the
        // build and the export, and those modes show in the image. That is the one difference:
        // the same entries, owners, times and contents, modes only ever wider.
        for (a, b) in zip(mine, theirs) {
            let got = try #require(Images.tarEntries(Images.blobPath(output, a)))
            let want = try #require(Images.tarEntries(Images.blobPath(shared, b)))
            #expect(got.map(\.name) == want.map(\.name))
            for (g, w) in zip(got, want) {
                #expect(g.type == w.type && g.size == w.size && g.uid == w.uid && g.gid == w.gid && g.mtime == w.mtime
                        && g.linkname == w.linkname, "\(g) vs \(w)")
                #expect(g.mode & w.mode == w.mode, "\(g.name): \(String(g.mode, radix: 8)) vs \(String(w.mode, radix: 8))")
                // Never writable by others, though the tree on the host was (a+rw); sticky /tmp aside.
                #expect(g.type == "2" || g.mode & 0o1000 != 0 || g.mode & 0o002 == 0, "\(g.name): \(String(g.mode, radix: 8))")
            }
        }
    }
}
