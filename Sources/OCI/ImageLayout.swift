import CrashSafety
import Glibc
import JSON

/// An OCI image layout on disk (image-spec 1.1 `image-layout.md`): `oci-layout`, `index.json` and
/// `blobs/sha256/<hex>`. Blobs are written under a temporary name and linked in by digest; the
/// index is replaced last, atomically, so an export that fails or is killed leaves every image the
/// layout already held intact.
public final class ImageLayout: Sendable {
    public let path: String
    let fd: Int32
    let blobs: Int32
    /// What every blob written here is charged to.
    public let budget: DiskAccount?

    /// The most a manifest, index or config may hold; registries refuse manifests over 4 MiB.
    public static let documentLimit = 4 << 20

    private init(path: String, fd: Int32, blobs: Int32, budget: DiskAccount?) {
        self.path = path
        self.fd = fd
        self.blobs = blobs
        self.budget = budget
    }

    deinit {
        close(blobs)
        close(fd)
    }

    /// An existing layout; anything else is an error.
    public static func open(_ path: String, budget: DiskAccount? = nil) throws(OCIError) -> ImageLayout {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            let err = errno
            throw OCIError(err == ENOENT ? .notFound : .io,
                           "\(path) is not an OCI image layout: \(String(cString: strerror(err)))", path: path, errno: err)
        }
        return try open(fd: fd, path: path, budget: budget)
    }

    private static func open(fd: Int32, path: String, budget: DiskAccount?) throws(OCIError) -> ImageLayout {
        guard let marker = try? readSmallFile(fd, "oci-layout", path: path + "/oci-layout", limit: 4096),
              case .some(let json) = try? JSONParser.parse(marker),
              let version = json["imageLayoutVersion"]?.stringValue, version.hasPrefix("1.")
        else {
            close(fd)
            throw OCIError(.malformed, "\(path) is not an OCI image layout (no valid oci-layout file)", path: path)
        }
        // One component at a time: O_NOFOLLOW covers only the last one, and a `blobs` link
        // would send every write and delete elsewhere.
        let parent = openat(fd, "blobs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        let blobs = parent < 0 ? -1 : openat(parent, "sha256", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if parent >= 0 { close(parent) }
        guard blobs >= 0 else {
            close(fd)
            throw OCIError(.malformed, "\(path) is not a complete OCI image layout: blobs/sha256 is missing or not a directory",
                           path: path)
        }
        return ImageLayout(path: path, fd: fd, blobs: blobs, budget: budget)
    }

    /// The layout at `path`, created when the directory is missing or empty. A directory holding
    /// anything else is refused and left as it is.
    public static func openOrCreate(_ path: String, budget: DiskAccount? = nil) throws(OCIError) -> ImageLayout {
        // A layout this run creates goes again if the run dies before it holds a tag.
        CleanupJournal.record(.layout, path)
        if mkdir(path, 0o755) != 0 {
            let err = errno
            CleanupJournal.record(.forget, path)
            if err != EEXIST { throw OCIError.system("mkdir", path, err) }
        }
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw OCIError.system("open", path) }
        var st = stat()
        if fstatat(fd, "oci-layout", &st, AT_SYMLINK_NOFOLLOW) == 0 { return try open(fd: fd, path: path, budget: budget) }
        let empty: Bool
        do {
            empty = try DirectoryEntries.read(fd, path: path).isEmpty
        } catch {
            close(fd)
            throw error
        }
        guard empty else {
            close(fd)
            throw OCIError(.notALayout, "\(path) holds files and is not an OCI image layout; it is left as it is", path: path)
        }
        do {
            try initialize(fd, path: path)
        } catch {
            close(fd)
            throw error
        }
        return try open(fd: fd, path: path, budget: budget)
    }

    /// Writes an empty index and the layout marker into the directory `fd`, with `blobs/sha256`.
    public static func initialize(_ fd: Int32, path: String) throws(OCIError) {
        mkdirat(fd, "blobs", 0o755)
        mkdirat(fd, "blobs/sha256", 0o755)
        try writeAtomically(fd, "index.json", Array(ImageIndex().json.text.utf8), path: path)
        try writeAtomically(fd, "oci-layout", Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8), path: path)
    }

    /// Deletes blobs that no tagged image refers to (the cache's old layers). Best effort: a blob
    /// that cannot be read as a document keeps everything.
    public func removeUnreferencedBlobs() throws(OCIError) {
        guard flock(fd, LOCK_EX) == 0 else { throw OCIError.system("flock", path) }
        defer { flock(fd, LOCK_UN) }
        var keep: Set<String> = []
        for entry in try index().manifests {
            keep.insert(entry.digest.hex)
            guard entry.mediaType == MediaType.manifest,
                  let manifest = try? ImageManifest(json: try readJSON(entry), in: path) else { return }
            keep.insert(manifest.config.digest.hex)
            for layer in manifest.layers { keep.insert(layer.digest.hex) }
        }
        let names = try DirectoryEntries.read(blobs, path: path + "/blobs/sha256").map(\.name)
        for name in names where Digest("sha256:" + name) != nil && !keep.contains(name) {
            var st = stat()
            if fstatat(blobs, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mode & S_IFMT == S_IFREG { unlinkat(blobs, name, 0) }
        }
    }

    // MARK: - index and tags

    public func index() throws(OCIError) -> ImageIndex {
        let bytes = try Self.readSmallFile(fd, "index.json", path: path + "/index.json", limit: Self.documentLimit)
        do {
            return try ImageIndex(json: try JSONParser.parse(bytes, maxBytes: Self.documentLimit), in: path + "/index.json")
        } catch let error as JSONError {
            throw OCIError(.malformed, "\(path)/index.json: \(error)")
        } catch let error as OCIError {
            throw error
        } catch {
            throw OCIError(.malformed, "\(path)/index.json: \(error)")
        }
    }

    /// The tags of the layout's index, in order.
    public func tags() throws(OCIError) -> [String] {
        try index().manifests.compactMap { $0.annotations[refNameAnnotation] }
    }

    /// The manifest named `tag`. An index entry that is itself an index is searched for `platform`.
    public func manifestDescriptor(tag: String, platform: Platform? = nil) throws(OCIError) -> Descriptor {
        let entries = try index().manifests.filter { $0.annotations[refNameAnnotation] == tag }
        guard var descriptor = entries.last else {
            let known = (try? tags()) ?? []
            throw OCIError(.notFound, "\(path) has no image tagged \(tag)"
                + (known.isEmpty ? " (it holds no tags)" : " (tags: \(known.joined(separator: ", ")))"))
        }
        if descriptor.mediaType == MediaType.index || descriptor.mediaType == MediaType.dockerManifestList {
            let nested = try ImageIndex(json: try readJSON(descriptor), in: "\(path):\(tag)")
            let wanted = platform ?? Platform(os: "linux", architecture: Self.hostArchitecture)
            guard let match = nested.manifests.first(where: {
                $0.platform?.os == wanted.os && $0.platform?.architecture == wanted.architecture
            }) else {
                throw OCIError(.notFound, "\(path):\(tag) has no image for \(wanted.description)")
            }
            descriptor = match
        }
        guard descriptor.mediaType == MediaType.manifest || descriptor.mediaType == MediaType.dockerManifest else {
            throw OCIError(.malformed, "\(path):\(tag) is a \(descriptor.mediaType), not an image manifest")
        }
        return descriptor
    }

    /// The image tagged `tag`: its manifest and config, both checked against their digests.
    public func image(tag: String) throws(OCIError) -> Image {
        let descriptor = try manifestDescriptor(tag: tag)
        let manifest = try ImageManifest(json: try readJSON(descriptor), in: "\(path):\(tag) manifest")
        let config = try ImageConfig(json: try readJSON(manifest.config), in: "\(path):\(tag) config")
        guard config.diffIDs.count == manifest.layers.count else {
            throw OCIError(.malformed, "\(path):\(tag): the config lists \(config.diffIDs.count) diff_ids for \(manifest.layers.count) layers")
        }
        return Image(descriptor: descriptor, manifest: manifest, config: config)
    }

    /// The one image of a layout that holds one, tagged or not (a `.cnb` file as pack writes it).
    public func soleImage() throws(OCIError) -> Image {
        let entries = try index().manifests
        guard entries.count == 1 else { throw OCIError(.malformed, "\(path) holds \(entries.count) images, not one") }
        if let tag = entries[0].annotations[refNameAnnotation] { return try image(tag: tag) }
        let descriptor = entries[0]
        guard descriptor.mediaType == MediaType.manifest || descriptor.mediaType == MediaType.dockerManifest else {
            throw OCIError(.malformed, "\(path): its image is a \(descriptor.mediaType), not an image manifest")
        }
        let manifest = try ImageManifest(json: try readJSON(descriptor), in: "\(path) manifest")
        let config = try ImageConfig(json: try readJSON(manifest.config), in: "\(path) config")
        guard config.diffIDs.count == manifest.layers.count else {
            throw OCIError(.malformed, "\(path): the config lists \(config.diffIDs.count) diff_ids for \(manifest.layers.count) layers")
        }
        return Image(descriptor: descriptor, manifest: manifest, config: config)
    }

    /// Names `manifest` `tag` in the index, replacing what the tag named before. The index is
    /// written to a temporary file and renamed over the old one: readers see the old or the new
    /// index, never a mix, and a failure leaves the old one.
    public func setTag(_ tag: String, to manifest: Descriptor) throws(OCIError) {
        guard flock(fd, LOCK_EX) == 0 else { throw OCIError.system("flock", path) }
        defer { flock(fd, LOCK_UN) }
        var index = try index()
        index.manifests.removeAll { $0.annotations[refNameAnnotation] == tag }
        var entry = manifest
        entry.annotations[refNameAnnotation] = tag
        index.manifests.append(entry)
        try Self.writeAtomically(fd, "index.json", Array(index.json.text.utf8), path: path)
    }

    // MARK: - blobs

    /// Whether the layout holds `descriptor`'s blob at its size. Content is checked when it is read.
    public func hasBlob(_ descriptor: Descriptor) -> Bool {
        var st = stat()
        return fstatat(blobs, descriptor.digest.hex, &st, AT_SYMLINK_NOFOLLOW) == 0
            && st.st_mode & S_IFMT == S_IFREG && Int64(st.st_size) == descriptor.size
    }

    /// A blob read whole and checked against its digest and size.
    public func readBlob(_ descriptor: Descriptor, limit: Int) throws(OCIError) -> [UInt8] {
        guard descriptor.size <= Int64(limit) else {
            throw OCIError(.malformed, "\(path): blob \(descriptor.digest) is \(descriptor.size) bytes; at most \(limit) are read")
        }
        let bytes = try Self.readSmallFile(blobs, descriptor.digest.hex, path: path + "/" + descriptor.digest.blobPath,
                                           limit: limit)
        guard Int64(bytes.count) == descriptor.size, Digest.of(bytes) == descriptor.digest else {
            throw OCIError(.digestMismatch, "\(path): blob \(descriptor.digest) does not match its digest or size")
        }
        return bytes
    }

    func readJSON(_ descriptor: Descriptor) throws(OCIError) -> JSONValue {
        let bytes = try readBlob(descriptor, limit: Self.documentLimit)
        do {
            return try JSONParser.parse(bytes, maxBytes: Self.documentLimit)
        } catch {
            throw OCIError(.malformed, "\(path): blob \(descriptor.digest) is not valid JSON: \(error)")
        }
    }

    /// Opens a blob for streaming reads (layers). The caller checks the digest as it reads.
    public func openBlob(_ descriptor: Descriptor) throws(OCIError) -> Int32 {
        let fd = openat(blobs, descriptor.digest.hex, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let err = errno
            throw OCIError(err == ENOENT ? .notFound : .io,
                           "\(path): blob \(descriptor.digest) is missing: \(String(cString: strerror(err)))", errno: err)
        }
        return fd
    }

    /// Removes a blob that was stored but must not be kept (it did not hash to what was asked for).
    public func removeBlob(_ digest: Digest) {
        unlinkat(blobs, digest.hex, 0)
    }

    @discardableResult
    public func writeBlob(_ bytes: [UInt8], mediaType: String) throws(OCIError) -> Descriptor {
        let writer = try BlobWriter(layout: self)
        try writer.write(bytes[...])
        return try writer.commit(mediaType: mediaType)
    }

    public func writeJSON(_ value: JSONValue, mediaType: String) throws(OCIError) -> Descriptor {
        try writeBlob(Array(value.text.utf8), mediaType: mediaType)
    }

    /// Brings `descriptor`'s blob over from `source`. A blob the caller has already hashed this
    /// run (`verified`) is hard-linked when both layouts share a file system; any other is copied
    /// and hashed on the way, so a corrupt source blob never enters this layout.
    public func importBlob(_ descriptor: Descriptor, from source: ImageLayout, verified: Bool = false) throws(OCIError) {
        if hasBlob(descriptor) { return }
        if verified, source.hasBlob(descriptor),
           linkat(source.blobs, descriptor.digest.hex, blobs, descriptor.digest.hex, 0) == 0 {
            return
        }
        if let budget, UInt64(max(descriptor.size, 0)) > budget.remaining {
            throw budget.overdrawn(UInt64(descriptor.size), for: "\(source.path): blob \(descriptor.digest), copied into \(path),")
        }
        let input = try source.openBlob(descriptor)
        defer { close(input) }
        let writer = try BlobWriter(layout: self)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw OCIError.system("read", source.path + "/" + descriptor.digest.blobPath) }
            if n == 0 { break }
            try writer.write(buffer[0..<n])
        }
        let written = try writer.commit(mediaType: descriptor.mediaType)
        guard written.digest == descriptor.digest, written.size == descriptor.size else {
            throw OCIError(.digestMismatch, "\(source.path): blob \(descriptor.digest) does not match its digest (it hashes to \(written.digest))")
        }
    }

    // MARK: - files

    /// linux/<this> in the image spec's names (amd64, arm64).
    public static var hostArchitecture: String {
        var names = utsname()
        uname(&names)
        let machine = withUnsafeBytes(of: &names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return ["x86_64": "amd64", "aarch64": "arm64"][machine] ?? machine
    }

    static func readSmallFile(_ dirfd: Int32, _ name: String, path: String, limit: Int) throws(OCIError) -> [UInt8] {
        let fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw OCIError.system("open", path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw OCIError(.malformed, "\(path) is not a regular file", path: path)
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw OCIError.system("read", path) }
            if n == 0 { break }
            bytes += chunk[0..<n]
            if bytes.count > limit { throw OCIError(.malformed, "\(path) is larger than \(limit) bytes", path: path) }
        }
        return bytes
    }

    static func writeAtomically(_ dirfd: Int32, _ name: String, _ bytes: [UInt8], path: String) throws(OCIError) {
        let temporary = ".\(name).\(getpid()).tmp"
        unlinkat(dirfd, temporary, 0)  // a leftover of a killed run with the same pid
        CleanupJournal.record(.file, path + "/" + temporary)
        defer { CleanupJournal.record(.forget, path + "/" + temporary) }
        let fd = openat(dirfd, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw OCIError.system("create", path + "/" + temporary) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                let err = errno
                close(fd)
                unlinkat(dirfd, temporary, 0)
                throw OCIError.system("write", path + "/" + name, err)
            }
            offset += n
        }
        let synced = fsync(fd) == 0
        let err = errno
        close(fd)
        if name == "index.json" { FaultPoint.indexRename.reached() }
        guard synced, renameat(dirfd, temporary, dirfd, name) == 0 else {
            unlinkat(dirfd, temporary, 0)
            throw OCIError.system("write", path + "/" + name, synced ? errno : err)
        }
    }
}

