import BuildpackSpec
import CrashSafety
import Glibc
import JSON
import OCI

/// `--cache-dir`: an OCI image layout whose image tagged `cache` has one layer per `cache = true`
/// layer, in the same bytes as an image layer, and the layer metadata in a label. Saving writes
/// the new blobs first and moves the tag last, so a build killed at any moment leaves the old
/// cache whole.
public struct LayerCache {
    public static let tag = "cache"
    static let label = "io.stockade.cache.metadata"
    public let path: String
    /// What saving is charged to.
    public var budget: DiskAccount?

    public init(path: String, budget: DiskAccount? = nil) {
        self.path = path
        self.budget = budget
    }

    public struct Contents {
        public var layout: ImageLayout
        public var image: Image
        public var metadata: LifecycleMetadata
    }

    /// The cache as it is, or nil (with a warning) when it is missing or unreadable.
    public func load(progress: any ProgressReporter) -> Contents? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        do throws(OCIError) {
            let layout = try ImageLayout.open(path)
            guard try layout.tags().contains(Self.tag) else { return nil }
            let image = try layout.image(tag: Self.tag)
            guard let metadata = LifecycleMetadata(label: image.config.labels[Self.label]) else {
                progress.line("warning: the cache in \(path) has no readable metadata; it is rebuilt")
                return nil
            }
            return Contents(layout: layout, image: image, metadata: metadata)
        } catch {
            progress.line("warning: the cache in \(path) cannot be used: \(error); it is rebuilt")
            return nil
        }
    }

    /// Saves every `cache = true` layer with a directory.
    public func save(layersDirectory: String, group: [GroupElement], user: EntryOwner, restored: RestoredLayers,
                     progress: any ProgressReporter) throws(LifecycleError) {
        do {
            let layout = try openForSaving(progress: progress)
            let layers = try ConfinedDirectory(path: layersDirectory)
            var metadata = LifecycleMetadata()
            var descriptors: [Descriptor] = []
            for element in group {
                let escaped = BuildpackID.escape(element.id)
                var recorded = LifecycleMetadata.Buildpack(id: element.id, version: element.version)
                guard try layers.kind(of: escaped) == .directory else { continue }
                let scan = try BuildpackLayers.scan(try layers.subdirectory(escaped), buildpack: element.description)
                for layer in scan.layers {
                    guard let types = layer.metadata, types.cache else { continue }
                    guard layer.contentKind == .directory else {
                        progress.line("warning: cache layer '\(element.id):\(layer.name)' has no directory; not cached")
                        continue
                    }
                    let host = layersDirectory + "/" + escaped + "/" + layer.name
                    let descriptor = try restored.unchanged(escaped: escaped, layer: layer.name, into: layout)
                        ?? Exporter.archiveLayer(host, escaped: escaped, name: layer.name, user: user, into: layout)
                    descriptors.append(descriptor)
                    recorded.layers[layer.name] = .init(digest: descriptor.digest, data: types.metadata,
                                                        build: types.build, launch: types.launch, cache: true)
                }
                metadata.buildpacks.append(recorded)
            }
            let layerCount = descriptors.count
            if try Exporter.hasSBOMs("cache", in: layers) {
                let descriptor = try Exporter.archiveSBOMs("cache", in: layers, user: user, into: layout)
                descriptors.append(descriptor)
                metadata.sbom = descriptor.digest
            }
            var config = ImageConfig(platform: Platform(os: "linux", architecture: ImageLayout.hostArchitecture))
            config.diffIDs = descriptors.map(\.digest)
            config.labels[Self.label] = metadata.json.text
            let configBlob = try layout.writeJSON(config.json, mediaType: MediaType.config)
            let manifest = try layout.writeJSON(ImageManifest(config: configBlob, layers: descriptors).json,
                                                mediaType: MediaType.manifest)
            FaultPoint.cacheBlobsWritten.reached()
            try layout.setTag(Self.tag, to: manifest)
            FaultPoint.cacheTagMoved.reached()
            try layout.removeUnreferencedBlobs()
            progress.line("Cache saved to \(path) (\(layerCount) layer\(layerCount == 1 ? "" : "s")\(metadata.sbom == nil ? "" : " and their SBOMs"))")
        } catch let error as LifecycleError {
            throw error
        } catch let error as OCIError where error.kind == .overBudget {
            throw LifecycleError("cannot save the cache: \(error)", exitCode: LifecycleError.Code.exportOverBudget)
        } catch {
            throw LifecycleError("cannot save the cache: \(error)", exitCode: LifecycleError.Code.exportFailed)
        }
    }

    /// The cache's layout; a damaged one of ours gets a fresh index (its blobs are checked when read).
    private func openForSaving(progress: any ProgressReporter) throws(OCIError) -> ImageLayout {
        let opened = Result { () throws(OCIError) -> ImageLayout in
            let layout = try ImageLayout.openOrCreate(path, budget: budget)
            _ = try layout.index()
            return layout
        }
        switch opened {
        case .success(let layout): return layout
        case .failure(let error) where error.kind == .malformed:
            progress.line("warning: the cache index in \(path) is damaged (\(error)); it is replaced")
            return try Self.recreate(path, budget: budget)
        case .failure(let error): throw error
        }
    }

    /// A fresh index over the blobs there are. Whatever stands where `blobs` or `blobs/sha256`
    /// must be a directory (a link, a file) is removed itself; a link's target is never touched.
    private static func recreate(_ path: String, budget: DiskAccount?) throws(OCIError) -> ImageLayout {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw OCIError.system("open", path) }
        defer { close(fd) }
        try realDirectory(fd, "blobs", path: path)
        let blobs = openat(fd, "blobs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard blobs >= 0 else { throw OCIError.system("open", path + "/blobs") }
        defer { close(blobs) }
        try realDirectory(blobs, "sha256", path: path + "/blobs")
        try ImageLayout.initialize(fd, path: path)
        return try ImageLayout.open(path, budget: budget)
    }

    private static func realDirectory(_ parent: Int32, _ name: String, path: String) throws(OCIError) {
        var st = stat()
        if fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mode & S_IFMT != S_IFDIR {
            guard unlinkat(parent, name, 0) == 0 else { throw OCIError.system("remove", path + "/" + name) }
        }
        if mkdirat(parent, name, 0o755) != 0 && errno != EEXIST { throw OCIError.system("mkdir", path + "/" + name) }
    }
}
