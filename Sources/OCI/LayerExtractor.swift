import CArchive
import CLinux
import Glibc
import SystemCalls
import SystemPackage

/// Applies tar layers to a directory, as a container runtime unpacks an image: entries are made
/// relative to the directory and created through it (`openat2` with `RESOLVE_IN_ROOT`), so no
/// name, `..` or symbolic link in a layer reaches outside; whiteouts delete what lower layers
/// put there. Gzip and zstd layers are read through libarchive's filters. The blob is hashed as
/// it is read and a digest that does not match fails the extraction.
public struct LayerExtractor {
    /// Maps an entry's uid and gid to the host's, when the extraction may chown (root).
    public var owners: (@Sendable (UInt32, UInt32) -> (uid: UInt32, gid: UInt32)?)?
    /// What every file and directory created is charged to, in whole blocks, before it is written.
    public var budget: DiskAccount?
    /// For trees kept and shared (a builder's store): a device, FIFO or socket, or an entry whose
    /// path passes through a symbolic link, is refused rather than skipped or resolved in the tree.
    public var strict = false

    public init(owners: (@Sendable (UInt32, UInt32) -> (uid: UInt32, gid: UInt32)?)? = nil, budget: DiskAccount? = nil) {
        self.owners = owners
        self.budget = budget
    }

    /// Extracts `layer` of `layout` into the directory `root` (a descriptor).
    public func extract(_ layer: Descriptor, from layout: ImageLayout, into root: Int32, rootPath: String) throws(OCIError) {
        let fd = try layout.openBlob(layer)
        defer { close(fd) }
        let source = BlobSource(fd: fd)
        let label = "layer \(layer.digest)"
        try read(source, label: label, image: layout.path, into: root, rootPath: rootPath,
                 notTar: "\(layout.path): \(label) is not a tar")
        let digest = source.hasher.finish()
        guard digest == layer.digest, source.size == layer.size else {
            throw OCIError(.digestMismatch, "\(layout.path): layer \(layer.digest) does not match its digest (it hashes to \(digest))")
        }
    }