/// One image of a layout: its manifest's descriptor, the manifest and the config.
public struct Image: Sendable {
    public var descriptor: Descriptor
    public var manifest: ImageManifest
    public var config: ImageConfig

    public init(descriptor: Descriptor, manifest: ImageManifest, config: ImageConfig) {
        self.descriptor = descriptor
        self.manifest = manifest
        self.config = config
    }
}

/// A blob written as a stream and hashed on the way: an unnamed file in `blobs/sha256` that gets
/// its digest as its name on `commit`. Dropped before that, it leaves nothing behind.
public final class BlobWriter {
    /// nil: the bytes are only hashed (to learn what digest a tree would have).
    private let layout: ImageLayout?
    private let fd: Int32
    private let hasher: SHA256?
    private let background: BackgroundHasher?
    private var size: Int64 = 0
    private var committed = false

    /// `background`: hash on a second thread (layers); small documents hash inline.
    public init(layout: ImageLayout?, background: Bool = false) throws(OCIError) {
        self.layout = layout
        if let layout {
            fd = openat(layout.blobs, ".", LinuxFlags.O_TMPFILE | O_WRONLY | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw OCIError.system("create a blob in", layout.path + "/blobs/sha256") }
        } else {
            fd = open("/dev/null", O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw OCIError.system("open", "/dev/null") }
        }
        self.background = background ? BackgroundHasher() : nil
        self.hasher = background ? nil : SHA256()
    }

