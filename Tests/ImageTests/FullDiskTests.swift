import Foundation
import StockadeTestSupport
import Testing

/// A disk that fills up in the middle of an export: the export fails with one line, and the
/// image the layout held before is still whole (its index entry and every blob).
@Suite struct FullDiskTests {
    /// A layers directory as a build leaves it, with one launch layer of `size` bytes.
    static func layers(size: Int) -> (layers: String, app: String) {
        let fixture = Fixture.shared
        let layers = fixture.makeDirectory("full-layers")
        let app = fixture.makeDirectory("full-app")
        let fm = FileManager.default
        try! fm.createDirectory(atPath: layers + "/config", withIntermediateDirectories: true)
        try! """
            buildpack-default-process-type = "web"
            [[buildpacks]]
            id = "t/bp"
            version = "1"
            api = "0.10"
            [[processes]]
            type = "web"
            command = ["/bin/true"]
            args = []
            direct = true
            buildpack-id = "t/bp"
            """.write(toFile: layers + "/config/metadata.toml", atomically: true, encoding: .utf8)
        try! fm.createDirectory(atPath: layers + "/t_bp/big", withIntermediateDirectories: true)
        try! "[types]\nlaunch = true\n".write(toFile: layers + "/t_bp/big.toml", atomically: true, encoding: .utf8)
        var bytes = [UInt8](repeating: 0, count: size)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 7) }
        fm.createFile(atPath: layers + "/t_bp/big/data", contents: Data(bytes))
        try! "echo hi\n".write(toFile: app + "/app.sh", atomically: true, encoding: .utf8)
        return (layers, app)
    }

    @Test(.enabled(if: Fixture.shared.isRoot, "mounting a small tmpfs needs root"))
    func aFullDiskLeavesThePreviousImageIntact() throws {
        let fixture = Fixture.shared
        let disk = fixture.makeDirectory("full-disk")
        #expect(Fixture.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", disk]).status == 0)
        defer { _ = Fixture.run(["umount", "-l", disk]) }
        let output = disk + "/images"

        let small = Self.layers(size: 1 << 20)
        let first = fixture.stockade(["export", "--layers", small.layers, "--app", small.app, "--output", output + ":app"],
                                     as: .suiteUser)
        #expect(first.status == 0, "\(first)")
        let indexBefore = try String(contentsOfFile: output + "/index.json", encoding: .utf8)

        // The first image (the launcher and 1 MiB) takes about half the disk; 24 MiB more cannot fit.
        // A budget beyond the filesystem (the default is half its free space): the disk runs out first.
        let big = Self.layers(size: 24 << 20)
        let second = fixture.stockade(["export", "--layers", big.layers, "--app", big.app, "--output", output + ":app",
                                       "--disk", "1G"], as: .suiteUser)
        #expect(second.status == 74, "\(second)")
        #expect(second.stderr.contains("No space left on device"), "\(second)")
        #expect(second.stderr.split(separator: "\n").count == 1, "\(second)")
        #expect(try String(contentsOfFile: output + "/index.json", encoding: .utf8) == indexBefore)
        let inspected = Fixture.run(["skopeo", "inspect", "oci:\(output):app"])
        #expect(inspected.status == 0, "\(inspected)")
        let unpacked = Fixture.run(["umoci", "unpack", "--image", output + ":app", disk + "/bundle"])
        // umoci needs room too; what matters is that every blob of the old image still reads.
        #expect(unpacked.status == 0 || unpacked.stderr.contains("no space"), "\(unpacked)")
    }
}
