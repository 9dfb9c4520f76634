/// The layers a buildpack left in `<layers>/<escaped id>/` after `bin/build` (§5.1).
///
/// - Each `<name>.toml` regular file is a layer's metadata, except `launch.toml`, `build.toml` and
///   `store.toml`. Its name must be a valid layer name: `.toml`, `..toml` and `...toml` (names `""`, `.`,
///   `..`) are errors, never layers. A `<name>.toml` that is a symbolic link, FIFO, device or socket is an error.
/// - Each directory is a layer's content; a directory with no `.toml` is listed with `metadata == nil`
///   (the platform ignores it). Directories named `launch`, `build` or `store` are not layers.
/// - Other files (`*.sbom.*.json`, `*.sha`, ...) are not layers.
public struct BuildpackLayers: Sendable, Equatable {
    /// One layer.
    public struct Layer: Sendable, Equatable {
        /// The layer name (file name minus `.toml`, or the directory name).
        public var name: String
        /// The parsed `<name>.toml`, if there is one.
        public var metadata: LayerTOML?
        /// What `<name>` is (`lstat`), if it exists. `.directory` is the normal case; `launch = true` with no
        /// content means "reuse the previous image's layer".
        public var contentKind: FileKind?

        public init(name: String, metadata: LayerTOML?, contentKind: FileKind?) {
            self.name = name; self.metadata = metadata; self.contentKind = contentKind
        }
    }

    /// The buildpack (`id@version`) the directory belongs to, for messages.
    public var buildpack: String?
    /// The layers, sorted by name (byte order).
    public var layers: [Layer]

    public init(buildpack: String? = nil, layers: [Layer]) {
        self.buildpack = buildpack
        self.layers = layers
    }

    /// The layer with this name.
    public subscript(name: String) -> Layer? { layers.first { $0.name == name } }

    /// Scans a buildpack's layers directory (which must exist).
    /// - Parameters:
    ///   - directory: `<layers>/<escaped id>`, opened confined.
    ///   - buildpack: `id@version`, for messages.
    ///   - api: the buildpack's API (passed to the layer metadata decoder).
    public static func scan(_ directory: ConfinedDirectory, buildpack: String? = nil, api: APIVersion? = nil)
        throws(SpecError) -> BuildpackLayers
    {
        let entries: [DirectoryEntry]
        do {
            entries = try directory.entries()
        } catch {
            throw error.attributed(to: buildpack)
        }
        var metadata: [String: LayerTOML] = [:]
        var contents: [String: FileKind] = [:]
        for entry in entries {
            if !entry.hasValidName {
                if entry.kind == .directory || entry.name.hasSuffix(".toml") {
                    throw SpecError(.invalidValue, "a layer name is not valid UTF-8",
                                    file: directory.displayPath(entry.name), buildpack: buildpack)
                }
                continue
            }
            if entry.kind != .directory, let name = LayerName.fromMetadataFileName(entry.name) {
                if LayerName.reserved.contains(name) { continue }
                try LayerName.validate(name, file: directory.displayPath(entry.name), buildpack: buildpack)
                metadata[name] = try LayerTOML.read(from: directory, at: entry.name, buildpack: buildpack, buildpackAPI: api)
            } else if entry.kind != .directory || !LayerName.reserved.contains(entry.name) {
                contents[entry.name] = entry.kind
            }
        }
        var layers: [Layer] = []
        for (name, toml) in metadata {
            layers.append(Layer(name: name, metadata: toml, contentKind: contents[name]))
        }
        for (name, kind) in contents where metadata[name] == nil && kind == .directory {
            layers.append(Layer(name: name, metadata: nil, contentKind: kind))
        }
        layers.sort { utf8Less($0.name, $1.name) }
        return BuildpackLayers(buildpack: buildpack, layers: layers)
    }

    /// The layers whose flags are all false and that have a directory: after every `bin/build` the platform
    /// renames `<name>/` to `<name>.ignore/`.
    public var ignoredLayers: [Layer] {
        layers.filter { $0.metadata?.isIgnored == true && $0.contentKind == .directory }
    }

    /// Renames every ignored layer's directory to `<name>.ignore` (within `directory`, without following links).
    public func renameIgnoredLayers(in directory: ConfinedDirectory) throws(SpecError) {
        for layer in ignoredLayers {
            do {
                try directory.rename(layer.name, to: layer.name + ".ignore")
            } catch {
                throw error.attributed(to: buildpack)
            }
        }
    }
}
