import Foundation
import StockadeTestSupport
import Testing

/// Wrong inputs: one line on stderr that says what is wrong, the documented exit code, and
/// nothing that was there before lost.
@Suite struct BadImageInputTests {
    let fx = Fixture.shared

    func oneLine(_ outcome: Outcome) -> String? {
        let lines = outcome.stderr.split(separator: "\n")
        return lines.count == 1 ? String(lines[0]) : nil
    }

    @Test func aRunImageDirectoryThatDoesNotExist() {
        let missing = fx.makeDirectory("missing") + "/no-such-run-image"
        let output = Images.newPath("missing-run")
        let r = Images.build(output: output, runImage: missing)
        #expect(r.status == 66, "\(r)")
        #expect(oneLine(r)?.contains(missing) == true, "\(r)")
        #expect(!FileManager.default.fileExists(atPath: output + "/index.json"))
    }

    @Test func aTagThatDoesNotExist() throws {
        let output = Images.newPath("missing-tag")
        let r = Images.build(output: output, runImage: Images.runImageOne + ":nosuch")
        #expect(r.status == 66, "\(r)")
        let line = oneLine(r) ?? ""
        #expect(line.contains("nosuch") && line.contains("latest"), "\(r)")
        #expect(Images.manifestDigest(output) == nil)

        let run = fx.stockade(["run", try Images.sharedImage() + ":nosuch"], as: .suiteUser)
        #expect(run.status == 66, "\(run)")
        #expect(oneLine(run).map { $0.contains("nosuch") && $0.contains("app") } == true, "\(run)")
        let rebase = fx.stockade(["rebase", try Images.sharedImage() + ":nosuch", "--run-image", Images.runImageTwo],
                                 as: .suiteUser)
        #expect(rebase.status == 66, "\(rebase)")
        #expect(oneLine(rebase) != nil, "\(rebase)")
    }

    @Test func aRunImageWhoseLayerBytesWereAltered() throws {
        let damaged = Images.copy(Images.runImageOne)
        let layer = try #require(Images.layerDigests(damaged, tag: "latest").first)
        // Inside busybox's contents: the tar stays well-formed, only the digest can tell.
        try Images.flipBit(Images.blobPath(damaged, layer), at: 1 << 20)
        let output = Images.newPath("damaged-run")
        let r = Images.build(output: output, runImage: damaged)
        // A broken input keeps its own code (65), not the export's (62).
        #expect(r.status == 65, "\(r)")
        #expect(oneLine(r).map { $0.contains(layer) && $0.contains("does not match its digest") } == true, "\(r)")
        #expect(Images.manifestDigest(output) == nil)
    }

    @Test func runningAnImageWhoseLayerBytesWereAltered() throws {
        let image = Images.copy(try Images.sharedImage())
        let layer = try #require(Images.layerDigests(image).first)
        try Images.flipBit(Images.blobPath(image, layer), at: 1 << 20)
        let r = fx.stockade(["run", image + ":app"], as: .suiteUser)
        #expect(r.status == 65, "\(r)")
        #expect(r.stdout.isEmpty, "\(r)")
        #expect(oneLine(r).map { $0.contains(layer) && $0.contains("does not match its digest") } == true, "\(r)")
    }

    @Test func aRunImageDirectoryThatIsNotALayoutIsMalformed() throws {
        let empty = Fixture.shared.makeDirectory("empty-run")
        let output = Images.newPath("empty-run-out")
        let r = Fixture.shared.stockade(["build", "--builder", Fixture.shared.examples + "/builder.toml",
                                         "--path", Fixture.shared.examples + "/apps/shell-app", "--network", "none",
                                         "--run-image", empty, "--output", output + ":app"], as: .suiteUser)
        #expect(r.status == 65, "\(r)")
        #expect(oneLine(r)?.contains("is not an OCI image layout") == true, "\(r)")
    }

