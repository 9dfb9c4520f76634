import BuildpackSpec

/// The layers of one buildpack in the image: the real subdirectories of `<layers>/<escaped id>`, by name
/// (byte order), without `<name>.ignore`. Symbolic links and other files are not layers.
struct BuildpackLaunchLayers {
    /// The buildpack ID, for messages.
    let buildpack: String
    /// Layer paths relative to the layers directory (`<escaped id>/<layer>`).
    let layers: [String]

    /// Every buildpack of metadata.toml, in order; one without a directory has no layers.
    static func scan(_ root: ConfinedDirectory, buildpacks: [GroupElement]) throws(SpecError) -> [BuildpackLaunchLayers] {
        var out: [BuildpackLaunchLayers] = []
        for buildpack in buildpacks {
            // IDs were validated when metadata.toml was decoded, so the escaped ID is one path component.
            let directory = BuildpackID.escape(buildpack.id)
            guard try root.kind(of: directory) == .directory else { continue }
            let entries = try root.entries(directory)
            let layers = entries.filter { $0.kind == .directory && $0.hasValidName && !$0.name.hasSuffix(".ignore") }
            out.append(BuildpackLaunchLayers(buildpack: buildpack.id, layers: layers.map { directory + "/" + $0.name }))
        }
        return out
    }
}

extension Environment {
    /// Variables the platform sets for the launcher alone; the process never sees them.
    static let launcherVariables = ["CNB_LAYERS_DIR", "CNB_APP_DIR", "CNB_PROCESS_TYPE", "CNB_PLATFORM_API",
                                    "CNB_DEPRECATION_MODE"]
    /// PATH entries that lead back to the launcher.
    static let launcherPaths: Set<String> = ["/cnb/process", "/cnb/lifecycle"]

    /// The container's environment as the process starts from: without the launcher's variables, and
    /// without the launcher's directories on PATH (so a process named like a type cannot loop back).
    func withoutLauncherSettings() -> Environment {
        var out = self
        for name in Self.launcherVariables { out[name] = nil }
        if let path = out["PATH"] {
            out["PATH"] = path.split(separator: ":", omittingEmptySubsequences: false)
                .filter { !Self.launcherPaths.contains(String($0)) }
                .joined(separator: ":")
        }
        return out
    }

    /// Applies one buildpack's layers (§8): first every layer's `bin` → PATH and `lib` → LD_LIBRARY_PATH
    /// (prepended with `:`, so the layer that sorts last comes first, as in the reference), then per layer
    /// `env/`, `env.launch/` and, for a process, `env.launch/<type>/` with the §5.2 suffix rules (no suffix
    /// overrides). Symbolic links in env directories are refused: they could point out of the layer.
    mutating func applyLaunchLayers(_ buildpack: BuildpackLaunchLayers, in root: ConfinedDirectory,
                                    processType: String?) throws(SpecError)
    {
        for layer in buildpack.layers {
            for (directory, variable) in [("bin", "PATH"), ("lib", "LD_LIBRARY_PATH")] {
                // Only the path goes into the variable; nothing is read, so the entry is checked, not followed.
                if try root.kind(of: layer + "/" + directory) != nil {
                    prependPath(root.displayPath(layer + "/" + directory), to: variable)
                }
            }
        }
        for layer in buildpack.layers {
            var directories = [layer + "/env", layer + "/env.launch"]
            // Process types were validated with metadata.toml: no "/", never "." or "..".
            if let processType { directories.append(layer + "/env.launch/" + processType) }
            for directory in directories {
                apply(try EnvironmentDirectory.modifications(in: root, at: directory, defaultAction: .override,
                                                             symlinks: .refuse, buildpack: buildpack.buildpack))
            }
        }
    }
}
