import Glibc
import SystemCalls
import SystemPackage

/// What the supervisor looks up on the host while planning, before any clone.
enum HostFiles {
    enum Kind: Equatable { case directory, regular, symlink, other }

    struct Identity: Equatable {
        var device: UInt64
        var inode: UInt64
        var kind: Kind
    }

    /// lstat(2): the entry itself, not what a symlink points at.
    static func entry(_ path: String) -> Identity? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), kind: kind(st.st_mode))
    }

    /// stat(2) through symlinks.
    static func target(_ path: String) -> Identity? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), kind: kind(st.st_mode))
    }

    private static func kind(_ mode: mode_t) -> Kind {
        switch mode & S_IFMT {
        case S_IFDIR: .directory
        case S_IFREG: .regular
        case S_IFLNK: .symlink
        default: .other
        }
    }

    /// The canonical absolute path, every symlink resolved; nil with errno set.
    static func canonical(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, Int(PATH_MAX))
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Names in a directory, sorted, without "." and "..".
    static func list(_ path: String) -> [String]? {
        guard case .success(let raw) = systemCall({ open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }) else { return nil }
        let dir = FileDescriptor(rawValue: raw)
        defer { try? dir.close() }
        return try? dir.directoryEntries().map(\.name)
    }

    /// Reads at most `limit` bytes of a regular file without following a final
    /// symlink; nil when it is absent, not regular, or larger than the limit.
    static func read(_ path: String, limit: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, Int(st.st_size) <= limit else { return nil }
        // Sized by fstat rather than by the limit: zeroing a 1 MiB buffer cost
        // more than the rest of planning. One byte over notices a file that
        // grew past the limit since fstat. procfs reports size 0: chunks.
        var capacity = st.st_size > 0 ? min(Int(st.st_size), limit) + 1 : min(4096, limit + 1)
        var bytes = [UInt8](repeating: 0, count: capacity)
        var total = 0
        while total <= limit {
            if total == capacity {
                guard st.st_size == 0 else { break }
                capacity = min(capacity * 2, limit + 1)
                bytes += [UInt8](repeating: 0, count: capacity - bytes.count)
            }
            let n = bytes.withUnsafeMutableBytes { buf in
                systemCall { Glibc.read(fd, buf.baseAddress! + total, capacity - total) }
            }
            guard case .success(let count) = n, count > 0 else { break }
            total += count
        }
        guard total <= limit else { return nil }
        return Array(bytes[0..<total])
    }

    static func isExecutable(_ path: String) -> Bool {
        access(path, X_OK) == 0
    }
}
