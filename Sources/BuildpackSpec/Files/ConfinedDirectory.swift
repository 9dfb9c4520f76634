import Glibc
import SystemCalls

/// What a directory entry is, as `lstat` sees it (symbolic links are never followed).
public enum FileKind: String, Sendable, Hashable {
    case regular, directory, symlink, fifo, socket, characterDevice, blockDevice, unknown

    init(mode: mode_t) {
        switch mode & S_IFMT {
        case S_IFREG: self = .regular
        case S_IFDIR: self = .directory
        case S_IFLNK: self = .symlink
        case S_IFIFO: self = .fifo
        case S_IFSOCK: self = .socket
        case S_IFCHR: self = .characterDevice
        case S_IFBLK: self = .blockDevice
        default: self = .unknown
        }
    }

    init?(direntType: UInt8) {
        switch Int32(direntType) {
        case Int32(DT_REG): self = .regular
        case Int32(DT_DIR): self = .directory
        case Int32(DT_LNK): self = .symlink
        case Int32(DT_FIFO): self = .fifo
        case Int32(DT_SOCK): self = .socket
        case Int32(DT_CHR): self = .characterDevice
        case Int32(DT_BLK): self = .blockDevice
        default: return nil
        }
    }

    /// "a FIFO", "a symbolic link", ... for error messages.
    var phrase: String {
        switch self {
        case .regular: return "a regular file"
        case .directory: return "a directory"
        case .symlink: return "a symbolic link"
        case .fifo: return "a FIFO"
        case .socket: return "a socket"
        case .characterDevice: return "a character device"
        case .blockDevice: return "a block device"
        case .unknown: return "a file of unknown type"
        }
    }
}

/// One entry of a directory listing.
public struct DirectoryEntry: Sendable, Hashable {
    /// The entry's name. If the on-disk name is not valid UTF-8, invalid bytes are replaced by U+FFFD
    /// and `hasValidName` is false: such a name cannot be opened through `ConfinedDirectory`.
    public var name: String
    /// What the entry itself is (`lstat` semantics: a symbolic link is `.symlink`).
    public var kind: FileKind
    /// False when the on-disk name is not valid UTF-8.
    public var hasValidName: Bool

    public init(name: String, kind: FileKind, hasValidName: Bool = true) {
        self.name = name
        self.kind = kind
        self.hasValidName = hasValidName
    }
}

/// What to do with a symbolic link in the **last** component of a path being read.
/// Symbolic links in earlier components are never followed.
public enum SymlinkPolicy: Sendable, Hashable {
    /// Refuse it: the read fails with `.notRegularFile`. Use for anything a buildpack wrote.
    case refuse
    /// Follow it, wherever it points (possibly outside the root). Only for trusted,
    /// platform-provided directories, such as `<platform>/env` and `<build-config>/env`.
    case follow
}

/// A directory opened once, through which hostile files are read and written without ever
/// leaving it.
///
/// Everything below the root is untrusted (buildpacks run as another user and may plant symbolic
/// links, FIFOs, devices and huge or deeply nested files). The root itself is trusted: the path given
/// to `init(path:)` is opened normally.
///
/// Guarantees:
/// - Relative paths are split on `/` and resolved one component at a time with
///   `openat(O_PATH | O_DIRECTORY | O_NOFOLLOW)`. Empty, `.` and `..` components, absolute paths and
///   NUL bytes are rejected, so no path can name anything outside the root.
/// - Files are checked with `fstatat(AT_SYMLINK_NOFOLLOW)` before they are opened (so a FIFO or device is not
///   opened at all, unless it is swapped in between the two calls), opened with
///   `O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC` (so even a swapped-in FIFO cannot block), and checked
///   again with `fstat`; only regular files are read, and the two checks must agree (same device and inode).
/// - Reads stop at a size limit: `defaultReadLimit` (10 MiB) unless the caller passes another. A file
///   whose `st_size` exceeds the limit is refused before any byte is read; a file that grows while being
///   read is refused once the limit is passed. Memory is reserved for the file's size, never for the limit.
/// - Listings are capped at `defaultEntryLimit` entries (100,000).
/// - Writes go to a fresh temporary file (`O_CREAT | O_EXCL | O_NOFOLLOW`) in the same directory and are
///   moved into place with `renameat`, which replaces a file or a symbolic link without following it.
///
/// The type is an immutable reference to an open descriptor, closed on `deinit`; it is `Sendable` and
/// may be used from many tasks at once.
public final class ConfinedDirectory: Sendable {
    /// The path this directory was opened at (for messages and for composing absolute paths,
    /// e.g. `<layer>/bin` for `PATH`).
    public let path: String
    private let fd: Int32

