import Foundation
import StockadeTestSupport
import Testing

/// Layers from a run image nobody here made are hostile input to `stockade run`: no entry, link
/// or whiteout in them reaches outside the directory they are extracted into.
@Suite struct HostileLayerTests {
    /// A crafted image (see `Images.craftedLayout`) whose second layer is `entries` (name, kind,
    /// target or contents), listing /data and reading /data/sub/kept.
    static func layout(_ entries: [(String, String, String)], command: String = "ls /data; cat /data/sub/kept") -> String {
        try! Images.craftedLayout(entries.map { [$0.0, $0.1, $0.2] }, command: command)
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
    func whiteoutsOfDotAndDotDotAreRefused(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        for name in [".wh...", ".wh..", "data/.wh...", "data/sub/.wh.."] {
            let (ran, kept) = run(Self.layout([(name, "file", "")]), as: invoker)
            #expect(ran.status == 65, "\(name): \(ran)")
            #expect(ran.stderr.contains("whiteout") && ran.stderr.split(separator: "\n").count == 1, "\(name): \(ran)")
            #expect(kept, "\(name) removed a file outside the image")
        }
    }

    @Test(arguments: Invoker.all)
    func entriesThroughLinksStayInsideTheImage(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        // Outside /tmp: the sandbox mounts its own /tmp over the image's, where a file the image
        // put under this path could not be seen.
        let base = "/var/tmp/stockade-hostile-" + UUID().uuidString.prefix(8)
        let host = base + "/target"
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        chmod(base, 0o777)
        chmod(host, 0o777)
        // A link to a host directory, then a file "through" it: the link resolves inside the
        // image, where that directory does not exist.
        let (through, _) = run(Self.layout([("data/out", "symlink", host), ("data/out/planted", "file", "planted")]),
                               as: invoker)
        #expect(through.status == 65 && through.stderr.contains("not a directory in the image"), "\(through)")
        #expect(!FileManager.default.fileExists(atPath: host + "/planted"), "\(through)")
        // A link that climbs up with as many `..` as a link can hold (a 4094-byte target), more
        // than the extraction directory's depth on any host, then a file through it: `..` stops
        // at the image's root, and the file lands there.
        let climb = Array(repeating: "..", count: 1365).joined(separator: "/")
        let (up, _) = run(Self.layout([("data/up", "symlink", climb), ("data/up/\(host.dropFirst())/planted", "file", "planted")],
                                      command: "cat \(host)/planted"), as: invoker)
        #expect(up.status == 0 && up.stdout == "planted", "the file is inside the image, under the host path: \(up)")
        #expect(!FileManager.default.fileExists(atPath: host + "/planted"), "\(up)")
        // A hard link climbing out with .. is refused.
        let (hard, _) = run(Self.layout([("data/hard", "hardlink", "../../../../etc/passwd")]), as: invoker)
        #expect(hard.status == 65 && hard.stderr.contains("points outside"), "\(hard)")
    }

    /// A setuid file, a setgid file and a setgid sticky directory: extracted without the set-id
    /// bits (the sticky bit and the rest of the mode stay).
    @Test(arguments: Invoker.all)
    func setIDBitsAreDroppedOnExtraction(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let layout = try Images.craftedLayout([["data/suid", "file", "#!/bin/sh\n", "4755"], ["data/sgid", "file", "#!/bin/sh\n", "2755"],
                                               ["data/both", "file", "#!/bin/sh\n", "6777"], ["data/dir", "dir", "", "3777"]],
                                              command: "ls -ld /data/suid /data/sgid /data/both /data/dir")
        // The control: the layer itself carries the bits.
        let crafted = try #require(Images.tarEntries(Images.blobPath(layout, Images.layerDigests(layout, tag: "latest")[1])))
        #expect(crafted.map(\.mode) == [0o4755, 0o2755, 0o6777, 0o3777], "\(crafted)")
        let (ran, _) = run(layout, as: invoker)
        #expect(ran.status == 0, "\(ran)")
        let modes = ran.lines.map { $0.split(separator: " ").first.map(String.init) ?? "" }
        #expect(modes == ["-rwxrwxrwx", "drwxrwxrwt", "-rwxr-xr-x", "-rwxr-xr-x"], "\(ran)")
    }

    @Test func anOpaqueWhiteoutEmptiesOnlyItsDirectory() {
        let (ran, kept) = run(Self.layout([("data/sub/.wh..wh..opq", "file", "")]), as: .suiteUser)
        #expect(kept)
        #expect(ran.stdout == "sub\n", "\(ran)")  // /data/sub is there, empty: cat fails
        #expect(ran.status != 0)
    }
}