    /// Extracts the tar file at `path` (gzip or zstd or plain): a `.tgz` buildpack, a `.cnb` package.
    public func extract(archive path: String, into root: Int32, rootPath: String) throws(OCIError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw OCIError.system("open", path) }
        defer { close(fd) }
        try read(BlobSource(fd: fd), label: path, image: path, into: root, rootPath: rootPath, notTar: "\(path) is not a tar")
    }

    private func read(_ source: BlobSource, label: String, image: String, into root: Int32, rootPath: String,
                      notTar: String) throws(OCIError) {
        _ = ArchiveLocale.utf8Names
        let archive = archive_read_new()!
        defer { archive_read_free(archive) }
        archive_read_support_filter_gzip(archive)
        archive_read_support_filter_zstd(archive)
        archive_read_support_format_tar(archive)
        let context = Unmanaged.passUnretained(source).toOpaque()
        guard archive_read_open2(archive, context, nil, { _, context, out in
            let source = Unmanaged<BlobSource>.fromOpaque(context!).takeUnretainedValue()
            return source.next(out!)
        }, nil, nil) == ARCHIVE_OK else {
            throw OCIError(.malformed, "\(notTar): \(LayerWriter.message(archive))")
        }
        let directories = DirectoryCache(root: root, rootPath: rootPath, strict: strict)
        var entry: OpaquePointer?
        while true {
            let status = archive_read_next_header(archive, &entry)
            if status == ARCHIVE_EOF { break }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else {
                throw OCIError(.malformed, "\(image): \(label): \(LayerWriter.message(archive))")
            }
            try apply(entry, archive: archive, directories: directories, label: label, image: image)
        }
        // Hash the rest (the end-of-archive padding) before comparing.
        source.drain()
        if let failure = source.failure { throw failure }
    }

    /// Where an entry goes: its parent directory (a descriptor the cache owns) and its name there.
    private struct Placement {
        /// The entry's name as the layer wrote it, for messages.
        let path: String
        let parent: Int32
        let name: String
        /// The parent, relative to the root ("" for the root itself).
        let directory: String
        /// The entry, relative to the root.
        var relative: String { directory.isEmpty ? name : directory + "/" + name }
        /// The entry on the host, for messages.
        let shown: String
    }

    /// One tar entry: a whiteout, a hard link, or a directory, file or symbolic link made in place.
    private func apply(_ entry: OpaquePointer, archive: OpaquePointer, directories: DirectoryCache, label: String,
                       image: String) throws(OCIError) {
        guard let place = try placement(of: entry, directories: directories, label: label) else { return }
        // Whiteouts hide what lower layers put there, never what this layer wrote before them.
        if place.name == ".wh..wh..opq" { return try removeOpaquely(place, directories: directories) }
        if place.name.hasPrefix(".wh.") { return try whiteOut(place, directories: directories, label: label) }
        directories.written.insert(place.relative)
        let mode = mode_t(archive_entry_perm(entry)) & 0o1777  // never setuid or setgid on the host
        if let hardlink = archive_entry_hardlink_utf8(entry) ?? archive_entry_hardlink(entry) {
            return try link(place, to: String(cString: hardlink), directories: directories, label: label)
        }
        let charged = "\(image): \(label): \(place.path)"
        switch mode_t(archive_entry_filetype(entry)) {
        case S_IFDIR: try makeDirectory(entry, place, mode: mode, charged: charged)
        case S_IFREG: try writeFile(entry, archive: archive, place, mode: mode, label: label, charged: charged)
        case S_IFLNK: try makeSymbolicLink(entry, place, label: label)
        // Devices and FIFOs: an unprivileged extraction cannot make them and nothing here needs them.
        default:
            if strict { throw OCIError(.unsupportedContent, "\(label): \(place.path) is a device, FIFO or socket") }
            return
        }
    }

    /// The entry's parent, opened beneath the root, and its name; nil for the root itself.
    private func placement(of entry: OpaquePointer, directories: DirectoryCache, label: String) throws(OCIError) -> Placement? {
        guard let raw = archive_entry_pathname_utf8(entry) ?? archive_entry_pathname(entry) else {
            throw OCIError(.malformed, "\(label): an entry has a name that cannot be read")
        }
        let path = String(cString: raw)
        var components = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
        guard !components.isEmpty else { return nil }
        guard !components.contains("..") else {
            throw OCIError(.malformed, "\(label): entry \(path) climbs out with ..")
        }
        let name = components.removeLast()
        let parent = try directories.open(components)
        let directory = components.joined(separator: "/")
        return Placement(path: path, parent: parent, name: name, directory: directory,
                         shown: directories.rootPath + "/" + (directory.isEmpty ? name : directory + "/" + name))
    }

    /// `.wh..wh..opq`: empties the directory of what lower layers put there.
    private func removeOpaquely(_ place: Placement, directories: DirectoryCache) throws(OCIError) {
        let prefix = place.directory.isEmpty ? "" : place.directory + "/"
        let keep = Set(directories.written.compactMap { written -> String? in
            guard written.hasPrefix(prefix) else { return nil }
            let rest = written.dropFirst(prefix.count)
            return rest.contains("/") ? nil : String(rest)
        })
        try Self.removeChildren(of: place.parent, path: place.shown, keeping: keep)
    }

    /// `.wh.NAME`: removes NAME, unless this layer wrote it.
    private func whiteOut(_ place: Placement, directories: DirectoryCache, label: String) throws(OCIError) {
        // `.wh..` and `.wh...` would name the directory itself or, at the root, the host directory above it.
        let target = String(place.name.dropFirst(4))
        guard !target.isEmpty, target != ".", target != ".." else {
            throw OCIError(.malformed, "\(label): whiteout \(place.path) names no file")
        }
        if !directories.written.contains(place.directory.isEmpty ? target : place.directory + "/" + target) {
            try Self.remove(target, in: place.parent, path: place.shown)
        }
    }

    /// A hard link to an entry already extracted, found beneath the root.
    private func link(_ place: Placement, to hardlink: String, directories: DirectoryCache, label: String) throws(OCIError) {
        var target = hardlink.split(separator: "/").map(String.init).filter { $0 != "." }
        guard !target.contains(".."), let targetName = target.popLast() else {
            throw OCIError(.malformed, "\(label): hard link \(place.path) points outside")
        }
        // Its own descriptor: the parent belongs to the directory cache and must stay open.
        let targetParent = target.isEmpty ? dup(directories.root)
            : (try? DirectoryCache.resolve(directories.root, target.joined(separator: "/"), strict: strict)) ?? -1
        guard targetParent >= 0 else {
            throw OCIError(.malformed, "\(label): hard link \(place.path) points to \(target.joined(separator: "/")), which is not a directory in the image")
        }
        defer { close(targetParent) }
        try Self.remove(place.name, in: place.parent, path: place.shown)
        guard linkat(targetParent, targetName, place.parent, place.name, 0) == 0 else { throw OCIError.system("link", place.shown) }
    }

    /// A directory, replacing anything else of that name; one already there is kept and re-moded.
    private func makeDirectory(_ entry: OpaquePointer, _ place: Placement, mode: mode_t, charged: String) throws(OCIError) {
        var st = stat()
        let exists = fstatat(place.parent, place.name, &st, AT_SYMLINK_NOFOLLOW) == 0
        if exists && st.st_mode & S_IFMT != S_IFDIR {
            try Self.remove(place.name, in: place.parent, path: place.shown)
        }
        if !exists || st.st_mode & S_IFMT != S_IFDIR {
            try budget?.charge(DiskAccount.blocks(1), for: charged)
        }
        if mkdirat(place.parent, place.name, 0o700) != 0 && errno != EEXIST { throw OCIError.system("mkdir", place.shown) }
        // Owner write stays on while extracting; later layers may add to the directory.
        fchmodat(place.parent, place.name, mode | 0o700, 0)
        try chown(entry, place.parent, place.name, place.shown)
    }

    /// A regular file, created afresh (never through what was there) and written block by block.
    private func writeFile(_ entry: OpaquePointer, archive: OpaquePointer, _ place: Placement, mode: mode_t,
                           label: String, charged: String) throws(OCIError) {
        // The declared size, before a byte is written: a sparse entry is written out whole.
        let declared = UInt64(max(archive_entry_size(entry), 0))
        try budget?.charge(DiskAccount.blocks(max(declared, 1)), for: charged)
        try Self.remove(place.name, in: place.parent, path: place.shown)
        let fd = openat(place.parent, place.name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw OCIError.system("create", place.shown) }
        defer { close(fd) }
        var block: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        while true {
            let status = archive_read_data_block(archive, &block, &size, &offset)
            if status == ARCHIVE_EOF { break }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN else {
                throw OCIError(.malformed, "\(label): \(place.path): \(LayerWriter.message(archive))")
            }
            try OCIError.attempt("write", place.shown) { () throws(Errno) in
                try FileDescriptor(rawValue: fd).writeAll(UnsafeRawBufferPointer(start: block, count: size), at: Int64(offset))
            }
        }
        ftruncate(fd, off_t(archive_entry_size(entry)))
        fchmod(fd, mode)
        try chown(entry, place.parent, place.name, place.shown)
    }

    /// A symbolic link, its target as the layer wrote it: the directory cache resolves later entries in the root.
    private func makeSymbolicLink(_ entry: OpaquePointer, _ place: Placement, label: String) throws(OCIError) {
        guard let target = archive_entry_symlink_utf8(entry) ?? archive_entry_symlink(entry) else {
            throw OCIError(.malformed, "\(label): link \(place.path) has a target that cannot be read")
        }
        try Self.remove(place.name, in: place.parent, path: place.shown)
        guard symlinkat(target, place.parent, place.name) == 0 else { throw OCIError.system("symlink", place.shown) }
        try chown(entry, place.parent, place.name, place.shown)
    }

    private func chown(_ entry: OpaquePointer, _ parent: Int32, _ name: String, _ shown: String) throws(OCIError) {
        guard let owners else { return }
        guard let mapped = owners(UInt32(truncatingIfNeeded: archive_entry_uid(entry)),
                                  UInt32(truncatingIfNeeded: archive_entry_gid(entry))) else { return }
        guard fchownat(parent, name, mapped.uid, mapped.gid, AT_SYMLINK_NOFOLLOW) == 0 else { throw OCIError.system("chown", shown) }
    }

    /// `path` below `root` as a directory, through no symbolic link at all (`RESOLVE_BENEATH |
    /// RESOLVE_NO_SYMLINKS`): for trees that must be exactly what they claim to be.
    public static func openBeneath(_ root: Int32, _ path: String) -> Int32 {
        let opened = try? FileDescriptor(rawValue: root).openat2(path, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                                                                 resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
        return opened?.rawValue ?? -1
    }

    /// Removes `name` in `parent`, recursively and following no link; nothing there is fine.
    public static func remove(_ name: String, in parent: Int32, path: String) throws(OCIError) {
        do {
            try FileDescriptor(rawValue: parent).removeTree(name, path: path)
        } catch {
            throw OCIError.system(error)
        }
    }

    /// Empties `directory` but for `keeping`; its own mode is what it was.
    static func removeChildren(of directory: Int32, path: String, keeping: Set<String> = []) throws(OCIError) {
        let children = try OCIError.attempt("opendir", path) { () throws(Errno) in try FileDescriptor(rawValue: directory).directoryEntries() }
            .filter { !keeping.contains($0.name) }
        var st = stat()
        let restore = fstat(directory, &st) == 0
        fchmod(directory, 0o700)
        defer { if restore { fchmod(directory, st.st_mode & 0o7777) } }
        do {
            for child in children { try FileDescriptor(rawValue: directory).removeTree(child.bytes, path: path + "/" + child.name) }
        } catch {
            throw OCIError.system(error)
        }
    }
}

