import Glibc
import SystemCalls
import SystemPackage

/// What a directory tree takes on disk, measured with `stat` alone and without following any
/// link: allocated blocks (what a full disk is made of, not apparent sizes), the largest file's
/// apparent size (what an archiver would read, holes included) and the newest change (ctime).
public struct TreeUsage: Sendable, Equatable {
    public var bytes: UInt64 = 0
    public var largestFile: UInt64 = 0
    public var newestChange: Int64 = 0

    public init() {}

    /// Usage per entry of `path` (each with everything beneath it); nil when `path` cannot be read.
    /// A directory the invoker may not enter counts as its own inode only.
    public static func perEntry(of path: String) -> [String: TreeUsage]? {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard let entries = try? FileDescriptor(rawValue: fd).directoryEntries() else { return nil }
        var result: [String: TreeUsage] = [:]
        for entry in entries {
            var usage = TreeUsage()
            usage.add(fd, entry.bytes, depth: 0)
            result[entry.name] = usage
        }
        return result
    }

    /// The whole tree at `path`, itself included.
    public static func of(_ path: String) -> TreeUsage {
        var usage = TreeUsage()
        usage.add(AT_FDCWD, Array(path.utf8), depth: 0)
        return usage
    }

    private mutating func add(_ parent: Int32, _ name: [UInt8], depth: Int) {
        var st = stat()
        let found = (name + [0]).withUnsafeBufferPointer { raw in
            raw.withMemoryRebound(to: CChar.self) { fstatat(parent, $0.baseAddress!, &st, AT_SYMLINK_NOFOLLOW) == 0 }
        }
        guard found else { return }
        bytes += UInt64(max(st.st_blocks, 0)) * 512
        newestChange = max(newestChange, Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec))
        if st.st_mode & S_IFMT == S_IFREG { largestFile = max(largestFile, UInt64(max(st.st_size, 0))) }
        guard st.st_mode & S_IFMT == S_IFDIR, depth < LayerWriter.maxDepth else { return }
        let fd = (name + [0]).withUnsafeBufferPointer { raw in
            raw.withMemoryRebound(to: CChar.self) { openat(parent, $0.baseAddress!, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        }
        guard fd >= 0 else { return }
        defer { close(fd) }
        for entry in (try? FileDescriptor(rawValue: fd).directoryEntries()) ?? [] { add(fd, entry.bytes, depth: depth + 1) }
    }

    public static func + (a: TreeUsage, b: TreeUsage) -> TreeUsage {
        var sum = TreeUsage()
        sum.bytes = a.bytes + b.bytes
        sum.largestFile = max(a.largestFile, b.largestFile)
        sum.newestChange = max(a.newestChange, b.newestChange)
        return sum
    }
}