    /// The default read limit: 10 MiB, the cap for any TOML file.
    public static let defaultReadLimit = 10 << 20
    /// The default maximum number of entries a listing returns before failing.
    public static let defaultEntryLimit = 100_000

    /// Opens `path` (trusted; symbolic links in it are followed) as a confinement root.
    public init(path: String) throws(SpecError) {
        guard !path.isEmpty, !path.utf8.contains(0) else {
            throw SpecError(.invalidPath, "the root path is empty or contains a NUL byte", file: path)
        }
        self.fd = try Sys.openat(AT_FDCWD, path, LinuxFlags.O_PATH | O_DIRECTORY | O_CLOEXEC, path: path)
        self.path = path
    }

    /// Opens `path` but presents it as `presentedPath` in messages and in
    /// composed paths: a layers directory opened on the host whose contents
    /// go into variables as the buildpack sees them (`/layers/<id>/...`).
    public init(path: String, presentedAs presentedPath: String) throws(SpecError) {
        guard !path.isEmpty, !path.utf8.contains(0) else {
            throw SpecError(.invalidPath, "the root path is empty or contains a NUL byte", file: path)
        }
        self.fd = try Sys.openat(AT_FDCWD, path, LinuxFlags.O_PATH | O_DIRECTORY | O_CLOEXEC, path: path)
        self.path = presentedPath
    }

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { Sys.close(fd) }

    // MARK: - Paths

    /// Splits a relative path into checked components. `""` is the root itself.
    static func components(_ relative: String) throws(SpecError) -> [String] {
        if relative.isEmpty { return [] }
        if relative.utf8.contains(0) {
            throw SpecError(.invalidPath, "the path contains a NUL byte", file: relative)
        }
        if relative.hasPrefix("/") {
            throw SpecError(.invalidPath, "the path must be relative", file: relative)
        }
        let parts = relative.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        for part in parts {
            if part.isEmpty {
                throw SpecError(.invalidPath, "the path has an empty component", file: relative)
            }
            if part == "." || part == ".." {
                throw SpecError(.invalidPath, "the path has a \"\(part)\" component", file: relative)
            }
        }
        return parts
    }

    /// The path of `relative` for messages: `<root>/<relative>`.
    public func displayPath(_ relative: String) -> String {
        relative.isEmpty ? path : (path.hasSuffix("/") ? path + relative : path + "/" + relative)
    }

    /// Opens the directory named by `components` (relative to the root) as an `O_PATH` descriptor.
    /// The caller owns the result unless it is the root descriptor itself (`components` empty).
    private func openDirectory(_ components: ArraySlice<String>, relative: String) throws(SpecError) -> Int32 {
        var current = fd
        var walked: [String] = []
        for component in components {
            walked.append(component)
            let next: Int32
            do {
                next = try Sys.openat(current, component,
                                      LinuxFlags.O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                                      path: displayPath(walked.joined(separator: "/")))
            } catch {
                let failure = explain(error, parent: current, name: component, walked: walked,
                                      expected: "a directory")
                if current != fd { Sys.close(current) }
                throw failure
            }
            if current != fd { Sys.close(current) }
            current = next
        }
        return current
    }