/// Reads a blob for libarchive and hashes every byte on the way.
final class BlobSource {
    let fd: Int32
    let hasher = SHA256()
    var size: Int64 = 0
    var failure: OCIError?
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)

    init(fd: Int32) { self.fd = fd }

    func next(_ out: UnsafeMutablePointer<UnsafeRawPointer?>) -> la_ssize_t {
        let read = buffer.withUnsafeMutableBytes { raw in systemCall { Glibc.read(fd, raw.baseAddress, raw.count) } }
        guard case .success(let n) = read else {
            if case .failure(let error) = read { failure = OCIError.system("read", "a layer blob", error.rawValue) }
            return -1
        }
        buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        size += Int64(n)
        out.pointee = buffer.withUnsafeBytes { UnsafeRawPointer($0.baseAddress!) }
        return la_ssize_t(n)
    }

    func drain() {
        var pointer: UnsafeRawPointer?
        while next(&pointer) > 0 {}
    }
}

/// Opens directories inside the root through `openat2(RESOLVE_IN_ROOT)`, creating missing ones,
/// and keeps the last one open: a layer's entries come grouped by directory.
final class DirectoryCache {
    let root: Int32
    let rootPath: String
    let strict: Bool
    /// What this layer has written so far (paths relative to the root): its whiteouts spare them.
    var written: Set<String> = []
    private var last: (components: [String], fd: Int32)?

