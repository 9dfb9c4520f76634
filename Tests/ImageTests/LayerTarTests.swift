import Foundation
import OCI
import StockadeTestSupport
import Testing

/// The tars Stockade writes, read back by Python's tarfile and GNU tar: names of any length,
/// links that stay links, fixed owners and times, and special files refused.
@Suite struct LayerTarTests {
    let fx = Fixture.shared

    /// A component longer than ustar's 100-byte name field, in a path longer than its 255 bytes.
    static let longName = String(repeating: "n", count: 150)
    static let longDirectory = String(repeating: "d", count: 120)

    /// A tree with a long path, a symlink out of it, a hard link pair and a long link target.
    func makeTree(_ root: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/\(Self.longDirectory)", withIntermediateDirectories: true)
        try "deep\n".write(toFile: root + "/\(Self.longDirectory)/\(Self.longName)", atomically: true, encoding: .utf8)
        try fm.createSymbolicLink(atPath: root + "/shadow", withDestinationPath: "/etc/shadow")
        try fm.createSymbolicLink(atPath: root + "/far", withDestinationPath: "/" + String(repeating: "t", count: 140) + "/x")
        try "linked\n".write(toFile: root + "/first", atomically: true, encoding: .utf8)
        try fm.linkItem(atPath: root + "/first", toPath: root + "/second")
    }

    @Test func layerWriterOutputReadsBackWithOtherTools() throws {
        let tree = fx.makeDirectory("tree")
        try makeTree(tree)
        let layout = try ImageLayout.openOrCreate(Images.newPath("writer"))
        let writer = try LayerWriter(layout: layout)
        let owner = EntryOwner(uid: 1000, gid: 1000)
        try writer.addTree(tree, as: "layers/t", owner: owner)
        try writer.addFile("layers/t.toml", contents: Array("[types]\n".utf8), owner: owner)
        let descriptor = try writer.finish()
        let blob = layout.path + "/" + descriptor.digest.blobPath

        // The blob is what its name says, and its size.
        #expect(Images.sha256(blob) == descriptor.digest.description)
        let size = (try? FileManager.default.attributesOfItem(atPath: blob)[.size] as? Int) ?? -1
        #expect(Int64(size) == descriptor.size)

        let entries = try #require(Images.tarEntries(blob))
        let byName = Dictionary(entries.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let deep = "layers/t/\(Self.longDirectory)/\(Self.longName)"
        #expect(byName[deep]?.type == "0" && byName[deep]?.size == 5, "\(entries.map(\.name))")
        #expect(byName["layers/t/shadow"]?.type == "2" && byName["layers/t/shadow"]?.linkname == "/etc/shadow")
        #expect(byName["layers/t/shadow"]?.size == 0)
        #expect(byName["layers/t/far"]?.linkname == "/" + String(repeating: "t", count: 140) + "/x")
        // One of the pair holds the bytes, the other is a hard link to it.
        #expect(byName["layers/t/first"]?.type == "0" && byName["layers/t/first"]?.size == 7)
        #expect(byName["layers/t/second"]?.type == "1" && byName["layers/t/second"]?.linkname == "layers/t/first")
        #expect(entries.allSatisfy { $0.uid == 1000 && $0.gid == 1000 && $0.uname.isEmpty && $0.gname.isEmpty },
                "\(entries)")
        #expect(entries.allSatisfy { $0.mtime == 315_532_801 }, "\(entries.map(\.mtime))")
        // The tree's entries in byte order of their names, then the file added after it.
        let walked = entries.map(\.name).dropLast()
        #expect(Array(walked) == walked.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }, "\(walked)")
        #expect(entries.last?.name == "layers/t.toml")

        // GNU tar reads it too, and extracts the long path and both links as they were.
        let out = fx.makeDirectory("untar")
        let untar = Fixture.run(["tar", "-xf", blob, "-C", out])
        #expect(untar.status == 0, "\(untar)")
        #expect(Images.text(out + "/\(deep)") == "deep\n")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: out + "/layers/t/shadow")) == "/etc/shadow")
        var first = stat(), second = stat()
        #expect(stat(out + "/layers/t/first", &first) == 0 && stat(out + "/layers/t/second", &second) == 0)
        #expect(first.st_ino == second.st_ino && first.st_nlink == 2)
    }

    @Test func theSameTreeGivesTheSameLayer() throws {
        let one = fx.makeDirectory("same-a"), two = fx.makeDirectory("same-b")
        try makeTree(one)
        try makeTree(two)
        _ = Fixture.run(["touch", "-h", "-d", "1999-09-09", two + "/first", two + "/shadow"])
        func digest(_ tree: String) throws -> Digest {
            let writer = try LayerWriter(layout: try ImageLayout.openOrCreate(Images.newPath("same")))
            try writer.addTree(tree, as: "layers/t", owner: EntryOwner(uid: 1000, gid: 1000))
            return try writer.finish().digest
        }
        #expect(try digest(one) == digest(two))
        try "changed\n".write(toFile: two + "/first", atomically: false, encoding: .utf8)
        #expect(try digest(one) != digest(two))
    }

