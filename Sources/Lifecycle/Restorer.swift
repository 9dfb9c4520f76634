import BuildpackSpec
import Glibc
import JSON
import OCI
import SystemCalls

/// Layers this run restored from the cache: a tree provably the same at export is the cached
/// tar, reused by digest without being archived. Proof is a `TreeFingerprint` (ctimes included)
/// taken just before the buildpack that owns the layer runs, after Stockade's last chown or chmod
/// of it, and again just after; only that buildpack can write there in between.
public final class RestoredLayers: @unchecked Sendable {
    struct Entry {
        var descriptor: Descriptor
        var cache: ImageLayout
        var fingerprint: Digest?
    }

    private var entries: [String: Entry] = [:]
    /// Whether each layer came out of its buildpack unchanged.
    private var verdicts: [String: Bool] = [:]

    public init() {}

    func record(escaped: String, layer: String, _ entry: Entry) { entries[escaped + "/" + layer] = entry }

    /// Fingerprints the buildpack's restored layers as it is about to get them, then waits until
    /// the clock that stamps ctimes has passed the newest one there: a write in the same tick as
    /// Stockade's own last chown would otherwise leave the ctime as it was.
    func seal(escaped: String, layersDirectory: String) {
        var newest: Int64 = 0
        for key in entries.keys where key.hasPrefix(escaped + "/") {
            let path = layersDirectory + "/" + key
            entries[key]!.fingerprint = TreeFingerprint.of(path)
            newest = max(newest, TreeUsage.of(path).newestChange)
        }
        var now = timespec()
        while clock_gettime(CLOCK_REALTIME_COARSE, &now) == 0, Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec) <= newest {
            var pause = timespec(tv_sec: 0, tv_nsec: 1_000_000)
            nanosleep(&pause, nil)
        }
    }

    /// Compares the buildpack's restored layers with their seal, as it has just finished.
    func settle(escaped: String, layersDirectory: String) {
        for (key, entry) in entries where key.hasPrefix(escaped + "/") {
            verdicts[key] = entry.fingerprint != nil && TreeFingerprint.of(layersDirectory + "/" + key) == entry.fingerprint
        }
    }

    /// The cached layer when its tree was settled unchanged, its blob brought into `output`.
    func unchanged(escaped: String, layer: String, into output: ImageLayout) throws(OCIError) -> Descriptor? {
        let key = escaped + "/" + layer
        guard let entry = entries[key], verdicts[key] == true else { return nil }
        // Hashed whole when it was extracted at restore.
        try output.importBlob(entry.descriptor, from: entry.cache, verified: true)
        return entry.descriptor
    }
}

/// Analyze and restore (Platform API §6): the previous image's layer metadata and the cache's
/// layers, given back to the buildpacks before they build. Nothing found there is trusted: a
/// cache that is missing, partial or corrupt is skipped with a warning and rebuilt.
public struct Restorer {
    public var layersDirectory: String
    public var scratchDirectory: String
    public var group: [GroupElement]
    /// The stack user the layers' tars are written for.
    public var user: EntryOwner
    public var progress: any ProgressReporter
    /// Hands a restored tree to the stack user.
    public var prepare: (String) throws -> Void
    /// What restored layers are charged to; a layer that does not fit is rebuilt.
    public var budget: DiskAccount?

    public init(layersDirectory: String, scratchDirectory: String, group: [GroupElement], user: EntryOwner,
                progress: any ProgressReporter, prepare: @escaping (String) throws -> Void) {
        self.layersDirectory = layersDirectory
        self.scratchDirectory = scratchDirectory
        self.group = group
        self.user = user
        self.progress = progress
        self.prepare = prepare
    }

    /// Layer names (`<escaped id>/<layer>`) whose `.toml` came from the previous image: launch
    /// layers a buildpack may keep without a directory.
    public func restore(previous: Exporter.Previous?, cache: LayerCache.Contents?, restored: RestoredLayers)
        throws(LifecycleError) -> Set<String> {
        var reusable: Set<String> = []
        var fromTheCache: Set<String> = []
        do {
            let layers = try ConfinedDirectory(path: layersDirectory)
            for element in group {
                let escaped = BuildpackID.escape(element.id)
                let fromImage = previous?.metadata.buildpack(element.id)
                let fromCache = cache?.metadata.buildpack(element.id)
                guard fromImage != nil || fromCache != nil else { continue }
                try layers.createDirectory(escaped)
                let directory = try layers.subdirectory(escaped)
                if let store = fromImage?.store {
                    try StoreTOML(metadata: store).write(to: directory, at: StoreTOML.defaultFileName)
                }
                for (name, layer) in (fromImage?.layers ?? [:]).sorted(by: { utf8Less($0.key, $1.key) }) {
                    guard layer.launch, !layer.cache, !layer.build, (try? LayerName.validate(name)) != nil else { continue }
                    // The previous image is input like any other: a layer it cannot give back is skipped.
                    do {
                        try write(LayerTOML(metadata: layer.data), name: name, in: directory)
                        reusable.insert(escaped + "/" + name)
                    } catch {
                        progress.line("warning: layer '\(element.id):\(name)' of the previous image cannot be restored: \(error)")
                    }
                }
                guard let cache, let fromCache else { continue }
                for (name, layer) in fromCache.layers.sorted(by: { utf8Less($0.key, $1.key) }) where layer.cache {
                    guard (try? LayerName.validate(name)) != nil else { continue }
                    let shown = "\(element.id):\(name)"
                    guard let descriptor = cache.image.manifest.layers.first(where: { $0.digest == layer.digest }) else {
                        progress.line("warning: the cache lists layer '\(shown)' but holds no blob for it; it is rebuilt")
                        continue
                    }
                    do {
                        let host = try extract(descriptor, from: cache.layout, escaped: escaped, name: name)
                        try write(LayerTOML(metadata: layer.data), name: name, in: directory)
                        try prepare(host)
                        restored.record(escaped: escaped, layer: name, .init(descriptor: descriptor, cache: cache.layout))
                        fromTheCache.insert(escaped + "/" + name)
                        progress.line("Restored layer '\(shown)' from the cache (\(layer.digest.hex.prefix(12)))")
                    } catch {
                        progress.line("warning: cached layer '\(shown)' cannot be used: \(error); it is rebuilt")
                    }
                }
            }
        } catch {
            throw LifecycleError("restore: \(error)", exitCode: LifecycleError.Code.restoreFailed)
        }
        if let previous, let sbom = previous.metadata.sbom, !reusable.isEmpty {
            restoreSBOMs(sbom, of: previous.image, in: previous.layout, kind: "launch", for: reusable)
        }
        if let cache, let sbom = cache.metadata.sbom, !fromTheCache.isEmpty {
            restoreSBOMs(sbom, of: cache.image, in: cache.layout, kind: "cache", for: fromTheCache)
        }
        return reusable
    }

