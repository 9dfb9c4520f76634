import Glibc
import SystemCalls
import SystemPackage

/// What a directory tree looks like to `stat`, hashed: names, types, modes, owners, sizes, link
/// targets, inode numbers, modification and change times. Reading no file contents, it tells in
/// a walk whether a tree is the one seen before: a file replaced gets a new inode, one written in
/// place a new ctime, which no process can set back (`touch -r` restores only the mtime). Stockade
/// itself changes ctimes when it hands a tree over (chown, chmod), so a fingerprint is compared
/// only with one taken after the last such step. Only meaningful on one host within one run: it
/// never leaves memory.
public enum TreeFingerprint {
    public static func of(_ path: String) -> Digest? {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let hasher = SHA256()
        guard visit(fd, prefix: "", hasher: hasher, depth: 0) else { return nil }
        return hasher.finish()
    }

    private static func visit(_ directory: Int32, prefix: String, hasher: SHA256, depth: Int) -> Bool {
        guard depth <= LayerWriter.maxDepth,
              let names = try? FileDescriptor(rawValue: directory).directoryEntries().map(\.name) else { return false }
        for name in names {
            var st = stat()
            guard fstatat(directory, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return false }
            var line = "\(prefix)\(name)\u{0}\(st.st_mode) \(st.st_uid) \(st.st_gid) \(st.st_size) \(st.st_ino) "
                + "\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) \(st.st_ctim.tv_sec).\(st.st_ctim.tv_nsec)"
            if st.st_mode & S_IFMT == S_IFLNK {
                var target = [UInt8](repeating: 0, count: Int(PATH_MAX))
                let n = target.withUnsafeMutableBufferPointer { readlinkat(directory, name, $0.baseAddress!, $0.count) }
                line += " -> " + String(decoding: target[0..<max(n, 0)], as: UTF8.self)
            }
            line += "\n"
            line.utf8.withContiguousStorageIfAvailable { hasher.update(UnsafeRawBufferPointer($0)) }
            if st.st_mode & S_IFMT == S_IFDIR {
                let child = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { return false }
                defer { close(child) }
                guard visit(child, prefix: prefix + name + "/", hasher: hasher, depth: depth + 1) else { return false }
            }
        }
        return true
    }
}
