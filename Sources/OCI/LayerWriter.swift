import CArchive
import Glibc
import SystemCalls
import SystemPackage

/// libarchive converts names through the C library's locale; in the "C" locale a non-ASCII name
/// has no conversion and libarchive 3.6 dereferences NULL. Names here are UTF-8 (checked), so the
/// character type is UTF-8, set once for the whole process by whichever of writing or reading a
/// layer comes first. Without such a locale, non-ASCII names are refused instead.
enum ArchiveLocale {
    static let utf8Names: Bool = setlocale(LC_CTYPE, "C.UTF-8") != nil || setlocale(LC_CTYPE, "en_US.UTF-8") != nil
}

/// Who owns the entries of a layer, and when they were last changed: fixed values, so the same
/// files give the same bytes on every host.
public struct EntryOwner: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public init(uid: UInt32, gid: UInt32) { self.uid = uid; self.gid = gid }
    public static let root = EntryOwner(uid: 0, gid: 0)
}

/// Writes one uncompressed tar layer into a layout, hashed while written (the layer's digest is
/// its diffID), never read back.
///
/// libarchive writes the tar: its PAX writer is the best-kept one in Debian, and in restricted
/// mode it adds a PAX header only where ustar cannot hold a value (long or non-ASCII names and
/// link targets, large sizes or ids), so ordinary layers are plain ustar that every tool reads.
/// What goes in is decided here: entries in byte order of name, a fixed mtime, no user or group
/// names, no xattrs, no atime/ctime, so the bytes depend on the files alone; no entry but a
/// sticky directory is writable by others. Symbolic links are
/// stored, never followed; hard links within the layer stay hard links; FIFOs, sockets and
/// devices are refused.
public final class LayerWriter {
    /// 1980-01-01T00:00:01Z, the time the reference lifecycle gives every entry.
    public static let normalizedTime: time_t = 315_532_801
    static let maxDepth = 512

    private let blob: BlobWriter
    /// The layout's budget, which the blob's bytes are charged to.
    private let budget: DiskAccount?
    private let archive: OpaquePointer
    private let entry: OpaquePointer
    private var failure: OCIError?
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    /// Files with more than one link, by (device, inode): the first path each was archived under.
    private var linked: [Pair: String] = [:]
    private var finished = false

    private struct Pair: Hashable { let dev: UInt64; let ino: UInt64 }


    /// A layer for `layout`; with nil, only its digest is computed.
    public init(layout: ImageLayout?) throws(OCIError) {
        blob = try BlobWriter(layout: layout, background: true)
        budget = layout?.budget
        archive = archive_write_new()
        entry = archive_entry_new()
        archive_write_set_format_pax_restricted(archive)
        // Big blocks mean few callbacks; 1 in the last block means no padding after the end marker.
        archive_write_set_bytes_per_block(archive, 1 << 20)
        archive_write_set_bytes_in_last_block(archive, 1)
        let context = Unmanaged.passUnretained(self).toOpaque()
        let status = archive_write_open2(archive, context, nil, { _, context, data, length in
            let writer = Unmanaged<LayerWriter>.fromOpaque(context!).takeUnretainedValue()
            do throws(OCIError) {
                try writer.blob.write(UnsafeRawBufferPointer(start: data, count: length))
                return la_ssize_t(length)
            } catch {
                writer.failure = error
                return -1
            }
        }, nil, nil)
        guard status == ARCHIVE_OK else { throw OCIError(.io, "cannot start a tar layer: \(Self.message(archive))") }
    }

    deinit {
        archive_write_free(archive)
        archive_entry_free(entry)
    }

    // MARK: - entries

    /// A directory entry with no contents (the parents of what a layer holds: `layers/`, `cnb/`).
    public func addDirectory(_ path: String, mode: mode_t = 0o755, owner: EntryOwner) throws(OCIError) {
        try header(path, type: S_IFDIR, mode: mode, owner: owner, size: 0)
    }

    public func addFile(_ path: String, contents: [UInt8], mode: mode_t = 0o644, owner: EntryOwner) throws(OCIError) {
        try header(path, type: S_IFREG, mode: mode, owner: owner, size: Int64(contents.count))
        try data(contents[...], path: path)
    }

    public func addSymlink(_ path: String, target: String, owner: EntryOwner) throws(OCIError) {
        try header(path, type: S_IFLNK, mode: 0o777, owner: owner, size: 0, link: target)
    }

    /// A host file (the launcher) at `path`, with the given mode and owner.
    public func addHostFile(_ hostPath: String, as path: String, mode: mode_t, owner: EntryOwner) throws(OCIError) {
        let fd = open(hostPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw OCIError.system("open", hostPath) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw OCIError(.unsupportedContent, "\(hostPath) is not a regular file", path: hostPath)
        }
        try header(path, type: S_IFREG, mode: mode, owner: owner, size: Int64(st.st_size))
        try copy(fd, size: Int64(st.st_size), path: hostPath)
    }

