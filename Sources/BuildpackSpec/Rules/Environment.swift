/// An ordered set of environment variables: names keep the position where they were first set.
public struct Environment: Sendable, Equatable, Sequence {
    private var order: [String] = []
    private var values: [String: String] = [:]

    public init() {}

    /// Variables from pairs; a later pair for the same name replaces the value in place.
    public init(_ pairs: some Sequence<(String, String)>) {
        for (name, value) in pairs { self[name] = value }
    }

    /// Variables from `NAME=value` strings (as in `environ`); strings without `=` are ignored.
    public init(envp: [String]) {
        for entry in envp {
            guard let eq = entry.firstIndex(of: "="), eq != entry.startIndex else { continue }
            self[String(entry[..<eq])] = String(entry[entry.index(after: eq)...])
        }
    }

    /// The value of a variable; setting `nil` removes it.
    public subscript(name: String) -> String? {
        get { values[name] }
        set {
            if let newValue {
                if values.updateValue(newValue, forKey: name) == nil { order.append(name) }
            } else if values.removeValue(forKey: name) != nil {
                order.removeAll { $0 == name }
            }
        }
    }

    /// The names, in order.
    public var names: [String] { order }
    public var count: Int { order.count }
    public var isEmpty: Bool { order.isEmpty }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        order.map { ($0, values[$0]!) }.makeIterator()
    }

    /// `NAME=value` strings, in order, for `execve`.
    public var envp: [String] { order.map { "\($0)=\(values[$0]!)" } }

    public static func == (lhs: Environment, rhs: Environment) -> Bool {
        lhs.order == rhs.order && lhs.values == rhs.values
    }

    /// Only the variables named in `allowed`, in their current order.
    public func filtered(allowing allowed: some Sequence<String>) -> Environment {
        let set = Set(allowed)
        var out = Environment()
        for (name, value) in self where set.contains(name) { out[name] = value }
        return out
    }

    /// The variables the lifecycle passes on to `bin/detect` and `bin/build` from its own environment
    /// (everything else is dropped).
    public static let buildAllowlist: [String] = [
        "PATH", "LD_LIBRARY_PATH", "LIBRARY_PATH", "CPATH", "PKG_CONFIG_PATH", "HOME", "HOSTNAME",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "CNB_STACK_ID",
    ]

    /// The path-list variables: a layer's `bin`, `lib`, `include`, `pkgconfig` are prepended to them, and
    /// `<platform>/env` files for them are prepended rather than overriding.
    public static let pathVariables: [String] = ["PATH", "LD_LIBRARY_PATH", "LIBRARY_PATH", "CPATH", "PKG_CONFIG_PATH"]

    /// The layer subdirectories prepended (with `:`) to path variables (§5.5), in the order applied.
    public static let layerPathDirectories: [(directory: String, variables: [String])] = [
        ("bin", ["PATH"]), ("lib", ["LD_LIBRARY_PATH", "LIBRARY_PATH"]), ("include", ["CPATH"]),
        ("pkgconfig", ["PKG_CONFIG_PATH"]),
    ]

    // MARK: - Modifications

    /// Applies one env-file modification (§5.2). Nothing is added around an empty old value.
    public mutating func apply(_ modification: EnvironmentModification) {
        let name = modification.name
        let value = modification.value
        let old = self[name] ?? ""
        switch modification.action {
        case .override:
            self[name] = value
        case .default:
            if old.isEmpty { self[name] = value }
        case .prepend:
            self[name] = old.isEmpty ? value : value + (modification.delimiter ?? "") + old
        case .append:
            self[name] = old.isEmpty ? value : old + (modification.delimiter ?? "") + value
        case .prependPath:
            self[name] = old.isEmpty ? value : value + (modification.delimiter ?? ":") + old
        }
    }

    /// Applies modifications in order.
    public mutating func apply(_ modifications: [EnvironmentModification]) {
        for modification in modifications { apply(modification) }
    }

    /// Prepends `path` to `name` with `:` (nothing added around an empty old value).
    public mutating func prependPath(_ path: String, to name: String) {
        apply(EnvironmentModification(fileName: name, name: name, action: .prependPath, value: path, delimiter: ":"))
    }
}

/// What an env file does to its variable (§5.2). The raw value is the file-name suffix.
public enum EnvironmentAction: String, Sendable, Hashable, CaseIterable {
    /// `.override`: set the value.
    case override
    /// `.default`: set the value only if the variable is unset or empty.
    case `default`
    /// `.prepend`: new + delimiter + old.
    case prepend
    /// `.append`: old + delimiter + new.
    case append
    /// An empty suffix (a file named `NAME.`): prepend with the delimiter, `:` if there is none
    /// (the reference lifecycle's `ActionTypePrependPath`).
    case prependPath = ""
}

/// One modification read from an env directory.
public struct EnvironmentModification: Sendable, Hashable {
    /// The file it came from.
    public var fileName: String
    /// The variable.
    public var name: String
    public var action: EnvironmentAction
    /// The file's contents, verbatim (no trimming).
    public var value: String
    /// The contents of `<name>.delim` in the same directory, if present.
    public var delimiter: String?