    @Test func layerWriterRefusesAFIFO() throws {
        let tree = fx.makeDirectory("fifo-tree")
        try "x".write(toFile: tree + "/a", atomically: true, encoding: .utf8)
        #expect(mkfifo(tree + "/pipe", 0o644) == 0)
        let writer = try LayerWriter(layout: try ImageLayout.openOrCreate(Images.newPath("fifo-writer")))
        // A FIFO nobody writes: following it would hang here, not fail.
        let error = #expect(throws: OCIError.self) {
            try writer.addTree(tree, as: "layers/t", owner: .root)
        }
        #expect(error?.kind == .unsupportedContent)
        #expect(error?.message.contains(tree + "/pipe") == true && error?.message.contains("FIFO") == true,
                "\(error.map(\.message) ?? "")")
    }

    @Test func exportArchivesAHandMadeLayerAsTheStackUser() throws {
        let layers = try HandMadeLayers()
        try makeTree(layers.stuff)
        let output = Images.newPath("export-tar")
        let exported = layers.export(to: output + ":t", user: "1234:5678")
        try #require(exported.status == 0, "\(exported)")
        let (_, entries) = try #require(HandMadeLayers.stuffLayer(output, tag: "t"))
        let byName = Dictionary(entries.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let base = "layers/t_bp/stuff"
        #expect(byName["\(base)/\(Self.longDirectory)/\(Self.longName)"]?.size == 5, "\(entries.map(\.name))")
        #expect(byName["\(base)/shadow"]?.type == "2" && byName["\(base)/shadow"]?.linkname == "/etc/shadow")
        #expect(byName["\(base)/second"]?.type == "1" && byName["\(base)/second"]?.linkname == "\(base)/first")
        // What the buildpack wrote belongs to the stack user given; the time is the fixed one.
        let owned = entries.filter { $0.name.hasPrefix("layers/t_bp") }
        #expect(!owned.isEmpty && owned.allSatisfy { $0.uid == 1234 && $0.gid == 5678 }, "\(owned)")
        #expect(entries.allSatisfy { $0.mtime == 315_532_801 })
        // The app layer too.
        let app = Images.layerDigests(output, tag: "t").compactMap { Images.tarEntries(Images.blobPath(output, $0)) }
            .first { $0.contains { $0.name == "workspace/run.sh" } } ?? []
        #expect(!app.isEmpty && app.allSatisfy { $0.uid == 1234 && $0.gid == 5678 && $0.mtime == 315_532_801 }, "\(app)")
        // The image's config names the same user.
        #expect((Images.config(output, tag: "t")?["config"] as? [String: Any])?["User"] as? String == "1234:5678")
    }

    @Test func exportKeepsNonASCIINames() throws {
        let layers = try HandMadeLayers()
        let name = "grüße-日本-ü.txt"
        try "ü\n".write(toFile: layers.stuff + "/" + name, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: layers.stuff + "/link", withDestinationPath: "/opt/café")
        // A shell process, so that the run below can look at the names.
        let metadata = layers.layers + "/config/metadata.toml"
        try (Images.text(metadata)! + "\n[[processes]]\ntype = \"sh\"\ncommand = [\"/bin/sh\"]\nargs = []\ndirect = true\nbuildpack-id = \"t/bp\"\n")
            .write(toFile: metadata, atomically: true, encoding: .utf8)
        let output = Images.newPath("export-utf8")
        let exported = layers.export(to: output + ":u")
        // libarchive 3.6 dereferenced NULL here in the "C" locale until stockade set a UTF-8 one.
        #expect(exported.status == 0, "\(exported)")
        let entries = HandMadeLayers.stuffLayer(output, tag: "u")?.entries ?? []
        #expect(entries.contains { $0.name == "layers/t_bp/stuff/" + name && $0.size == 3 }, "\(entries.map(\.name))")
        #expect(entries.contains { $0.name == "layers/t_bp/stuff/link" && $0.linkname == "/opt/café" })
        // The names survive extraction too: the run image's ls and cat find them.
        // (busybox's ls would print the bytes as `?`; the shell's glob does not.)
        let script = "echo /layers/t_bp/stuff/*; cat /layers/t_bp/stuff/\(name); [ -L /layers/t_bp/stuff/link ] && echo link"
        let ran = Fixture.shared.stockade(["run", output + ":u", "--process", "sh", "--", "-c", script], as: .suiteUser)
        #expect(ran.status == 0, "\(ran)")
        #expect(ran.lines == ["/layers/t_bp/stuff/\(name) /layers/t_bp/stuff/link", "ü", "link"], "\(ran)")
    }

    @Test func exportRefusesAFIFOInALayer() throws {
        let layers = try HandMadeLayers()
        try "x".write(toFile: layers.stuff + "/a", atomically: true, encoding: .utf8)
        #expect(mkfifo(layers.stuff + "/pipe", 0o644) == 0)
        let output = Images.newPath("export-fifo")
        let exported = layers.export(to: output + ":f")
        #expect(exported.status == 62, "\(exported)")
        let lines = exported.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains(layers.stuff + "/pipe") && lines[0].contains("FIFO"), "\(exported)")
        #expect(Images.manifestDigest(output, tag: "f") == nil)
    }
}