    /// The SBOM files of restored layers, from an image's SBOM layer
    /// (`layers/sbom/<kind>/<id>/<layer>/sbom.<ext>`) back beside their layers as the buildpack
    /// wrote them (`<layer>.sbom.<ext>`), read confined. A layer that cannot have them back only
    /// loses them, with a warning.
    private func restoreSBOMs(_ diffID: Digest, of image: Image, in layout: ImageLayout, kind: String, for restoredLayers: Set<String>) {
        let staging = scratchDirectory + "/sbom-" + kind
        mkdir(staging, 0o700)
        // Scratch space: what cannot be removed goes with the scratch directory.
        defer { try? removeTree(atPath: staging) }
        do {
            guard let index = image.config.diffIDs.firstIndex(of: diffID) else {
                throw OCIError(.malformed, "the SBOM layer \(diffID) is not among the image's layers")
            }
            let root = open(staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard root >= 0 else { throw OCIError.system("open", staging) }
            defer { close(root) }
            try LayerExtractor(budget: budget).extract(image.manifest.layers[index], from: layout, into: root, rootPath: staging)
            let source = try ConfinedDirectory(path: staging)
            let layers = try ConfinedDirectory(path: layersDirectory)
            for key in restoredLayers.sorted() {
                let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { continue }
                for ext in SBOMFile.mediaTypes.keys.sorted() {
                    guard let bytes = try source.readFileIfPresent("layers/sbom/\(kind)/\(parts[0])/\(parts[1])/sbom.\(ext)",
                                                                   limit: Builder.sbomLimit) else { continue }
                    try layers.writeFile("\(parts[0])/\(parts[1]).sbom.\(ext)", contents: bytes)
                }
            }
        } catch {
            progress.line("warning: the SBOMs of the \(kind == "cache" ? "cache" : "previous image") cannot be restored: \(error)")
        }
    }

    private func write(_ layer: LayerTOML, name: String, in directory: ConfinedDirectory) throws(SpecError) {
        try directory.writeFile(name + ".toml", contents: Array(TOML.render(layer.tomlTable(includingTypes: false)).utf8))
    }

    /// Extracts a cached layer into a staging directory, then moves the one directory it must
    /// hold into place, found without following any link: a blob that fails its digest halfway,
    /// or a tar that plants links, leaves nothing in the layers. The moved tree must then archive
    /// to the cached blob's very bytes; anything else in that blob (other paths, whiteouts,
    /// devices, foreign owners, extra PAX records) would otherwise enter the image by digest.
    private func extract(_ descriptor: Descriptor, from layout: ImageLayout, escaped: String, name: String)
        throws(OCIError) -> String {
        let staging = scratchDirectory + "/restore-" + descriptor.digest.hex.prefix(16)
        mkdir(staging, 0o700)
        let root = open(staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { throw OCIError.system("open", staging) }
        defer {
            close(root)
            try? removeTree(atPath: staging)
        }
        try LayerExtractor(budget: budget).extract(descriptor, from: layout, into: root, rootPath: staging)
        let source = LayerExtractor.openBeneath(root, "layers/" + escaped)
        var st = stat()
        guard source >= 0 else { throw OCIError(.malformed, "the cached tar does not hold layers/\(escaped) as a directory") }
        defer { close(source) }
        guard fstatat(source, name, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            throw OCIError(.malformed, "the cached tar does not hold layers/\(escaped)/\(name) as a directory")
        }
        let destinationPath = layersDirectory + "/" + escaped
        let destination = open(destinationPath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard destination >= 0 else { throw OCIError.system("open", destinationPath) }
        defer { close(destination) }
        try LayerExtractor.remove(name, in: destination, path: destinationPath + "/" + name)
        guard renameat(source, name, destination, name) == 0 else { throw OCIError.system("rename", destinationPath + "/" + name) }
        let host = destinationPath + "/" + name
        let canonical = try Exporter.archiveLayer(host, escaped: escaped, name: name, user: user, into: nil)
        guard canonical.digest == descriptor.digest else {
            try LayerExtractor.remove(name, in: destination, path: host)
            throw OCIError(.digestMismatch, "its blob is not the tar stockade writes for the files it holds")
        }
        return host
    }
}