    public init(fileName: String, name: String, action: EnvironmentAction, value: String, delimiter: String? = nil) {
        self.fileName = fileName; self.name = name; self.action = action; self.value = value; self.delimiter = delimiter
    }
}

/// Rules for environment variable names that come from file names.
public enum EnvironmentVariableName {
    /// Checks a name that becomes a file name in an env directory (builder.toml, project.toml):
    /// not empty, no `=`, `/`, `.` or NUL.
    public static func validateFileName(_ name: String, file: String? = nil, keyPath: String? = nil) throws(SpecError) {
        if name.isEmpty || name.contains("=") || name.contains("/") || name.contains(".") || name.utf8.contains(0) {
            throw SpecError(.invalidValue,
                            "\(quoted(name)) is not a usable environment variable name (no \"=\", \"/\", \".\" or NUL)",
                            file: file, keyPath: keyPath)
        }
    }

    /// Whether `name` can be put in an environment: not empty, no `=` and no NUL.
    public static func isUsable(_ name: String) -> Bool {
        !name.isEmpty && !name.contains("=") && !name.utf8.contains(0)
    }
}

/// The rules for reading env directories (§5.2, §4).
public enum EnvironmentDirectory {
    /// The most an env file (or `.delim` file) may hold: 1 MiB. (Linux refuses a single `NAME=value`
    /// longer than 128 KiB at `execve` anyway.)
    public static let fileLimit = 1 << 20

    /// Splits an env file name (layer `env*/` and build-config `env/` directories): the variable is the
    /// name up to the first `.`; the rest selects the action. No suffix means `defaultAction`. Returns
    /// `nil` for files that are ignored: `.delim` files, unknown suffixes (`X.bar.append` included), and
    /// names that cannot be variables (empty, or containing `=`).
    public static func parse(fileName: String, defaultAction: EnvironmentAction)
        -> (name: String, action: EnvironmentAction)?
    {
        let name: String
        let action: EnvironmentAction
        if let dot = fileName.utf8.firstIndex(of: 0x2E) {
            name = String(fileName[..<dot])
            let suffix = String(fileName[fileName.utf8.index(after: dot)...])
            guard let parsed = EnvironmentAction(rawValue: suffix) else { return nil }
            action = parsed
        } else {
            name = fileName
            action = defaultAction
        }
        guard EnvironmentVariableName.isUsable(name) else { return nil }
        return (name, action)
    }

    /// Reads the modifications of an env directory in file-name order (byte order, like Go's `os.ReadDir`).
    ///
    /// - Parameters:
    ///   - directory: the root the path is relative to.
    ///   - relative: the env directory (e.g. `node/env.build`); a missing directory gives no modifications.
    ///   - defaultAction: `.override` for layer env directories, `.default` for `<build-config>/env`.
    ///   - symlinks: `.refuse` for layer directories (hostile; a symbolic link is an error), `.follow` for
    ///     trusted platform directories (a link to a directory is skipped).
    /// Subdirectories are skipped; FIFOs, sockets and devices are errors; values must be UTF-8 without NUL.
    public static func modifications(in directory: ConfinedDirectory, at relative: String,
                                     defaultAction: EnvironmentAction, symlinks: SymlinkPolicy = .refuse,
                                     buildpack: String? = nil) throws(SpecError) -> [EnvironmentModification]
    {
        var out: [EnvironmentModification] = []
        for (fileName, value) in try files(in: directory, at: relative, symlinks: symlinks, buildpack: buildpack) {
            guard let (name, action) = parse(fileName: fileName, defaultAction: defaultAction) else { continue }
            var delimiter: String?
            if action != .override && action != .default {
                let delimPath = join(relative, name + ".delim")
                if let bytes = try read(directory, delimPath, symlinks: symlinks, buildpack: buildpack) {
                    delimiter = try text(bytes, directory.displayPath(delimPath), buildpack: buildpack)
                }
            }
            out.append(EnvironmentModification(fileName: fileName, name: name, action: action, value: value,
                                               delimiter: delimiter))
        }
        return out
    }

    /// The regular files of an env directory with their contents, in file-name order.
    static func files(in directory: ConfinedDirectory, at relative: String, symlinks: SymlinkPolicy,
                      buildpack: String?) throws(SpecError) -> [(String, String)]
    {
        let entries: [DirectoryEntry]
        do {
            entries = try directory.entries(relative)
        } catch {
            if error.kind == .notFound { return [] }
            throw error.attributed(to: buildpack)
        }
        var out: [(String, String)] = []
        for entry in entries {
            let path = join(relative, entry.name)
            guard entry.hasValidName else {
                throw SpecError(.invalidValue, "an env file name is not valid UTF-8",
                                file: directory.displayPath(path), buildpack: buildpack)
            }
            switch entry.kind {
            case .directory:
                continue
            case .symlink where symlinks == .follow:
                // Follow it; a link to a directory is skipped (a dangling link is an error, as in the reference).
                let target: FileKind?
                do {
                    target = try directory.kind(of: path, followingFinalSymlink: true)
                } catch {
                    throw error.attributed(to: buildpack)
                }
                if target == .directory { continue }
                do {
                    let bytes = try directory.readFile(path, limit: fileLimit, symlinks: .follow)
                    out.append((entry.name, try text(bytes, directory.displayPath(path), buildpack: buildpack)))
                } catch {
                    throw error.attributed(to: buildpack)
                }
            default:
                // Regular files; anything else (symlink under .refuse, FIFO, device, socket) fails in readFile.
                guard let bytes = try read(directory, path, symlinks: symlinks, buildpack: buildpack) else { continue }
                out.append((entry.name, try text(bytes, directory.displayPath(path), buildpack: buildpack)))
            }
        }
        return out
    }

