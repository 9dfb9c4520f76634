import Foundation
import StockadeTestSupport

/// What an exported image holds at launch, written on the host: `layers` (bound at /layers, with
/// `config/metadata.toml`), `app` (bound at /workspace), and `/cnb/process/<type>` links to the launcher.
struct LaunchImage {
    let root: String
    var layers: String { root + "/layers" }
    var app: String { root + "/app" }
    var processLinks: String { root + "/process" }

    /// A fresh image with this metadata.toml and `/cnb/process/<type>` for each of `types` (defined or not).
    init(metadata: String, types: [String] = ["web", "worker", "ghost"]) throws {
        root = Fixture.shared.makeDirectory("image")
        let fm = FileManager.default
        for dir in [layers + "/config", app, processLinks] {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        try metadata.write(toFile: layers + "/config/metadata.toml", atomically: true, encoding: .utf8)
        for type in types {
            try fm.createSymbolicLink(atPath: processLinks + "/" + type, withDestinationPath: "/cnb/lifecycle/launcher")
        }
    }

    /// Writes `contents` at `relative` below `base` (the layers directory by default), making parents.
    func write(_ relative: String, _ contents: String, executable: Bool = false, under base: String? = nil) throws {
        let path = (base ?? layers) + "/" + relative
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try contents.write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, executable ? 0o755 : 0o644)
    }

    /// A `#!/bin/sh` script at `relative` below the layers directory.
    func script(_ relative: String, _ body: String) throws {
        try write(relative, "#!/bin/sh\n" + body + "\n", executable: true)
    }

    /// A symbolic link at `relative` below the layers directory, pointing at `target` as the sandbox sees it.
    func link(_ relative: String, to target: String) throws {
        let path = layers + "/" + relative
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: target)
    }

    /// Runs `argv` in a sandbox laid out as the image: the launcher at /cnb/lifecycle/launcher, and the
    /// environment an exported image's config sets (PATH with /cnb/process and /cnb/lifecycle first).
    func launch(_ argv: [String], env: [String] = [], as invoker: Invoker = .suiteUser) -> Outcome {
        // Every invoker's stack user must read the image.
        _ = Fixture.run(["chmod", "-R", "a+rX", root])
        let imageEnv = ["PATH=/cnb/process:/cnb/lifecycle:/usr/bin:/bin", "CNB_LAYERS_DIR=/layers",
                        "CNB_APP_DIR=/workspace", "CNB_PLATFORM_API=0.15", "CNB_DEPRECATION_MODE=quiet"]
        var options = ["exec", "--clear-env",
                       "--ro-bind", "\(Fixture.shared.launcher):/cnb/lifecycle/launcher",
                       "--ro-bind", "\(processLinks):/cnb/process",
                       "--ro-bind", "\(layers):/layers", "--ro-bind", "\(app):/workspace"]
        for variable in imageEnv + env { options += ["--env", variable] }
        return Fixture.shared.stockade(options + ["--"] + argv, as: invoker)
    }
}

extension Outcome {
    /// `env` output as name → value.
    var environment: [String: String] {
        var out: [String: String] = [:]
        for line in lines {
            guard let eq = line.firstIndex(of: "=") else { continue }
            out[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return out
    }

    /// stderr's lines.
    var errorLines: [String] { stderr.split(separator: "\n").map(String.init) }

    /// The launcher failed as it must: exit 82 and exactly one line on stderr, no crash.
    var isOneLineLauncherError: Bool {
        status == 82 && errorLines.count == 1 && errorLines[0].hasPrefix("stockade-launcher: ")
    }
}

/// A `[[processes]]` entry of metadata.toml.
func process(_ type: String, _ command: [String], args: [String] = [], buildpack: String = "test/bp",
             extra: String = "") -> String {
    func array(_ strings: [String]) -> String {
        "[" + strings.map { "'" + $0 + "'" }.joined(separator: ", ") + "]"
    }
    return """
        [[processes]]
        type = "\(type)"
        command = \(array(command))
        args = \(array(args))
        direct = true
        buildpack-id = "\(buildpack)"
        \(extra)

        """
}

/// A `[[buildpacks]]` entry of metadata.toml.
func buildpack(_ id: String = "test/bp", api: String = "0.12") -> String {
    "[[buildpacks]]\nid = \"\(id)\"\nversion = \"1.0.0\"\napi = \"\(api)\"\n\n"
}
