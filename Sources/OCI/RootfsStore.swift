import CLinux
import Glibc

/// Unpacked images kept for reuse (a builder's root filesystem, the build image): one directory per
/// stack of layers, named by the digest of the layers' blob digests in order, so the same layers
/// are unpacked once and every later build shares the tree. The blobs are checked against their
/// digests while they are unpacked, so a name always means those bytes, whatever the image's
/// config claims. A tree is unpacked into a private directory and renamed into place whole
/// (`RENAME_NOREPLACE`): builds racing on one image never see half a tree, and the loser's copy
/// is removed.
public struct RootfsStore: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    /// `$XDG_CACHE_HOME/stockade/rootfs`, else `~/.cache/stockade/rootfs`.
    public static func standardPath(home: String?) -> String? {
        if let cache = getenv("XDG_CACHE_HOME").map({ String(cString: $0) }), cache.hasPrefix("/") {
            return cache + "/stockade/rootfs"
        }
        guard let home, home.hasPrefix("/") else { return nil }
        return home + "/.cache/stockade/rootfs"
    }

    /// The key of `layers`: sha256 over their digests, one a line.
    public static func key(_ layers: [Descriptor]) -> Digest {
        Digest.of(Array(layers.map { $0.digest.description + "\n" }.joined().utf8))
    }

    public struct Tree: Sendable {
        public var path: String
        /// Whether this call unpacked it (false: an earlier build had).
        public var unpacked: Bool
    }

    /// The unpacked root filesystem of `image`, unpacking its layers first when no build has.
    public func rootfs(of image: Image, in layout: ImageLayout, budget: DiskAccount?,
                       progress: (String) -> Void) throws(OCIError) -> Tree {
        let name = Self.key(image.manifest.layers).hex
        let store = try openStore()
        defer { close(store) }
        var st = stat()
        if fstatat(store, name, &st, AT_SYMLINK_NOFOLLOW) == 0 {
            guard st.st_mode & S_IFMT == S_IFDIR else {
                throw OCIError(.malformed, "\(path)/\(name) is not a directory; remove it", path: path + "/" + name)
            }
            return Tree(path: path + "/" + name, unpacked: false)
        }
        try Self.removeAbandoned(in: store, path: path)
        let temporary = ".unpacking-\(name.prefix(12))-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard mkdirat(store, temporary, 0o755) == 0 else { throw OCIError.system("mkdir", path + "/" + temporary) }
        var done = false
        defer { if !done { try? LayerExtractor.remove(temporary, in: store, path: path + "/" + temporary) } }
        let root = openat(store, temporary, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { throw OCIError.system("open", path + "/" + temporary) }
        defer { close(root) }
        var extractor = LayerExtractor(budget: budget)
        extractor.strict = true
        for (index, layer) in image.manifest.layers.enumerated() {
            progress("Unpacking layer \(index + 1)/\(image.manifest.layers.count) \(layer.digest) (\(DiskBudget.describe(UInt64(max(layer.size, 0)))))")
            try extractor.extract(layer, from: layout, into: root, rootPath: path + "/" + name)
        }
        // Readable by the stack user whatever the invoker's umask; the sandbox mounts it read-only.
        fchmod(root, 0o755)
        if clinux_rename_noreplace(store, temporary, store, name) != 0 {
            let err = errno
            guard err == EEXIST || err == ENOTEMPTY else { throw OCIError.system("rename", path + "/" + name, err) }
            return Tree(path: path + "/" + name, unpacked: false)  // another build got there first; ours goes
        }
        done = true
        return Tree(path: path + "/" + name, unpacked: true)
    }

    /// Removes what unpackings killed midway left: `.unpacking-<key>-<pid>-<n>` whose process is
    /// gone. (A live process, or a pid reused since, keeps its directory until a later build.)
    static func removeAbandoned(in store: Int32, path: String) throws(OCIError) {
        for entry in try DirectoryEntries.read(store, path: path) where entry.name.hasPrefix(".unpacking-") {
            let fields = entry.name.split(separator: "-")
            guard fields.count == 4, let pid = pid_t(fields[2]), pid > 0 else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try LayerExtractor.remove(entry.name, in: store, path: path + "/" + entry.name)
            }
        }
    }

    /// The store's directory, made (with its parents) when missing; never through a symbolic link
    /// in its last component.
    private func openStore() throws(OCIError) -> Int32 {
        var prefix = ""
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST { throw OCIError.system("mkdir", prefix) }
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw OCIError.system("open", path) }
        return fd
    }
}