    deinit {
        close(fd)
        if !committed { _ = background?.finish() }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(OCIError) {
        try layout?.budget?.charge(UInt64(bytes.count), for: "a blob of \(layout!.path)")
        hasher?.update(bytes)
        background?.update(bytes)
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw OCIError.system("write a blob to", (layout?.path ?? "") + "/blobs/sha256") }
            offset += n
        }
        size += Int64(bytes.count)
    }

    public func write(_ bytes: ArraySlice<UInt8>) throws(OCIError) {
        try bytes.withUnsafeBytes { (b) -> Result<Void, OCIError> in Result { () throws(OCIError) in try write(b) } }.get()
    }

    public func commit(mediaType: String) throws(OCIError) -> Descriptor {
        precondition(!committed)
        committed = true
        let digest = background?.finish() ?? hasher!.finish()
        let descriptor = Descriptor(mediaType: mediaType, digest: digest, size: size)
        guard let layout else { return descriptor }
        if layout.hasBlob(descriptor) { return descriptor }
        unlinkat(layout.blobs, digest.hex, 0)  // a wrong-sized leftover of an interrupted copy
        guard linkat(AT_FDCWD, "/proc/self/fd/\(fd)", layout.blobs, digest.hex, AT_SYMLINK_FOLLOW) == 0 else {
            if errno == EEXIST && layout.hasBlob(descriptor) { return descriptor }
            throw OCIError.system("link", layout.path + "/" + digest.blobPath)
        }
        return descriptor
    }
}

enum LinuxFlags {
    static let O_TMPFILE: Int32 = 0o20200000
}