    @Test func aGarbageIndexIsMalformed() throws {
        let image = Images.copy(try Images.sharedImage())
        try Data("{nope".utf8).write(to: URL(fileURLWithPath: image + "/index.json"))
        let r = fx.stockade(["run", image + ":app"], as: .suiteUser)
        #expect(r.status == 65, "\(r)")
        #expect(oneLine(r)?.contains("index.json") == true, "\(r)")
    }

    @Test func anOutputThatIsNotALayoutIsLeftAlone() throws {
        let output = fx.makeDirectory("not-a-layout", mode: 0o777)
        try "precious\n".write(toFile: output + "/notes.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: output + "/blobs", withIntermediateDirectories: true)
        let before = Fixture.run(["ls", "-lAR", "--time-style=full-iso", output]).stdout

        let r = Images.build(output: output)
        #expect(r.status == 73, "\(r)")
        #expect(oneLine(r)?.contains(output) == true, "\(r)")
        #expect(Fixture.run(["ls", "-lAR", "--time-style=full-iso", output]).stdout == before)
        #expect(Images.text(output + "/notes.txt") == "precious\n")

        let exported = try HandMadeLayers().export(to: output + ":x")
        #expect(exported.status == 73, "\(exported)")
        #expect(Fixture.run(["ls", "-lAR", "--time-style=full-iso", output]).stdout == before)
    }

    /// A buildpack that passes detection and runs `script` as its build.
    /// Builds the shell app with the shell buildpack and `extra` into a copy of the shared image.
    func buildOverSharedImage(with extra: String) throws -> (image: String, index: Data, blobs: Set<String>, outcome: Outcome) {
        let image = Images.copy(try Images.sharedImage())
        let index = try Data(contentsOf: URL(fileURLWithPath: image + "/index.json"))
        let blobs = Images.blobs(image)
        let r = fx.stockade(["build", "--buildpack", Images.examples + "/buildpacks/shell", "--buildpack", extra,
                             "--path", Images.shellApp, "--network", "none", "--output", image + ":app",
                             "--run-image", Images.runImageTwo], as: .suiteUser)
        return (image, index, blobs, r)
    }

    func expectStillWhole(_ image: String, index: Data, blobs: Set<String>) throws {
        #expect(try Data(contentsOf: URL(fileURLWithPath: image + "/index.json")) == index)
        #expect(Images.blobs(image).isSuperset(of: blobs))
        #expect(Fixture.run(["skopeo", "inspect", "oci:\(image):app"]).status == 0)
        let web = fx.stockade(["run", image + ":app"], as: .suiteUser)
        #expect(web.status == 0 && web.stdout.hasPrefix(Images.hello), "\(web)")
    }

    @Test func aFailedExportKeepsThePreviousImage() throws {
        let fifo = Images.buildpack("fifo", build: """
            mkdir -p "$CNB_LAYERS_DIR/pipe"
            mkfifo "$CNB_LAYERS_DIR/pipe/fifo"
            printf '[types]\\nlaunch = true\\n' > "$CNB_LAYERS_DIR/pipe.toml"
            """)
        let (image, index, blobs, r) = try buildOverSharedImage(with: fifo)
        #expect(r.status == 62, "\(r)")
        #expect(oneLine(r).map { $0.contains("pipe/fifo") && $0.contains("FIFO") } == true, "\(r)")
        #expect(!r.stdout.contains("Image \(image)"), "\(r)")
        try expectStillWhole(image, index: index, blobs: blobs)
    }

    @Test func aFailedBuildKeepsThePreviousImage() throws {
        let failing = Images.buildpack("fails", build: "echo failing on purpose >&2\nexit 3\n")
        let (image, index, blobs, r) = try buildOverSharedImage(with: failing)
        #expect(r.status == 51, "\(r)")
        #expect(r.stderr.contains("test/fails"), "\(r)")
        #expect(!r.stdout.contains("===> EXPORTING"), "\(r)")
        try expectStillWhole(image, index: index, blobs: blobs)
    }
}