    /// Turns ENOTDIR/ELOOP from a no-follow open into a message that says what the entry is.
    private func explain(_ error: SpecError, parent: Int32, name: String, walked: [String],
                         expected: String) -> SpecError {
        guard error.errno == ENOTDIR || error.errno == ELOOP else { return error }
        let display = displayPath(walked.joined(separator: "/"))
        if let st = try? Sys.lstatat(parent, name, path: display) {
            let kind = FileKind(mode: st.st_mode)
            let extra = kind == .symlink ? ", and symbolic links are not followed" : ""
            return SpecError(.notRegularFile, "\(display) is \(kind.phrase), not \(expected)\(extra)",
                             file: display, syscall: error.syscall, errno: error.errno)
        }
        return error
    }

    /// Resolves all but the last component; returns the parent descriptor (caller closes it if
    /// it differs from the root) and the last component.
    private func openParent(_ relative: String) throws(SpecError) -> (fd: Int32, name: String) {
        let parts = try Self.components(relative)
        guard let last = parts.last else {
            throw SpecError(.invalidPath, "the path names the root directory, not an entry in it", file: path)
        }
        let parent = try openDirectory(parts.dropLast(), relative: relative)
        return (parent, last)
    }

    private func release(_ descriptor: Int32) {
        if descriptor != fd { Sys.close(descriptor) }
    }

    // MARK: - Inspecting

    /// A confined view of the subdirectory `relative` (which must be a real directory, not a symlink).
    public func subdirectory(_ relative: String) throws(SpecError) -> ConfinedDirectory {
        let parts = try Self.components(relative)
        let sub = try openDirectory(parts[...], relative: relative)
        if sub == fd {
            // `""`: a second descriptor for the root itself.
            let dup = Glibc.dup(fd)
            if dup < 0 { throw Sys.error("dup", path, Glibc.errno) }
            return ConfinedDirectory(fd: dup, path: path)
        }
        return ConfinedDirectory(fd: sub, path: displayPath(relative))
    }

    /// What `relative` is, without following a symbolic link in any component; `nil` if it does not exist
    /// (or a parent component does not exist).
    public func kind(of relative: String) throws(SpecError) -> FileKind? {
        try kind(of: relative, followingFinalSymlink: false)
    }

    /// What `relative` is; with `followingFinalSymlink`, a symbolic link in the last component is followed
    /// (wherever it points: only for trusted directories). `nil` if it (or its target) does not exist.
    public func kind(of relative: String, followingFinalSymlink: Bool) throws(SpecError) -> FileKind? {
        let parts = try Self.components(relative)
        guard let last = parts.last else { return .directory }
        let parent: Int32
        do {
            parent = try openDirectory(parts.dropLast(), relative: relative)
        } catch {
            if error.kind == .notFound { return nil }
            throw error
        }
        defer { release(parent) }
        if followingFinalSymlink {
            var st = stat()
            if Glibc.fstatat(parent, last, &st, 0) != 0 {
                let err = Glibc.errno
                if err == ENOENT { return nil }
                throw Sys.error("fstatat", displayPath(relative), err)
            }
            return FileKind(mode: st.st_mode)
        }
        guard let st = try Sys.lstatat(parent, last, path: displayPath(relative)) else { return nil }
        return FileKind(mode: st.st_mode)
    }

