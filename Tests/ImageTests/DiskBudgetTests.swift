import Foundation
import StockadeTestSupport
import Testing

/// `--disk`: what a build, an export or a run writes to the host stays within the budget, and
/// going beyond it stops the work with one line naming the buildpack and the layer (or the image
/// and the layer). Sizes are asserted in allocated blocks, never in time.
@Suite struct DiskBudgetTests {
    let fx = Fixture.shared

    /// Bytes allocated beneath `path` (st_blocks, as du counts them).
    static func allocated(_ path: String) -> Int {
        let du = Fixture.run(["du", "-s", "-B1", path])
        return Int(du.stdout.split(separator: "\t").first ?? "") ?? -1
    }

    static let app: String = {
        let dir = Fixture.shared.makeDirectory("disk-app")
        try! "x\n".write(toFile: dir + "/f", atomically: true, encoding: .utf8)
        return dir
    }()

    /// `stockade build` of `buildpack` alone into a fresh layout, keeping the layers.
    func build(_ buildpack: String, disk: String?, as invoker: Invoker, app: String = Self.app)
        -> (outcome: Outcome, output: String, layers: String) {
        let output = Images.newPath("disk-out"), layers = Images.newPath("disk-layers")
        let outcome = fx.stockade(["build", "--buildpack", buildpack, "--path", app, "--network", "none",
                                   "--output", output + ":app", "--layers", layers] + (disk.map { ["--disk", $0] } ?? []),
                                  as: invoker)
        return (outcome, output, layers)
    }

    static let sparse = Images.buildpack("sparse", build: """
        mkdir -p "$CNB_LAYERS_DIR/holes"
        printf '[types]\\nlaunch = true\\n' > "$CNB_LAYERS_DIR/holes.toml"
        truncate -s 1T "$CNB_LAYERS_DIR/holes/file"
        """)

    /// The attack: 1 TiB of holes, which the exporter used to read as data until the disk
    /// was full. The file-size limit refuses the truncate itself.
    @Test(arguments: Invoker.all)
    func aTerabyteOfHolesStopsTheBuild(as invoker: Invoker) throws {
        let (built, output, layers) = build(Self.sparse, disk: "64M", as: invoker)
        #expect(built.status == 52, "\(built)")
        #expect(built.stderr.contains("stockade: error: test/sparse@0.0.1 exceeded the disk budget in layer 'holes': "), "\(built)")
        #expect(built.stderr.split(separator: "\n").count == 1, "\(built)")
        #expect(!built.stdout.contains("===> EXPORTING"), "\(built)")
        #expect(Self.allocated(layers) < 1 << 20 && Self.allocated(output) < 1 << 20)
        let file = try FileManager.default.attributesOfItem(atPath: layers + "/test_sparse/holes/file")
        #expect((file[.size] as? Int ?? -1) < 64 << 20)
    }

    static let dense = Images.buildpack("dense", build: """
        mkdir -p "$CNB_LAYERS_DIR/blob"
        printf '[types]\\nlaunch = true\\n' > "$CNB_LAYERS_DIR/blob.toml"
        dd if=/dev/zero of="$CNB_LAYERS_DIR/blob/zeros" bs=1M count=24 2>/dev/null
        """)

    @Test(arguments: Invoker.all)
    func oneFileBeyondTheBudgetStopsTheBuild(as invoker: Invoker) throws {
        let (built, output, layers) = build(Self.dense, disk: "16M", as: invoker)
        #expect(built.status == 52, "\(built)")
        #expect(built.stderr.contains("stockade: error: test/dense@0.0.1 exceeded the disk budget in layer 'blob': "), "\(built)")
        #expect(Self.allocated(layers) < 17 << 20 && Self.allocated(output) < 1 << 20, "\(Self.allocated(layers))")
    }