    /// The directory tree at `hostPath`, archived as `path` with every entry owned by `owner`.
    /// The tree is walked with `O_NOFOLLOW` from its root; a symbolic link anywhere is stored as
    /// a link.
    ///
    /// With `including`, only entries whose path relative to the tree it accepts are written; a
    /// directory it refuses is still written when something beneath it is (app slices).
    public func addTree(_ hostPath: String, as path: String, owner: EntryOwner,
                        including: ((String) -> Bool)? = nil) throws(OCIError) {
        let fd = open(hostPath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw OCIError.system("open", hostPath) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw OCIError.system("stat", hostPath) }
        try header(path, type: S_IFDIR, mode: st.st_mode & 0o7777, owner: owner, size: 0)
        filter = including
        rootLength = path.utf8.count + 1
        defer { filter = nil; pending = [] }
        try walk(fd, hostPath: hostPath, path: path, owner: owner, depth: 1)
    }

    private var filter: ((String) -> Bool)?
    private var rootLength = 0
    /// Directories refused by the filter, written once something beneath them is.
    private var pending: [(path: String, mode: mode_t, owner: EntryOwner)] = []

    /// Whether the entry at `archived` goes in; flushes the directories above it when it does.
    private func admit(_ archived: String, directory: Bool, mode: mode_t, owner: EntryOwner) throws(OCIError) -> Bool {
        guard let filter else { return true }
        let relative = String(decoding: archived.utf8.dropFirst(rootLength), as: UTF8.self)
        while let last = pending.last, !archived.hasPrefix(last.path + "/") { pending.removeLast() }
        guard filter(relative) else {
            if directory { pending.append((archived, mode, owner)) }
            return false
        }
        for dir in pending {
            try header(dir.path, type: S_IFDIR, mode: dir.mode, owner: dir.owner, size: 0)
        }
        pending = []
        return true
    }