    /// The entries of the directory `relative` (`""` for the root), sorted by the bytes of their names
    /// (the order of Go's `os.ReadDir`, which the reference lifecycle uses). Kinds use `lstat` semantics.
    public func entries(_ relative: String = "", limit: Int = ConfinedDirectory.defaultEntryLimit)
        throws(SpecError) -> [DirectoryEntry]
    {
        let parts = try Self.components(relative)
        let dir = try openDirectory(parts[...], relative: relative)
        defer { release(dir) }
        let display = displayPath(relative)
        let readable = try Sys.openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, path: display)
        let raw = try Sys.readDirectory(consuming: readable, path: display)
        if raw.count > limit {
            throw SpecError(.tooLarge, "the directory has \(raw.count) entries, more than the limit of \(limit)",
                            file: display)
        }
        var out: [(bytes: [UInt8], entry: DirectoryEntry)] = []
        out.reserveCapacity(raw.count)
        for (name, type) in raw {
            let valid = String(validating: name, as: UTF8.self)
            let string = valid ?? String(decoding: name, as: UTF8.self)
            var kind = FileKind(direntType: type)
            if kind == nil {
                // DT_UNKNOWN: ask lstat (by name; names that are not UTF-8 cannot be passed as String).
                if valid != nil, let st = try Sys.lstatat(dir, string, path: display + "/" + string) {
                    kind = FileKind(mode: st.st_mode)
                }
            }
            out.append((name, DirectoryEntry(name: string, kind: kind ?? .unknown, hasValidName: valid != nil)))
        }
        out.sort { $0.bytes.lexicographicallyPrecedes($1.bytes) }
        return out.map(\.entry)
    }

    // MARK: - Reading

    /// Reads the regular file `relative`, at most `limit` bytes.
    ///
    /// Fails with `.notFound` if it does not exist, `.notRegularFile` if it (or, with `.refuse`, the last
    /// component) is a symbolic link, FIFO, socket, device or directory, and `.tooLarge` if it has more
    /// than `limit` bytes. A FIFO is never opened, so reading one never blocks.
    public func readFile(_ relative: String, limit: Int = ConfinedDirectory.defaultReadLimit,
                         symlinks: SymlinkPolicy = .refuse) throws(SpecError) -> [UInt8]
    {
        let (parent, name) = try openParent(relative)
        defer { release(parent) }
        let display = displayPath(relative)

        guard let before = try Sys.lstatat(parent, name, path: display) else {
            throw SpecError(.notFound, "\(display) does not exist", file: display, syscall: "fstatat", errno: ENOENT)
        }
        let kindBefore = FileKind(mode: before.st_mode)
        switch (kindBefore, symlinks) {
        case (.regular, _), (.symlink, .follow):
            break
        case (.symlink, .refuse):
            throw SpecError(.notRegularFile,
                            "\(display) is a symbolic link, and symbolic links are not followed", file: display)
        default:
            throw SpecError(.notRegularFile, "\(display) is \(kindBefore.phrase), not a regular file", file: display)
        }

        var flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC
        if symlinks == .refuse { flags |= O_NOFOLLOW }
        let file: Int32
        do {
            file = try Sys.openat(parent, name, flags, path: display)
        } catch {
            throw explain(error, parent: parent, name: name, walked: [relative], expected: "a regular file")
        }
        defer { Sys.close(file) }

        let st = try Sys.fstat(file, path: display)
        let kind = FileKind(mode: st.st_mode)
        guard kind == .regular else {
            throw SpecError(.notRegularFile, "\(display) is \(kind.phrase), not a regular file", file: display)
        }
        if kindBefore == .regular && (st.st_dev != before.st_dev || st.st_ino != before.st_ino) {
            throw SpecError(.notRegularFile, "\(display) was replaced while it was being opened", file: display)
        }
        if st.st_size > limit {
            throw SpecError(.tooLarge, "\(display) has \(st.st_size) bytes, more than the limit of \(limit)",
                            file: display)
        }

        return try Sys.readAll(file, limit: limit, path: display)
    }

    /// Reads `relative` like `readFile`, or returns `nil` if it does not exist.
    public func readFileIfPresent(_ relative: String, limit: Int = ConfinedDirectory.defaultReadLimit,
                                  symlinks: SymlinkPolicy = .refuse) throws(SpecError) -> [UInt8]?
    {
        do {
            return try readFile(relative, limit: limit, symlinks: symlinks)
        } catch {
            if error.kind == .notFound { return nil }
            throw error
        }
    }

    /// Reads `relative` like `readFile` and checks that it is UTF-8.
    public func readText(_ relative: String, limit: Int = ConfinedDirectory.defaultReadLimit,
                         symlinks: SymlinkPolicy = .refuse) throws(SpecError) -> String
    {
        let bytes = try readFile(relative, limit: limit, symlinks: symlinks)
        return try UTF8Validation.string(bytes, file: displayPath(relative))
    }

    // MARK: - Writing

    /// Atomically replaces (or creates) the regular file `relative` with `contents`.
    ///
    /// The bytes go to a new temporary file in the same directory (`O_CREAT | O_EXCL | O_NOFOLLOW`,
    /// mode set with `fchmod`), which `renameat` then moves over the old name. A symbolic link at the
    /// old name is replaced, never followed; a directory there makes the call fail. The parent directory
    /// must exist. With `durable`, the file is `fsync`ed before the rename.
    public func writeFile(_ relative: String, contents: [UInt8], mode: mode_t = 0o644,
                          durable: Bool = false) throws(SpecError)
    {
        let (parent, name) = try openParent(relative)
        defer { release(parent) }
        let display = displayPath(relative)
        var temporary = ""
        var file: Int32 = -1
        for _ in 0..<16 {
            temporary = ".\(name).tmp-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
            if temporary.utf8.count > 255 {
                temporary = ".stockade.tmp-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
            }
            do {
                file = try Sys.openat(parent, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                      mode, path: display)
                break
            } catch {
                if error.errno == EEXIST { continue }
                throw error
            }
        }
        if file < 0 {
            throw SpecError(.io, "could not create a temporary file next to \(display)", file: display)
        }
        do throws(SpecError) {
            defer { Sys.close(file) }
            if Glibc.fchmod(file, mode) != 0 { throw Sys.error("fchmod", display, Glibc.errno) }
            try Sys.writeAll(file, contents, path: display)
            if durable { try Sys.fsync(file, path: display) }
        } catch {
            _ = Glibc.unlinkat(parent, temporary, 0)
            throw error
        }
        do {
            try Sys.renameat(parent, temporary, parent, name, path: display)
        } catch {
            _ = Glibc.unlinkat(parent, temporary, 0)
            throw error
        }
    }

    /// Creates the directory `relative` (and, with `intermediates`, its missing parents).
    /// An existing directory is fine; an existing symbolic link or file is an error.
    public func createDirectory(_ relative: String, mode: mode_t = 0o755, intermediates: Bool = true)
        throws(SpecError)
    {
        let parts = try Self.components(relative)
        var current = fd
        defer { release(current) }
        for (index, component) in parts.enumerated() {
            let walked = parts[...index].joined(separator: "/")
            let display = displayPath(walked)
            let isLast = index == parts.count - 1
            if try Sys.lstatat(current, component, path: display) == nil {
                if !isLast && !intermediates {
                    throw SpecError(.notFound, "\(display) does not exist", file: display)
                }
                do {
                    try Sys.mkdirat(current, component, mode, path: display)
                } catch {
                    if error.errno != EEXIST { throw error }
                }
            }
            let next: Int32
            do {
                next = try Sys.openat(current, component, LinuxFlags.O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                                      path: display)
            } catch {
                throw explain(error, parent: current, name: component, walked: Array(parts[...index]),
                              expected: "a directory")
            }
            release(current)
            current = next
        }
    }

    /// Renames `from` to `to` (both relative to the root) with `renameat`; symbolic links are not followed.
    /// An existing file at `to` is replaced; an existing empty directory is replaced by a directory.
    public func rename(_ from: String, to: String) throws(SpecError) {
        let (fromParent, fromName) = try openParent(from)
        defer { release(fromParent) }
        let (toParent, toName) = try openParent(to)
        defer { release(toParent) }
        try Sys.renameat(fromParent, fromName, toParent, toName, path: displayPath(from))
    }

    /// Removes the file, symbolic link or (with `directory`) empty directory `relative`.
    public func remove(_ relative: String, directory: Bool = false) throws(SpecError) {
        let (parent, name) = try openParent(relative)
        defer { release(parent) }
        try Sys.unlinkat(parent, name, directory ? AT_REMOVEDIR : 0, path: displayPath(relative))
    }
}