    /// The control: with room for it, the same buildpack builds, and its layer is in the image.
    @Test func theSameBuildFitsALargerBudget() throws {
        let (built, output, _) = build(Self.dense, disk: "128M", as: .suiteUser)
        #expect(built.status == 0, "\(built)")
        #expect(built.stdout.contains("Adding layer 'test/dense:blob'"), "\(built)")
        #expect(Self.allocated(output) > 24 << 20)
    }

    /// Many files, each below the file-size limit: the watcher stops the buildpack while it
    /// writes (the loop never gets to its end), not only after.
    static let many = Images.buildpack("many", build: """
        mkdir -p "$CNB_LAYERS_DIR/pile"
        printf '[types]\\nlaunch = true\\n' > "$CNB_LAYERS_DIR/pile.toml"
        i=0
        while [ $i -lt 64 ]; do
            dd if=/dev/zero of="$CNB_LAYERS_DIR/pile/f$i" bs=1M count=1 2>/dev/null
            i=$((i + 1))
            sleep 0.05
        done
        echo "all 64 written"
        """)

    @Test(arguments: Invoker.all)
    func manySmallFilesAreStoppedWhileTheyAreWritten(as invoker: Invoker) throws {
        let (built, _, layers) = build(Self.many, disk: "16M", as: invoker)
        #expect(built.status == 52, "\(built)")
        #expect(built.stderr.contains("stockade: error: test/many@0.0.1 exceeded the disk budget in layer 'pile': "), "\(built)")
        #expect(built.stderr.contains("it was stopped"), "\(built)")
        #expect(!built.stdout.contains("all 64 written"), "\(built)")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: layers + "/test_many/pile")) ?? []
        #expect(files.count < 64, "\(files.count)")
    }

    /// Two sparse files that each fit the file-size limit but not together: the export refuses the
    /// second before reading it, and never writes its holes out.
    static let twoSparse = Images.buildpack("two", build: """
        for layer in a b; do
            mkdir -p "$CNB_LAYERS_DIR/$layer"
            printf '[types]\\nlaunch = true\\n' > "$CNB_LAYERS_DIR/$layer.toml"
            truncate -s 40M "$CNB_LAYERS_DIR/$layer/holes"
        done
        """)

    @Test(arguments: Invoker.all)
    func theExportRefusesAFileBeyondWhatIsLeft(as invoker: Invoker) throws {
        let (built, output, _) = build(Self.twoSparse, disk: "64M", as: invoker)
        #expect(built.status == 63, "\(built)")
        #expect(built.stdout.contains("Adding layer 'test/two:a'"), "\(built)")
        #expect(built.stderr.contains("stockade: error: export: layer 'test/two:b': "), "\(built)")
        #expect(built.stderr.contains("needs 40M but only"), "\(built)")
        #expect(Self.allocated(output) < 64 << 20 && Self.allocated(output) > 40 << 20)
    }

