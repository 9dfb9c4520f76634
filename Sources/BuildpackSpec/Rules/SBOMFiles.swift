/// The SBOM files a buildpack left beside its layers (§5.4): `launch.sbom.<ext>`,
/// `build.sbom.<ext>` and `<layer>.sbom.<ext>`, with `<ext>` one of `cdx.json`, `spdx.json` and
/// `syft.json`, each of a media type the buildpack declared in `sbom-formats`. Where each one goes
/// under `<layers>/sbom/`: `launch/` and `build/` by what the layer is, `cache/` too for a cache layer.
public struct SBOMFile: Sendable, Equatable {
    /// The file in the buildpack's layers directory.
    public var fileName: String
    /// Paths relative to `<layers>/sbom`, e.g. `launch/<escaped id>/<layer>/sbom.cdx.json`.
    public var destinations: [String]

    public static let mediaTypes: [String: String] = [
        "cdx.json": "application/vnd.cyclonedx+json",
        "spdx.json": "application/spdx+json",
        "syft.json": "application/vnd.syft+json",
    ]

    /// The SBOM files among `entries` (a buildpack's layers directory after its build).
    public static func find(in entries: [DirectoryEntry], layers: BuildpackLayers, escapedID: String,
                            sbomFormats: [String], directory: ConfinedDirectory, buildpack: String) throws(SpecError)
        -> [SBOMFile]
    {
        var found: [SBOMFile] = []
        for entry in entries where entry.hasValidName {
            // `<owner>.sbom.<ext>`; the owner is the text before the first dot (§5.4).
            let parts = entry.name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard let sbom = parts.lastIndex(of: "sbom"), sbom > 0, sbom < parts.count - 1 else { continue }
            let owner = parts[0]
            let ext = parts[(sbom + 1)...].joined(separator: ".")
            let file = directory.displayPath(entry.name)
            guard let mediaType = mediaTypes[ext] else {
                throw SpecError(.invalidValue, "\(quoted(entry.name)) is not an SBOM file: the extension must be cdx.json, spdx.json or syft.json",
                                file: file, buildpack: buildpack)
            }
            guard sbomFormats.contains(mediaType) else {
                throw SpecError(.invalidValue, "\(quoted(entry.name)) is \(mediaType), which buildpack.toml's sbom-formats does not declare",
                                file: file, buildpack: buildpack)
            }
            guard entry.kind == .regular else {
                throw SpecError(.notRegularFile, "\(quoted(entry.name)) is not a regular file", file: file, buildpack: buildpack)
            }
            let name = "sbom." + ext
            var destinations: [String] = []
            switch owner {
            case "launch": destinations = ["launch/\(escapedID)/\(name)"]
            case "build": destinations = ["build/\(escapedID)/\(name)"]
            default:
                // The layer is the text before the first dot; a layer without types has no SBOM to keep.
                guard let types = layers[owner]?.metadata, !types.isIgnored else { continue }
                destinations.append((types.launch ? "launch" : "build") + "/\(escapedID)/\(owner)/\(name)")
                if types.cache { destinations.append("cache/\(escapedID)/\(owner)/\(name)") }
            }
            found.append(SBOMFile(fileName: entry.name, destinations: destinations))
        }
        return found
    }
}
