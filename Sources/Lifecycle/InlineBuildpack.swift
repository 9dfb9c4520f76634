import BuildpackSpec
import Glibc

/// A buildpack a `project.toml` gives inline (`[…group.script] api, shell, inline`), made into an ordinary
/// buildpack directory so that it runs sandboxed like any other: `buildpack.toml`, a `bin/detect` that passes
/// and a `bin/build` that is the script under its shell. Nothing from the TOML names a file: the directory is
/// named by the caller, the script's text only ever becomes file contents, and `ProjectTOML` has already
/// bounded its size and checked the shell.
public struct InlineBuildpack: Sendable {
    public var id: String
    public var api: String
    public var shell: String
    public var script: String
    /// Inline buildpacks have no version of their own.
    public static let version = "0.0.0"

    public init(id: String, api: String, shell: String, script: String) {
        self.id = id
        self.api = api
        self.shell = shell
        self.script = script
    }

    /// Writes the buildpack as `<parent>/<name>` (which must not exist) and returns its path.
    public func write(in parent: String, name: String) throws(LifecycleError) -> String {
        let descriptor: TOMLTable = [
            "api": .string(api),
            "buildpack": .table(["id": .string(id), "version": .string(Self.version), "name": .string(id + " (inline)")]),
        ]
        do {
            let scratch = try ConfinedDirectory(path: parent)
            try scratch.createDirectory(name + "/bin", intermediates: true)
            let dir = try scratch.subdirectory(name)
            try dir.writeFile(BuildpackTOML.defaultFileName, contents: Array(TOML.render(descriptor).utf8))
            try dir.writeFile("bin/detect", contents: Array("#!/bin/sh\nexit 0\n".utf8), mode: 0o755)
            try dir.writeFile("bin/build", contents: Array(("#!" + shell + "\n" + script + "\n").utf8), mode: 0o755)
        } catch {
            throw LifecycleError("cannot write inline buildpack \(id): \(error)", exitCode: LifecycleError.Code.invalidArguments)
        }
        return parent + "/" + name
    }
}
