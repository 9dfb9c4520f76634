import Glibc
import SystemPackage

/// A failed system call on a file: which call, on which path, and the kernel's `errno`.
public struct FileError: Error, Sendable, Equatable, CustomStringConvertible {
    public let call: String
    public let path: String
    public let errno: Errno

    public init(_ call: String, _ path: String, _ errno: Errno) {
        self.call = call
        self.path = path
        self.errno = errno
    }

    public var description: String { "\(call) \(path): \(errno)" }
}

/// Deeper than this no path can name (each level takes at least two of PATH_MAX's 4096 bytes),
/// so no tree made through paths reaches it; one that does is refused rather than walked.
private let removalDepthLimit = 2048

extension FileDescriptor {
    /// Removes `name` in this directory and, if it is a directory, everything beneath it; `path`
    /// names it in errors. No symbolic link is followed: every directory is opened relative to
    /// its parent's descriptor with `O_NOFOLLOW`, and a link is unlinked as itself. A directory
    /// the caller owns is made writable first (an image's may be read-only). What is already
    /// gone, at the top or beneath, is not an error. The walk keeps its own stack, one
    /// descriptor a level, and refuses trees deeper than any path can name (`ENAMETOOLONG`).
    public func removeTree(_ name: String, path: String) throws(FileError) {
        try removeTree(Array(name.utf8), path: path)
    }

    /// `removeTree(_:path:)` for a name as raw bytes (any but `/` and NUL, not necessarily UTF-8).
    public func removeTree(_ name: [UInt8], path: String) throws(FileError) {
        struct Level {
            let directory: FileDescriptor
            let name: [UInt8]
            let path: String
            var children: [DirectoryEntry]
        }
        guard let top = try removeOrOpen(name, path: path) else { return }
        var stack = [Level(directory: top, name: name, path: path, children: [])]
        defer { for level in stack { try? level.directory.close() } }
        stack[0].children = try stack[0].directory.entries(path: path)
        while let level = stack.last {
            guard let child = stack[stack.count - 1].children.popLast() else {
                stack.removeLast()
                try? level.directory.close()
                let parent = stack.last?.directory ?? self
                try parent.unlink(level.name, flags: AT_REMOVEDIR, path: level.path)
                continue
            }
            let childPath = level.path + "/" + child.name
            guard let opened = try level.directory.removeOrOpen(child.bytes, path: childPath) else { continue }
            guard stack.count < removalDepthLimit else {
                try? opened.close()
                throw FileError("open", childPath, .fileNameTooLong)
            }
            stack.append(Level(directory: opened, name: child.bytes, path: childPath, children: []))
            stack[stack.count - 1].children = try opened.entries(path: childPath)
        }
    }

    /// Unlinks `name` here if it is not a directory (nil then, also when it is already gone);
    /// otherwise opens it, without following a link, and makes it writable for its emptying.
    private func removeOrOpen(_ name: [UInt8], path: String) throws(FileError) -> FileDescriptor? {
        // unlinkat(2) refuses a directory with EISDIR: one call serves every other kind of file.
        switch withCString(name, { name in systemCall { unlinkat(rawValue, name, 0) } }) {
        case .success: return nil
        case .failure(.noSuchFileOrDirectory): return nil
        case .failure(.isDirectory): break
        case .failure(let error): throw FileError("remove", path, error)
        }
        let opened = withCString(name) { name in systemCall { openat(rawValue, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) } }
        switch opened {
        case .success(let raw):
            // Fails harmlessly on a directory someone else owns; its removal then says why.
            _ = fchmod(raw, 0o700)
            return FileDescriptor(rawValue: raw)
        case .failure(.noSuchFileOrDirectory): return nil
        case .failure(let error): throw FileError("open", path, error)
        }
    }

    private func entries(path: String) throws(FileError) -> [DirectoryEntry] {
        do {
            return try directoryEntries()
        } catch {
            throw FileError("opendir", path, error)
        }
    }

    private func unlink(_ name: [UInt8], flags: Int32, path: String) throws(FileError) {
        switch withCString(name, { name in systemCall { unlinkat(rawValue, name, flags) } }) {
        case .success, .failure(.noSuchFileOrDirectory): return
        case .failure(let error): throw FileError("remove", path, error)
        }
    }
}

/// Removes the tree at `path` as `FileDescriptor.removeTree` does. The directories leading to it
/// are the caller's (followed as named); the last component and everything beneath are not followed.
public func removeTree(atPath path: String) throws(FileError) {
    let slash = path.lastIndex(of: "/")
    let parentPath = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    let parent: FileDescriptor
    switch systemCall({ open(parentPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }) {
    case .success(let raw): parent = FileDescriptor(rawValue: raw)
    case .failure(.noSuchFileOrDirectory): return
    case .failure(let error): throw FileError("open", parentPath, error)
    }
    defer { try? parent.close() }
    try parent.removeTree(name, path: path)
}

/// `body` with `bytes` as a NUL-terminated C string.
private func withCString<Result>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) -> Result) -> Result {
    (bytes + [0]).withUnsafeBytes { body($0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
}