    @Test(arguments: Invoker.all)
    func anAppBeyondTheBudgetIsNotCopied(as invoker: Invoker) throws {
        let app = fx.makeDirectory("disk-big-app")
        #expect(FileManager.default.createFile(atPath: app + "/big", contents: nil, attributes: [.posixPermissions: 0o644]))
        #expect(truncate(app + "/big", 32 << 20) == 0)
        let (built, _, layers) = build(Self.dense, disk: "16M", as: invoker, app: app)
        #expect(built.status == 52, "\(built)")
        #expect(built.stderr.contains("stockade: error: cannot copy the app for the build: the app's copy of \(app)/big needs 32M"),
                "\(built)")
        #expect(!built.stdout.contains("===> BUILDING"), "\(built)")
        #expect(Self.allocated(layers) < 1 << 20)
    }

    /// The copies Stockade makes of a buildpack's SBOM are charged too.
    @Test func sbomCopiesBeyondTheBudgetAreRefused() throws {
        let buildpack = Images.buildpack("sbom", sbomFormats: ["application/vnd.cyclonedx+json"], build: """
            mkdir -p "$CNB_LAYERS_DIR/data"
            printf '[types]\\nlaunch = true\\n' > "$CNB_LAYERS_DIR/data.toml"
            { printf '{"pad":"'; head -c 10485760 /dev/zero | tr '\\0' a; printf '"}'; } > "$CNB_LAYERS_DIR/data.sbom.cdx.json"
            """)
        let (built, _, layers) = build(buildpack, disk: "16M", as: .suiteUser)
        #expect(built.status == 51, "\(built)")
        #expect(built.stderr.contains("data.sbom.cdx.json"), "\(built)")
        #expect(built.stderr.contains("its SBOM's copies needs "), "\(built)")
        #expect(Self.allocated(layers) < 16 << 20)
        let (fits, _, _) = build(buildpack, disk: "64M", as: .suiteUser)
        #expect(fits.status == 0, "\(fits)")
    }

    /// bin/detect writes only its plan, which is refused beyond 10 MiB anyway: the file-size limit
    /// stops it one byte past that, not at 64 MiB.
    @Test(arguments: Invoker.all)
    func aDetectCannotWriteAPlanBeyondWhatIsRead(as invoker: Invoker) throws {
        let buildpack = Images.buildpack("bigplan", build: "exit 0\n")
        try "#!/bin/sh\ndd if=/dev/zero of=\"$CNB_BUILD_PLAN_PATH\" bs=1M count=64 2>/dev/null\nexit 0\n"
            .write(toFile: buildpack + "/bin/detect", atomically: true, encoding: .utf8)
        chmod(buildpack + "/bin/detect", 0o755)
        let detected = fx.stockade(["detect", "--buildpack", buildpack, "--path", Self.app], as: invoker)
        #expect(detected.status == 21, "\(detected)")
        #expect(detected.stdout.contains("plan.toml has 10485761 bytes, more than the limit of 10485760"), "\(detected)")
    }

    @Test func rebaseRefusesARunImageBeyondTheBudget() throws {
        let image = Images.copy(try Images.sharedImage())
        let before = Images.manifestDigest(image)
        let refused = fx.stockade(["rebase", image + ":app", "--run-image", Images.runImageTwo, "--disk", "512K"], as: .suiteUser)
        #expect(refused.status == 79, "\(refused)")
        #expect(refused.stderr.hasPrefix("stockade: error: rebase: \(Images.runImageTwo): blob sha256:"), "\(refused)")
        #expect(refused.stderr.contains("copied into \(image), needs "), "\(refused)")
        #expect(Images.manifestDigest(image) == before)
        let rebased = fx.stockade(["rebase", image + ":app", "--run-image", Images.runImageTwo, "--disk", "64M"], as: .suiteUser)
        #expect(rebased.status == 0 && Images.manifestDigest(image) != before, "\(rebased)")
    }

    @Test(arguments: Invoker.all)
    func runRefusesAnImageBeyondTheBudget(as invoker: Invoker) throws {
        let image = try Images.sharedImage() + ":app"
        let tmp = fx.makeDirectory("disk-run-tmp", mode: 0o777)
        let refused = Fixture.run(["env", "TMPDIR=\(tmp)"] + invoker.prefix + [fx.stockade, "run", image, "--disk", "512K"])
        #expect(refused.status == 79, "\(refused)")
        #expect(refused.stderr.hasPrefix("stockade: error: \(try Images.sharedImage()): layer sha256:"), "\(refused)")
        #expect(refused.stderr.contains("of the disk budget (--disk 512K) is left"), "\(refused)")
        #expect(Self.allocated(tmp) < 1 << 20)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: tmp)) == [])
        let ran = Fixture.run(["env", "TMPDIR=\(tmp)"] + invoker.prefix + [fx.stockade, "run", image, "--disk", "64M"])
        #expect(ran.status == 0 && ran.stdout.hasPrefix(Images.hello), "\(ran)")
    }
}
