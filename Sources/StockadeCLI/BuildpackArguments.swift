import BuildpackSpec
import CrashSafety
import Glibc
import Lifecycle
import OCI
import Sandbox
import SystemCalls

/// `--buildpack` values that are not buildpack directories: a `.tgz` or `.cnb` file, a
/// buildpackage in a layout (`oci:DIR[:TAG]`) or in a registry. Each is unpacked strictly into
/// private scratch space, as `builder create` reads them; a package stands for its top buildpack,
/// and the buildpacks it holds besides are found by id, as a builder's are.
struct BuildpackArguments {
    /// Buildpack directories, in the order given: one group.
    var directories: [String] = []
    /// The packages' `/cnb/buildpacks` trees: where a composite's members are looked for.
    var packageLayouts: [String] = []
    /// Where the archives and packages were unpacked; removed by `close`.
    var scratch: String?

    static func resolve(_ values: [String], registry: RegistryImages, configuration: Configuration,
                        disk: DiskRequest) throws -> BuildpackArguments {
        var resolved = BuildpackArguments()
        var sources: ModuleSources?
        for value in values {
            if Self.isBuildpackDirectory(value) {
                resolved.directories.append(value)
                continue
            }
            if sources == nil {
                let scratch = try HostInputs.makeScratch()
                resolved.scratch = scratch
                sources = ModuleSources(base: (try? currentDirectory()) ?? ".", scratch: scratch,
                                        pull: pulling(registry, configuration: configuration, disk: disk))
            }
            let entries = try sources!.add(value, in: "--buildpack")
            // The top of a package: the one buildpack no other of its buildpacks' orders names.
            let named = Set(entries.flatMap { $0.descriptor.order.flatMap { $0.group.map(\.id) } })
            guard let top = entries.first(where: { !named.contains($0.descriptor.info.id) }) ?? entries.first else {
                throw LifecycleError("--buildpack \(value) holds no buildpack", exitCode: LifecycleError.Code.invalidArguments)
            }
            resolved.directories.append(top.directory)
            for entry in entries where entry.directory != top.directory || entries.count > 1 {
                // <package>/cnb/buildpacks/<escaped id>/<version>: the tree two levels up.
                let layout = String(entry.directory.split(separator: "/", omittingEmptySubsequences: false)
                    .dropLast(2).joined(separator: "/"))
                if layout.hasSuffix("/cnb/buildpacks"), !resolved.packageLayouts.contains(layout) {
                    resolved.packageLayouts.append(layout)
                }
            }
        }
        return resolved
    }

    /// A directory with a `buildpack.toml` (not an image layout): used in place, as before.
    private static func isBuildpackDirectory(_ value: String) -> Bool {
        var st = stat()
        return !value.hasPrefix("oci:") && !value.hasPrefix("docker://") && stat(value, &st) == 0
            && st.st_mode & S_IFMT == S_IFDIR && access(value + "/oci-layout", F_OK) != 0
    }

    func close() {
        if let scratch { try? StackUserFiles.removeTree(scratch, for: .invoker) }
    }
}