    private static func read(_ directory: ConfinedDirectory, _ path: String, symlinks: SymlinkPolicy,
                             buildpack: String?) throws(SpecError) -> [UInt8]?
    {
        do {
            return try directory.readFileIfPresent(path, limit: fileLimit, symlinks: symlinks)
        } catch {
            throw error.attributed(to: buildpack)
        }
    }

    private static func text(_ bytes: [UInt8], _ display: String, buildpack: String?) throws(SpecError) -> String {
        if bytes.contains(0) {
            throw SpecError(.invalidValue, "an environment value cannot contain a NUL byte", file: display, buildpack: buildpack)
        }
        do {
            return try UTF8Validation.string(bytes, file: display)
        } catch {
            throw error.attributed(to: buildpack)
        }
    }

    static func join(_ a: String, _ b: String) -> String { a.isEmpty ? b : a + "/" + b }
}

extension Environment {
    /// Applies `<platform>/env` (§4 step 3), unless the buildpack sets `clear-env`: each file name is a
    /// variable name, verbatim (no suffix parsing); the path variables get the value prepended with `:`,
    /// others are overwritten. File symlinks are followed; directories (and links to them) are skipped.
    /// - Parameter platform: the platform directory (trusted).
    public mutating func applyPlatformEnvironment(_ platform: ConfinedDirectory) throws(SpecError) {
        for (name, value) in try EnvironmentDirectory.files(in: platform, at: "env", symlinks: .follow, buildpack: nil) {
            guard EnvironmentVariableName.isUsable(name) else {
                throw SpecError(.invalidValue, "\(quoted(name)) cannot be an environment variable name",
                                file: platform.displayPath("env/" + name))
            }
            if Environment.pathVariables.contains(name) {
                prependPath(value, to: name)
            } else {
                self[name] = value
            }
        }
    }

    /// Applies `<build-config>/env` (§4 step 4; applied regardless of `clear-env`): the §5.2 suffix rules,
    /// except that no suffix means `default`. Symlinks are followed (the directory is the operator's).
    public mutating func applyBuildConfigEnvironment(_ buildConfig: ConfinedDirectory) throws(SpecError) {
        apply(try EnvironmentDirectory.modifications(in: buildConfig, at: "env", defaultAction: .default,
                                                     symlinks: .follow))
    }

    /// Applies what a `build = true` layer contributes to later buildpacks' build environment (§5.5):
    /// 1. `<layer>/bin` → `PATH`, `lib` → `LD_LIBRARY_PATH` and `LIBRARY_PATH`, `include` → `CPATH`,
    ///    `pkgconfig` → `PKG_CONFIG_PATH`, each prepended with `:` if the entry exists (not followed);
    /// 2. `env/`, then `env.build/` (suffix rules; no suffix = override; symbolic links refused).
    /// - Parameter layer: the layer directory, opened confined (its `path` is what goes into the variables).
    public mutating func applyBuildLayer(_ layer: ConfinedDirectory, buildpack: String? = nil) throws(SpecError) {
        for (directory, variables) in Environment.layerPathDirectories {
            let exists: Bool
            do {
                exists = try layer.kind(of: directory) != nil
            } catch {
                throw error.attributed(to: buildpack)
            }
            if exists {
                for variable in variables { prependPath(layer.displayPath(directory), to: variable) }
            }
        }
        apply(try EnvironmentDirectory.modifications(in: layer, at: "env", defaultAction: .override, buildpack: buildpack))
        apply(try EnvironmentDirectory.modifications(in: layer, at: "env.build", defaultAction: .override,
                                                     buildpack: buildpack))
    }

    /// Applies the build-time contributions of one buildpack's layers, after its `bin/build` (§5.5):
    /// every layer with `build = true` and a directory, in layer-name order.
    /// - Parameters:
    ///   - buildpackLayers: `<layers>/<escaped id>`, opened confined.
    ///   - layers: the scan of that directory (`BuildpackLayers.scan`).
    public mutating func applyBuildLayers(of buildpackLayers: ConfinedDirectory, _ layers: BuildpackLayers)
        throws(SpecError)
    {
        for layer in layers.layers where layer.metadata?.build == true && layer.contentKind == .directory {
            let directory: ConfinedDirectory
            do {
                directory = try buildpackLayers.subdirectory(layer.name)
            } catch {
                throw error.attributed(to: layers.buildpack)
            }
            try applyBuildLayer(directory, buildpack: layers.buildpack)
        }
    }
}