    init(root: Int32, rootPath: String, strict: Bool = false) {
        self.root = root
        self.rootPath = rootPath
        self.strict = strict
    }

    deinit { forget() }

    func forget() {
        if let last { close(last.fd) }
        last = nil
    }

    func open(_ components: [String]) throws(OCIError) -> Int32 {
        if let last, last.components == components { return last.fd }
        forget()
        if components.isEmpty {
            let fd = Glibc.dup(root)
            last = (components, fd)
            return fd
        }
        // The whole path at once; step by step (creating what is missing) only when that fails,
        // so deep paths cost one resolution each, not one per component.
        if let whole = try? Self.resolve(root, components.joined(separator: "/"), strict: strict) {
            last = (components, whole)
            return whole
        }
        var fd = Glibc.dup(root)
        for (i, component) in components.enumerated() {
            let path = components[0...i].joined(separator: "/")
            var next = Result { () throws(Errno) in try Self.resolve(root, path, strict: strict) }
            if case .failure(.noSuchFileOrDirectory) = next {
                mkdirat(fd, component, 0o755)
                next = Result { () throws(Errno) in try Self.resolve(root, path, strict: strict) }
            }
            close(fd)
            switch next {
            case .success(let opened): fd = opened
            case .failure(let error) where strict && (error == .tooManySymbolicLinkLevels || error == .improperLink):
                throw OCIError(.unsupportedContent, "\(path) is a symbolic link, and nothing may be written through one here",
                               path: rootPath + "/" + path, errno: error.rawValue)
            case .failure(let error) where error == .noSuchFileOrDirectory || error == .notDirectory:
                throw OCIError(.malformed, "\(path) is not a directory in the image (a file, or a link that leads nowhere in it)",
                               path: rootPath + "/" + path, errno: error.rawValue)
            case .failure(let error):
                throw OCIError.system("open", rootPath + "/" + path, error.rawValue)
            }
        }
        last = (components, fd)
        return fd
    }

    /// `openat2(root, path, O_DIRECTORY, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: symbolic links in
    /// the image resolve as they would inside it, never to the host.
    /// Strict: no symbolic link at all (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`).
    static func resolve(_ root: Int32, _ path: String, strict: Bool = false) throws(Errno) -> Int32 {
        try FileDescriptor(rawValue: root).openat2(path, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                                                   resolve: strict ? RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
                                                                   : RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS).rawValue
    }
}
