import Foundation
import StockadeTestSupport
import Testing

/// Layers from a run image nobody here made are hostile input to `stockade run`: no entry, link
/// or whiteout in them reaches outside the directory they are extracted into.
@Suite struct HostileLayerTests {
    /// A crafted image (see `Images.craftedLayout`) whose second layer is `entries` (name, kind,
    /// target or contents), listing /data and reading /data/sub/kept.
    static func layout(_ entries: [(String, String, String)]) -> String {
        try! Images.craftedLayout(entries.map { [$0.0, $0.1, $0.2] }, command: "ls /data; cat /data/sub/kept")
    }

    /// Runs the image with TMPDIR in a fresh directory holding a canary beside where the rootfs goes.
    func run(_ layout: String, as invoker: Invoker) -> (Outcome, canaryKept: Bool) {
        let tmp = Images.newPath("hostile-tmp")
        try! FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        chmod(tmp, 0o777)
        try! "canary".write(toFile: tmp + "/canary", atomically: true, encoding: .utf8)
        chmod(tmp + "/canary", 0o666)
        let ran = Fixture.run(["env", "TMPDIR=\(tmp)"] + invoker.prefix + [Fixture.shared.stockade, "run", layout + ":latest"])
        return (ran, FileManager.default.fileExists(atPath: tmp + "/canary"))
    }

    @Test(arguments: Invoker.all)
    func whiteoutsOfDotAndDotDotAreRefused(_ invoker: Invoker) {
        for name in [".wh...", ".wh..", "data/.wh...", "data/sub/.wh.."] {
            let (ran, kept) = run(Self.layout([(name, "file", "")]), as: invoker)
            #expect(ran.status == 65, "\(name): \(ran)")
            #expect(ran.stderr.contains("whiteout") && ran.stderr.split(separator: "\n").count == 1, "\(name): \(ran)")
            #expect(kept, "\(name) removed a file outside the image")
        }
    }

    @Test(arguments: Invoker.all)
    func entriesThroughLinksStayInsideTheImage(_ invoker: Invoker) {
        let host = Images.newPath("hostile-target")
        try! FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        chmod(host, 0o777)
        // A link to a host directory, then a file "through" it: the link resolves inside the
        // image, where that directory does not exist.
        let (through, _) = run(Self.layout([("data/out", "symlink", host), ("data/out/planted", "file", "planted")]),
                               as: invoker)
        #expect(through.status == 65 && through.stderr.contains("not a directory in the image"), "\(through)")
        #expect(!FileManager.default.fileExists(atPath: host + "/planted"), "\(through)")
        // A link that climbs up with .., then a file through it: .. stops at the image's root.
        let (up, _) = run(Self.layout([("data/up", "symlink", "../../../../../../../.."),
                                       ("data/up/\(host.dropFirst())/planted", "file", "planted")]), as: invoker)
        #expect(up.status == 0, "\(up)")
        #expect(!FileManager.default.fileExists(atPath: host + "/planted"), "\(up)")
        // A hard link climbing out with .. is refused.
        let (hard, _) = run(Self.layout([("data/hard", "hardlink", "../../../../etc/passwd")]), as: invoker)
        #expect(hard.status == 65 && hard.stderr.contains("points outside"), "\(hard)")
    }

    @Test func anOpaqueWhiteoutEmptiesOnlyItsDirectory() {
        let (ran, kept) = run(Self.layout([("data/sub/.wh..wh..opq", "file", "")]), as: .suiteUser)
        #expect(kept)
        #expect(ran.stdout == "sub\n", "\(ran)")  // /data/sub is there, empty: cat fails
        #expect(ran.status != 0)
    }
}
