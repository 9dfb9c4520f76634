import Glibc
import OCI
import SystemCalls
import SystemPackage

/// Copies the app into the private workspace the build may change: the
/// user's source is never handed to a buildpack writable. Symlinks are copied
/// as symlinks, never followed; sockets, FIFOs and devices are left out.
/// `include` / `exclude` are project.toml's gitignore-style patterns (`*`,
/// `?`, `[...]`, `**`, a leading `/` anchors, a trailing `/` means a directory).
public struct WorkspaceCopy: Sendable {
    public var include: [String]
    public var exclude: [String]
    /// Paths relative to the app that are never copied, whatever the patterns say: the
    /// platform's own outputs (an image layout, a cache) when they sit inside the app.
    public var skipping: Set<String>
    /// What the copy is charged to, file by file before it is written (holes are copied as data).
    public var budget: DiskAccount?

    public init(include: [String] = [], exclude: [String] = [], skipping: Set<String> = [], budget: DiskAccount? = nil) {
        self.include = include
        self.exclude = exclude
        self.skipping = skipping
        self.budget = budget
    }

    /// Copies the contents of `source` into the existing directory `destination`.
    public func copy(from source: String, to destination: String) throws(LifecycleError) {
        try copyDirectory(source, destination, relative: "")
    }

    private func copyDirectory(_ source: String, _ destination: String, relative: String) throws(LifecycleError) {
        let names: [String]
        do {
            let dir = FileDescriptor(rawValue: try systemCall { open(source, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }.get())
            defer { try? dir.close() }
            names = try dir.directoryEntries().map(\.name)
        } catch {
            throw failure("cannot read", source, error)
        }
        for name in names {
            let path = relative.isEmpty ? name : relative + "/" + name
            if skipping.contains(path) { continue }
            let from = source + "/" + name, to = destination + "/" + name
            var st = stat()
            guard lstat(from, &st) == 0 else { throw failure("cannot examine", from) }
            let isDirectory = st.st_mode & S_IFMT == S_IFDIR
            if Self.matches(exclude, path: path, isDirectory: isDirectory) { continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                try charge(DiskAccount.blocks(1), for: from)
                guard mkdir(to, 0o755) == 0 || errno == EEXIST else { throw failure("cannot create", to) }
                try copyDirectory(from, to, relative: path)
                chmod(to, st.st_mode & 0o777)
                if !include.isEmpty && !Self.matches(include, path: path, isDirectory: true) { rmdir(to) }
            case S_IFREG:
                if !include.isEmpty && !Self.matches(include, path: path, isDirectory: false, orAncestor: true) { continue }
                try charge(DiskAccount.blocks(UInt64(max(st.st_size, 1))), for: from)
                try copyFile(from, to, mode: st.st_mode & 0o777)
            case S_IFLNK:
                if !include.isEmpty && !Self.matches(include, path: path, isDirectory: false, orAncestor: true) { continue }
                var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlink(from, &target, Int(PATH_MAX))
                guard n >= 0 else { throw failure("cannot read the link", from) }
                target[n] = 0
                guard symlink(target, to) == 0 else { throw failure("cannot create the link", to) }
            default:
                continue
            }
        }
    }

    private func copyFile(_ from: String, _ to: String, mode: mode_t) throws(LifecycleError) {
        let input = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard input >= 0 else { throw failure("cannot open", from) }
        defer { close(input) }
        let output = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard output >= 0 else { throw failure("cannot create", to) }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n: Int
            switch buffer.withUnsafeMutableBytes({ raw in systemCall { read(input, raw.baseAddress, raw.count) } }) {
            case .success(let count): n = count
            case .failure(let error): throw failure("cannot read", from, error)
            }
            if n == 0 { break }
            do {
                try buffer.withUnsafeBytes { raw in
                    Result { () throws(Errno) in try FileDescriptor(rawValue: output).writeAll(UnsafeRawBufferPointer(rebasing: raw[0..<n])) }
                }.get()
            } catch {
                throw failure("cannot write", to, error)
            }
        }
        fchmod(output, mode)
    }

    private func charge(_ bytes: UInt64, for path: String) throws(LifecycleError) {
        do {
            try budget?.charge(bytes, for: "the app's copy of \(path)")
        } catch {
            throw LifecycleError("cannot copy the app for the build: \(error)", exitCode: LifecycleError.Code.buildOverBudget)
        }
    }

    private func failure(_ what: String, _ path: String, _ error: Errno = .current) -> LifecycleError {
        LifecycleError("\(what) \(path): \(error)", exitCode: LifecycleError.Code.invalidArguments)
    }

    /// Whether any pattern matches `path` (relative, `/`-separated) — or, with
    /// `orAncestor`, one of its parent directories.
    static func matches(_ patterns: [String], path: String, isDirectory: Bool, orAncestor: Bool = false) -> Bool {
        if patterns.contains(where: { match($0, path: path, isDirectory: isDirectory) }) { return true }
        guard orAncestor else { return false }
        var parts = path.split(separator: "/").map(String.init)
        parts.removeLast()
        while !parts.isEmpty {
            let ancestor = parts.joined(separator: "/")
            if patterns.contains(where: { match($0, path: ancestor, isDirectory: true) }) { return true }
            parts.removeLast()
        }
        return false
    }

    static func match(_ raw: String, path: String, isDirectory: Bool) -> Bool {
        var pattern = raw.trimmingTrailingSpaces()
        if pattern.isEmpty || pattern.hasPrefix("#") { return false }
        if pattern.hasSuffix("/") {
            guard isDirectory else { return false }
            pattern.removeLast()
        }
        var anchored = pattern.contains("/")
        if pattern.hasPrefix("/") {
            pattern.removeFirst()
            anchored = true
        }
        if pattern.hasPrefix("**/") {
            pattern.removeFirst(3)
            anchored = false
        }
        if !anchored {
            // A bare name matches at any depth: try the path and every suffix.
            let parts = path.split(separator: "/")
            return parts.indices.contains { fnmatch(pattern, parts[$0...].joined(separator: "/"), FNM_PATHNAME) == 0 }
        }
        let collapsed = pattern.replacingDoubleStars()
        return fnmatch(collapsed, path, 0) == 0 || fnmatch(pattern, path, FNM_PATHNAME) == 0
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.hasSuffix(" ") { s.removeLast() }
        return s
    }

    /// `a/**/b` → `a/*b` for a match without FNM_PATHNAME, where `*` crosses `/`.
    func replacingDoubleStars() -> String {
        split(separator: "**/", omittingEmptySubsequences: false).joined(separator: "*")
    }
}