    /// The entries below `directory`, sorted, recursively.
    private func walk(_ directory: Int32, hostPath: String, path: String, owner: EntryOwner, depth: Int) throws(OCIError) {
        guard depth <= Self.maxDepth else {
            throw OCIError(.unsupportedContent, "\(hostPath) is nested more than \(Self.maxDepth) directories deep", path: hostPath)
        }
        for name in try Self.names(in: directory, hostPath: hostPath) {
            let host = hostPath + "/" + name.text
            let archived = path + "/" + name.text
            // A regular file (as readdir says) is opened and then stat'ed: one call fewer per file.
            var st = stat()
            var opened: Int32 = -1
            if name.type == UInt8(DT_REG) {
                opened = openat(directory, name.text, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
                if opened >= 0 && (fstat(opened, &st) != 0 || st.st_mode & S_IFMT != S_IFREG) {
                    close(opened)
                    opened = -1
                }
            }
            defer { if opened >= 0 { close(opened) } }
            if opened < 0 {
                guard fstatat(directory, name.text, &st, AT_SYMLINK_NOFOLLOW) == 0 else { throw OCIError.system("stat", host) }
            }
            let mode = st.st_mode & 0o7777
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                let child = openat(directory, name.text, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { throw OCIError.system("open", host) }
                defer { close(child) }
                if try admit(archived, directory: true, mode: mode, owner: owner) {
                    try header(archived, type: S_IFDIR, mode: mode, owner: owner, size: 0)
                }
                try walk(child, hostPath: host, path: archived, owner: owner, depth: depth + 1)
            case S_IFREG:
                guard try admit(archived, directory: false, mode: mode, owner: owner) else { continue }
                let key = Pair(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
                if st.st_nlink > 1, let first = linked[key] {
                    try header(archived, type: S_IFREG, mode: mode, owner: owner, size: 0, hardlink: first)
                    continue
                }
                if st.st_nlink > 1 { linked[key] = archived }
                var fd = opened
                if fd < 0 {
                    fd = openat(directory, name.text, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
                    guard fd >= 0 else { throw OCIError.system("open", host) }
                    opened = fd
                    var now = stat()
                    guard fstat(fd, &now) == 0, now.st_ino == st.st_ino, now.st_dev == st.st_dev else {
                        throw OCIError(.io, "\(host) changed while it was being exported", path: host)
                    }
                }
                // Before a byte is read: a sparse file's holes would come out as data.
                if let budget, UInt64(st.st_size) > budget.remaining {
                    throw budget.overdrawn(UInt64(st.st_size), for: "\(host) (\(st.st_blocks * 512) bytes on disk)")
                }
                try header(archived, type: S_IFREG, mode: mode, owner: owner, size: Int64(st.st_size))
                try copy(fd, size: Int64(st.st_size), path: host)
            case S_IFLNK:
                guard try admit(archived, directory: false, mode: mode, owner: owner) else { continue }
                var target = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = target.withUnsafeMutableBufferPointer { readlinkat(directory, name.text, $0.baseAddress!, $0.count) }
                guard n >= 0 else { throw OCIError.system("readlink", host) }
                guard let text = String(validating: target[0..<n], as: UTF8.self) else {
                    throw OCIError(.unsupportedContent, "\(host): the link target is not valid UTF-8", path: host)
                }
                try header(archived, type: S_IFLNK, mode: 0o777, owner: owner, size: 0, link: text)
            default:
                let kind = switch st.st_mode & S_IFMT {
                case S_IFIFO: "a FIFO"
                case S_IFSOCK: "a socket"
                case S_IFCHR: "a character device"
                case S_IFBLK: "a block device"
                default: "a special file"
                }
                throw OCIError(.unsupportedContent, "\(host) is \(kind); an image layer holds only files, directories and links",
                               path: host)
            }
        }
    }

    /// Entry names in byte order; a name that is not UTF-8 cannot be a PAX path and is refused.
    private static func names(in directory: Int32, hostPath: String) throws(OCIError) -> [(text: String, type: UInt8)] {
        var names: [(text: String, type: UInt8)] = []
        for entry in try OCIError.attempt("opendir", hostPath, { () throws(Errno) in try FileDescriptor(rawValue: directory).directoryEntries() }) {
            guard let text = String(validating: entry.bytes, as: UTF8.self) else {
                throw OCIError(.unsupportedContent, "\(hostPath) holds a file name that is not valid UTF-8", path: hostPath)
            }
            names.append((text, entry.type))
        }
        return names
    }

    private func header(_ path: String, type: mode_t, mode: mode_t, owner: EntryOwner, size: Int64,
                        link: String? = nil, hardlink: String? = nil) throws(OCIError) {
        guard ArchiveLocale.utf8Names || (path + (link ?? "") + (hardlink ?? "")).utf8.allSatisfy({ $0 < 0x80 }) else {
            throw OCIError(.unsupportedContent, "\(path): non-ASCII names need a UTF-8 locale (C.UTF-8), which this system lacks")
        }
        archive_entry_clear(entry)
        archive_entry_set_pathname_utf8(entry, path)
        archive_entry_set_filetype(entry, UInt32(type))
        // Nothing in an image is writable by every user, but a sticky directory (/tmp's kind).
        let sticky = type == S_IFDIR && mode & S_ISVTX != 0
        archive_entry_set_perm(entry, type == S_IFLNK || sticky ? mode : mode & ~0o002)
        archive_entry_set_uid(entry, la_int64_t(owner.uid))
        archive_entry_set_gid(entry, la_int64_t(owner.gid))
        archive_entry_set_mtime(entry, Self.normalizedTime, 0)
        archive_entry_set_size(entry, size)
        if let link { archive_entry_set_symlink_utf8(entry, link) }
        if let hardlink { archive_entry_set_hardlink_utf8(entry, hardlink) }
        let status = archive_write_header(archive, entry)
        if let failure { throw failure }
        // WARN: a name ustar cannot hold went into a PAX record instead, which is the point.
        guard status == ARCHIVE_OK || status == ARCHIVE_WARN else {
            throw OCIError(.io, "cannot archive \(path): \(Self.message(archive))")
        }
    }

    private func data(_ bytes: ArraySlice<UInt8>, path: String) throws(OCIError) {
        let n = bytes.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, $0.count) }
        if let failure { throw failure }
        guard n == bytes.count else { throw OCIError(.io, "cannot archive \(path): \(Self.message(archive))") }
    }

    /// Exactly `size` bytes of `fd`: a file that shrinks meanwhile is an error, not a padded
    /// entry. (No buildpack process outlives its sandbox, so nothing writes during an export.)
    private func copy(_ fd: Int32, size: Int64, path: String) throws(OCIError) {
        var remaining = size
        while remaining > 0 {
            let want = Int(min(Int64(buffer.count), remaining))
            let n = try OCIError.attempt("read", path) { () throws(Errno) in
                try buffer.withUnsafeMutableBytes { raw in systemCall { read(fd, raw.baseAddress, want) } }.get()
            }
            if n == 0 { throw OCIError(.io, "\(path) shrank while it was being exported", path: path) }
            try data(buffer[0..<n], path: path)
            remaining -= Int64(n)
        }
    }

    /// Ends the tar and names the blob by its digest.
    public func finish() throws(OCIError) -> Descriptor {
        precondition(!finished)
        finished = true
        let status = archive_write_close(archive)
        if let failure { throw failure }
        guard status == ARCHIVE_OK else { throw OCIError(.io, "cannot finish a tar layer: \(Self.message(archive))") }
        return try blob.commit(mediaType: MediaType.layer)
    }

    static func message(_ archive: OpaquePointer) -> String {
        archive_error_string(archive).map { String(cString: $0) } ?? "libarchive error \(archive_errno(archive))"
    }
}
