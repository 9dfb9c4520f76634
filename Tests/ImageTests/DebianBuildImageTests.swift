import Foundation
import StockadeTestSupport
import Testing

/// A builder whose build image is a real Debian root filesystem (debootstrap, cached between runs
/// under /var/cache/stockade-tests) builds the python example with that image's python, not the
/// host's: the build runs where only the image's marker file and python are.
@Suite struct DebianBuildImageTests {
    static let cache = "/var/cache/stockade-tests/debian-bookworm-python"

    /// The image, made once (debootstrap needs root and Debian's mirror), else why not.
    static let image: Result<String, Failure> = {
        if FileManager.default.fileExists(atPath: cache + "/index.json") { return .success(cache) }
        guard Fixture.shared.isRoot else { return .failure(Failure(reason: "debootstrap needs root to make \(cache)")) }
        let made = Fixture.run(["bash", Fixture.shared.repo + "/scripts/debian-build-image.sh", cache])
        guard made.status == 0 else {
            let last = made.stderr.split(separator: "\n").last.map(String.init) ?? "status \(made.status)"
            return .failure(Failure(reason: "the Debian build image cannot be made here: \(last)"))
        }
        return .success(cache)
    }()

    struct Failure: Error { let reason: String }

    static func requireImage() throws -> String {
        switch image {
        case .success(let path): return path
        case .failure(let failure): try skip(failure.reason)
        }
    }

    /// The builder: the example python buildpack, then a probe that reports where it ran.
    static let builder: Result<String, Failure> = {
        guard case .success(let image) = Self.image else { return .failure(Failure(reason: "no image")) }
        let probe = Images.buildpack("probe", build: """
            cat /etc/stockade-build-image
            python3 -c 'import os, sys; print("PYTHON", sys.version.split()[0], os.path.realpath(sys.executable))'
            """)
        let config = Builders.config(buildpacks: ["python", probe], order: [], buildImage: image, runImage: image,
                                     extra: "[[order]]\n[[order.group]]\nid = \"examples/python\"\n[[order.group]]\nid = \"test/probe\"\n")
        let (layout, made) = Builders.create(config)
        return made.status == 0 ? .success(layout) : .failure(Failure(reason: "builder create: \(made)"))
    }()

    /// One store for every invoker, unpacked once by the suite's user: the image is large, and
    /// unpacking is tested elsewhere; every invoker then reads the same tree.
    static let store: Result<String, Failure> = {
        guard case .success(let builder) = Self.builder else { return .failure(Failure(reason: "no builder")) }
        let store = Builders.store()
        let unpacked = Builders.build(builder: builder, store: store, app: Images.examples + "/apps/python-app")
        return unpacked.status == 0 ? .success(store) : .failure(Failure(reason: "first build: \(unpacked)"))
    }()

    @Test(arguments: Invoker.all)
    func thePythonAppBuildsWithTheImagesPython(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let image = try Self.requireImage()
        let builder = try Self.builder.get()
        // The control: the host has no such marker, so only the image can have shown it.
        #expect(!FileManager.default.fileExists(atPath: "/etc/stockade-build-image"))
        let store = try Self.store.get()
        let output = Images.newPath("debian-app")
        let built = Builders.build(builder: builder, store: store, app: Images.examples + "/apps/python-app",
                                   output: output, as: invoker)
        #expect(built.status == 0, "\(built)")
        #expect(!built.stdout.contains("Unpacking"), "\(built)")
        #expect(built.stdout.contains("[test/probe] debian bookworm build image made by debootstrap"), "\(built)")
        // The version the image's Debian package says, read from the unpacked tree's dpkg status.
        let tree = store + "/" + (Builders.entries(store).first ?? "")
        let status = Images.text(tree + "/var/lib/dpkg/status") ?? ""
        let package = try #require(status.components(separatedBy: "\n\n").first { $0.hasPrefix("Package: python3.11\n") })
        let version = try #require(package.split(separator: "\n").first { $0.hasPrefix("Version: ") }?
            .dropFirst("Version: ".count).split(separator: "-").first.map(String.init))
        let line = try #require(built.lines.first { $0.contains("PYTHON ") })
        #expect(line.hasSuffix("PYTHON \(version) /usr/bin/python3.11"), "\(line), image's python3.11 is \(version)")
        // The image runs on the same Debian: its venv's python is the image's.
        let ran = Images.fx.stockade(["run", "oci:\(output):app", "--process", "version"], as: invoker)
        #expect(ran.stdout + ran.stderr == "Python \(version)\n", "\(ran)")
        _ = image
    }
}
