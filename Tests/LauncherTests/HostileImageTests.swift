import Foundation
import StockadeTestSupport
import Testing

/// Everything under /layers was written by buildpacks: the launcher reads it confined and fails with one
/// line, never following a link out of a layer and never crashing.
@Suite struct HostileImageTests {
    static let secret = "s3cret-value"

    /// A layer entry that points out of the layer, at /workspace, where the secret is.
    enum Escape: String, CaseIterable, Sendable {
        case envFile, envDirectory, delimiter, execD, layer

        func plant(in image: LaunchImage) throws {
            switch self {
            case .envFile: try image.link("test_bp/tools/env.launch/LEAK", to: "/workspace/secret.txt")
            case .envDirectory: try image.link("test_bp/tools/env.launch", to: "/workspace/env")
            case .delimiter:
                try image.write("test_bp/tools/env/LEAK.append", "x")
                try image.link("test_bp/tools/env/LEAK.delim", to: "/workspace/secret.txt")
            case .execD: try image.link("test_bp/tools/exec.d/leak", to: "/workspace/leak.sh")
            case .layer: try image.link("test_bp/linked", to: "/workspace/layer")
            }
        }

        /// A link as a layer is not a layer (skipped); a link inside one is refused.
        var isRefused: Bool { self != .layer }
    }

    @Test(arguments: Escape.allCases)
    func linksOutOfALayerAreNeverFollowed(_ escape: Escape) throws {
        let image = try LaunchImage(metadata: buildpack() + process("web", ["/usr/bin/env"]))
        try image.write("secret.txt", Self.secret, under: image.app)
        try image.write("env/LEAK", Self.secret, under: image.app)
        try image.write("layer/env/LEAK", Self.secret, under: image.app)
        try image.write("leak.sh", "#!/bin/sh\necho 'LEAK = \"\(Self.secret)\"' >&3\n", executable: true, under: image.app)
        try image.write("test_bp/tools/env/SAFE", "yes")
        try escape.plant(in: image)

        let r = image.launch(["/cnb/process/web"])
        #expect(!r.stdout.contains(Self.secret) && !r.stderr.contains(Self.secret), "\(r)")
        if escape.isRefused {
            #expect(r.isOneLineLauncherError, "\(r)")
            #expect(r.stderr.contains("symbolic link"), "\(r)")
        } else {
            #expect(r.status == 0, "\(r)")
            #expect(r.environment["SAFE"] == "yes")
            #expect(r.environment["LEAK"] == nil)
        }
    }

    /// A broken `config/metadata.toml`, and the words the error must carry.
    enum BadMetadata: String, CaseIterable, Sendable {
        case syntax, missing, fifo, symlink, notUTF8, tooDeep, badType, wrongShape

        func plant(in image: LaunchImage) throws {
            let path = image.layers + "/config/metadata.toml"
            try FileManager.default.removeItem(atPath: path)
            switch self {
            case .syntax: try "[[processes]\ntype = \"web\"\n".write(toFile: path, atomically: false, encoding: .utf8)
            case .missing: break
            case .fifo: #expect(mkfifo(path, 0o644) == 0)
            case .symlink: try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/workspace/metadata.toml")
            case .notUTF8: try Data([0x78, 0x20, 0x3D, 0x20, 0x22, 0xFF, 0x22, 0x0A]).write(to: URL(fileURLWithPath: path))
            case .tooDeep: try ("x = " + String(repeating: "[", count: 100_000)).write(toFile: path, atomically: false, encoding: .utf8)
            case .badType: try (process("we/b", ["/bin/true"])).write(toFile: path, atomically: false, encoding: .utf8)
            case .wrongShape: try "processes = 3\n".write(toFile: path, atomically: false, encoding: .utf8)
            }
        }

        var expected: String {
            switch self {
            case .syntax, .wrongShape: "metadata.toml"
            case .missing: "does not exist"
            case .fifo: "not a regular file"
            case .symlink: "symbolic link"
            case .notUTF8: "UTF-8"
            case .tooDeep: "deep"
            case .badType: "we/b"
            }
        }
    }

    @Test(.timeLimit(.minutes(5)), arguments: BadMetadata.allCases)
    func badMetadataIsOneClearError(_ bad: BadMetadata) throws {
        let image = try LaunchImage(metadata: "")
        try image.write("metadata.toml", buildpack() + process("web", ["/bin/echo", "ran"]), under: image.app)
        try bad.plant(in: image)
        for argv in [["/cnb/process/web"], ["/cnb/lifecycle/launcher", "--", "/bin/echo", "ran"]] {
            let r = image.launch(argv)
            #expect(r.isOneLineLauncherError, "\(r)")
            #expect(r.stderr.contains(bad.expected), "\(r)")
            #expect(r.stdout.isEmpty, "\(r)")
        }
    }

    @Test func aLayerFileNameWithANewlineStaysOnOneLine() throws {
        let image = try LaunchImage(metadata: buildpack() + process("web", ["/usr/bin/env"]))
        try image.link("test_bp/tools/env/BAD\nNAME", to: "/workspace/secret.txt")
        let r = image.launch(["/cnb/process/web"])
        #expect(r.isOneLineLauncherError, "\(r)")
        #expect(r.stderr.contains("BAD\\nNAME"), "\(r)")
    }
}
