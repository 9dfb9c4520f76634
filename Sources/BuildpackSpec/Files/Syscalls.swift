import Glibc
import SystemCalls
import SystemPackage

// The only file in the module that calls Glibc's file-system functions directly, through the
// system-call layer (which retries EINTR); each wrapper turns an `Errno` into a `SpecError` that
// names the call and the path.

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
        default: kind = .io; reason = Errno(rawValue: err).description
        }
        return SpecError(kind, "\(call)(\(path)) failed: \(reason)", file: path, syscall: call, errno: err)
    }

    static func openat(_ dirfd: Int32, _ name: String, _ flags: Int32, _ mode: mode_t = 0,
                       path: String) throws(SpecError) -> Int32 {
        try check("openat", path, systemCall { Glibc.openat(dirfd, name, flags, mode) })
    }

    static func fstat(_ fd: Int32, path: String) throws(SpecError) -> stat {
        var st = stat()
        _ = try check("fstat", path, systemCall { Glibc.fstat(fd, &st) })
        return st
    }

    /// `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)`; `nil` when the entry does not exist.
    static func lstatat(_ dirfd: Int32, _ name: String, path: String) throws(SpecError) -> stat? {
        var st = stat()
        switch systemCall({ Glibc.fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) }) {
        case .success: return st
        case .failure(.noSuchFileOrDirectory): return nil
        case .failure(let errno): throw error("fstatat", path, errno.rawValue)
        }
    }

    /// At most `limit` bytes of `fd`, to end of file; more is `.tooLarge`, saying `grew` when the size
    /// checked beforehand was within the limit.
    static func readAll(_ fd: Int32, limit: Int, path: String) throws(SpecError) -> [UInt8] {
        let read: (bytes: [UInt8], exceeded: Bool)
        do {
            read = try FileDescriptor(rawValue: fd).readAll(limit: limit)
        } catch {
            throw Self.error("read", path, error.rawValue)
        }
        if read.exceeded {
            throw SpecError(.tooLarge, "\(path) has more than \(limit) bytes (it grew while being read)", file: path)
        }
        return read.bytes
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(SpecError) {
        do {
            try FileDescriptor(rawValue: fd).writeAll(bytes)
        } catch {
            throw Self.error("write", path, error.rawValue)
        }
    }

    static func fsync(_ fd: Int32, path: String) throws(SpecError) {
        _ = try check("fsync", path, systemCall { Glibc.fsync(fd) })
    }

    static func close(_ fd: Int32) {
        // close() must not be retried on Linux: the descriptor is released even when it reports EINTR.
        _ = Glibc.close(fd)
    }

    static func mkdirat(_ dirfd: Int32, _ name: String, _ mode: mode_t, path: String) throws(SpecError) {
        _ = try check("mkdirat", path, systemCall(retryOnInterrupt: false) { Glibc.mkdirat(dirfd, name, mode) })
    }

    static func renameat(_ fromfd: Int32, _ from: String, _ tofd: Int32, _ to: String, path: String) throws(SpecError) {
        _ = try check("renameat", path, systemCall(retryOnInterrupt: false) { Glibc.renameat(fromfd, from, tofd, to) })
    }

    static func unlinkat(_ dirfd: Int32, _ name: String, _ flags: Int32, path: String) throws(SpecError) {
        _ = try check("unlinkat", path, systemCall(retryOnInterrupt: false) { Glibc.unlinkat(dirfd, name, flags) })
    }

    /// The entries of the directory open at `fd` (a readable directory descriptor, consumed),
    /// without `.` and `..`, as raw names and `d_type`, in byte order of name.
    static func readDirectory(consuming fd: Int32, path: String) throws(SpecError) -> [(name: [UInt8], type: UInt8)] {
        defer { close(fd) }
        do {
            return try FileDescriptor(rawValue: fd).directoryEntries().map { ($0.bytes, $0.type) }
        } catch {
            throw Self.error("readdir", path, error.rawValue)
        }
    }

    /// The value of a call, or the error naming it.
    private static func check<Value>(_ call: String, _ path: String, _ result: Result<Value, Errno>) throws(SpecError) -> Value {
        switch result {
        case .success(let value): return value
        case .failure(let errno): throw error(call, path, errno.rawValue)
        }
    }
}
