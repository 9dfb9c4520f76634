import Glibc

// The only file in the module that calls Glibc's file-system functions directly.
// Each wrapper retries EINTR and turns -1/errno into a `SpecError` that names the call and the path.

/// Linux flag values the Glibc module does not export (they sit behind `_GNU_SOURCE`).
/// The values are the same on every Linux architecture Swift supports (x86_64, aarch64).
enum LinuxFlags {
    static let O_PATH: Int32 = 0o10000000
    static let AT_EMPTY_PATH: Int32 = 0x1000
}

/// A thin, typed view of `errno`-returning calls.
enum Sys {
    static func error(_ call: String, _ path: String, _ err: Int32) -> SpecError {
        let kind: SpecError.Kind
        let reason: String
        switch err {
        case ENOENT: kind = .notFound; reason = "does not exist"
        case ELOOP: kind = .notRegularFile; reason = "is a symbolic link, which is not followed"
        case ENOTDIR: kind = .notRegularFile; reason = "has a component that is not a directory"
        case EISDIR: kind = .notRegularFile; reason = "is a directory"
        case EEXIST: kind = .io; reason = "already exists"
        default: kind = .io; reason = String(cString: strerror(err))
        }
        return SpecError(kind, "\(call)(\(path)) failed: \(reason)", file: path, syscall: call, errno: err)
    }

    static func openat(_ dirfd: Int32, _ name: String, _ flags: Int32, _ mode: mode_t = 0,
                       path: String) throws(SpecError) -> Int32 {
        while true {
            let fd = Glibc.openat(dirfd, name, flags, mode)
            if fd >= 0 { return fd }
            let err = Glibc.errno
            if err == EINTR { continue }
            throw error("openat", path, err)
        }
    }

    static func fstat(_ fd: Int32, path: String) throws(SpecError) -> stat {
        var st = stat()
        if Glibc.fstat(fd, &st) != 0 { throw error("fstat", path, Glibc.errno) }
        return st
    }

    /// `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)`; `nil` when the entry does not exist.
    static func lstatat(_ dirfd: Int32, _ name: String, path: String) throws(SpecError) -> stat? {
        var st = stat()
        if Glibc.fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
            let err = Glibc.errno
            if err == ENOENT { return nil }
            throw error("fstatat", path, err)
        }
        return st
    }

    /// Reads up to `count` bytes into `buffer`; 0 means end of file. Retries EINTR.
    static func read(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, path: String) throws(SpecError) -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            let err = Glibc.errno
            if err == EINTR { continue }
            throw error("read", path, err)
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(SpecError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
            }
            if n < 0 {
                let err = Glibc.errno
                if err == EINTR { continue }
                throw error("write", path, err)
            }
            offset += n
        }
    }

    static func fsync(_ fd: Int32, path: String) throws(SpecError) {
        while Glibc.fsync(fd) != 0 {
            let err = Glibc.errno
            if err == EINTR { continue }
            throw error("fsync", path, err)
        }
    }

    static func close(_ fd: Int32) {
        // close() must not be retried on Linux: the descriptor is released even when it reports EINTR.
        _ = Glibc.close(fd)
    }

    static func mkdirat(_ dirfd: Int32, _ name: String, _ mode: mode_t, path: String) throws(SpecError) {
        if Glibc.mkdirat(dirfd, name, mode) != 0 { throw error("mkdirat", path, Glibc.errno) }
    }

    static func renameat(_ fromfd: Int32, _ from: String, _ tofd: Int32, _ to: String, path: String) throws(SpecError) {
        if Glibc.renameat(fromfd, from, tofd, to) != 0 { throw error("renameat", path, Glibc.errno) }
    }

    static func unlinkat(_ dirfd: Int32, _ name: String, _ flags: Int32, path: String) throws(SpecError) {
        if Glibc.unlinkat(dirfd, name, flags) != 0 { throw error("unlinkat", path, Glibc.errno) }
    }

    /// The entries of the directory open at `fd` (a readable directory descriptor, consumed),
    /// without `.` and `..`, as raw names and `d_type`.
    static func readDirectory(consuming fd: Int32, path: String) throws(SpecError) -> [(name: [UInt8], type: UInt8)] {
        guard let dir = Glibc.fdopendir(fd) else {
            let err = Glibc.errno
            close(fd)
            throw error("fdopendir", path, err)
        }
        defer { Glibc.closedir(dir) }
        var out: [(name: [UInt8], type: UInt8)] = []
        let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        while true {
            Glibc.errno = 0
            guard let entry = Glibc.readdir(dir) else {
                let err = Glibc.errno
                if err != 0 { throw error("readdir", path, err) }
                break
            }
            // Read d_name through a pointer: the record may be shorter than `sizeof(struct dirent)`.
            let namePointer = (UnsafeRawPointer(entry) + nameOffset).assumingMemoryBound(to: CChar.self)
            let name = Array(UnsafeRawBufferPointer(start: namePointer, count: strlen(namePointer)))
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            out.append((name, entry.pointee.d_type))
        }
        return out
    }
}
