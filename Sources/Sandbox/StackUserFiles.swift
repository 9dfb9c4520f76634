import Glibc
import Seccomp
import SystemCalls
import SystemPackage

/// Host directories the stack user writes into, and what is left of them
/// afterwards. Which host id the stack user is (IdentityMapping) decides how.
public enum StackUserFiles {
    /// Lets the stack user write everywhere beneath `path` (a directory the
    /// caller made and keeps private): root hands the tree to the mapped ids;
    /// an invoker that is itself the stack user has nothing to do; with a
    /// subordinate range, which an unprivileged user cannot chown to, the
    /// tree becomes writable by all (its private parent keeps others out).
    /// Symlinks inside are never followed.
    public static func makeWritable(_ path: String, for user: StackUser) throws(SandboxError) {
        UserNamespaces.probe()
        let mapping = try IdentityMapping.forCurrentProcess(user)
        if geteuid() == 0, let uid = mapping.hostUID(user.uid), let gid = mapping.hostGID(user.gid) {
            try walk(path) { parent, name, st in
                fchownat(parent, name, uid, gid, AT_SYMLINK_NOFOLLOW) == 0 ? nil : "chown"
            }
        } else if mapping.setupIdentity != nil {
            try walk(path) { parent, name, st in
                let kind = st.st_mode & S_IFMT
                guard kind == S_IFDIR || kind == S_IFREG else { return nil }
                // a+rw, and x for directories and for files executable by someone (chmod a+rwX).
                let executable = kind == S_IFDIR || st.st_mode & 0o111 != 0
                let mode = st.st_mode & 0o7777 | 0o666 | (executable ? 0o111 : 0)
                return fchmodat(parent, name, mode, 0) == 0 ? nil : "chmod"
            }
        }
    }

    /// Lets the stack user pass through `path`, a private directory of the invoker, to what
    /// it is handed beneath. Needed only where sandboxes run without namespaces as a host id
    /// of their own: their views are then host paths, reached by name rather than mounted.
    /// Search only, and for the stack group only.
    public static func makeReachable(_ path: String, for user: StackUser) throws(SandboxError) {
        guard case .unavailable = UserNamespaces.probe(), UserNamespaces.privileged else { return }
        guard chown(path, uid_t.max, user.gid) == 0, chmod(path, 0o710) == 0 else {
            throw SandboxError(.system, "cannot let the stack user reach \(path)", errno: Errno.current.rawValue)
        }
    }

    /// Visits `path` and everything beneath it without following symlinks;
    /// `visit` returns the name of the call that failed, or nil.
    private static func walk(_ path: String, _ visit: (Int32, String, stat) -> String?) throws(SandboxError) {
        let slash = path.lastIndex(of: "/") ?? path.startIndex
        let parentPath = slash == path.startIndex ? "/" : String(path[..<slash])
        let parent = open(parentPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { throw SandboxError(.system, "cannot open \(parentPath)", errno: Errno.current.rawValue) }
        defer { close(parent) }
        try visitTree(parent, String(path[path.index(after: slash)...]), display: path, visit)
    }

    private static func visitTree(_ parent: Int32, _ name: String, display: String,
                                  _ visit: (Int32, String, stat) -> String?) throws(SandboxError) {
        var st = stat()
        guard fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw SandboxError(.system, "cannot examine \(display)", errno: Errno.current.rawValue)
        }
        if st.st_mode & S_IFMT == S_IFDIR {
            let dir: FileDescriptor
            switch systemCall({ openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }) {
            case .success(let raw): dir = FileDescriptor(rawValue: raw)
            case .failure(let error): throw SandboxError(.system, "cannot read \(display)", errno: error.rawValue)
            }
            defer { try? dir.close() }
            let children: [DirectoryEntry]
            do {
                children = try dir.directoryEntries()
            } catch {
                throw SandboxError(.system, "cannot read \(display)", errno: error.rawValue)
            }
            for child in children.map(\.name) {
                try visitTree(dir.rawValue, child, display: display + "/" + child, visit)
            }
        }
        if let failed = visit(parent, name, st) {
            throw SandboxError(.system, "\(failed) \(display)", errno: Errno.current.rawValue)
        }
    }

    /// Lets the invoker read everything the stack user wrote beneath `paths`, to export it.
    /// Only a subordinate range needs this (root reads anything; a single id is the invoker):
    /// the stack user adds read permission for all to its own files, from inside one sandbox
    /// where only `paths` are visible (find follows no link; chmod is never given one).
    public static func makeReadable(_ paths: [String], for user: StackUser) throws(SandboxError) {
        UserNamespaces.probe()
        let mapping = try IdentityMapping.forCurrentProcess(user)
        guard geteuid() != 0, mapping.setupIdentity != nil, !paths.isEmpty else { return }
        let trees = paths.indices.map { "/tree/\($0)" }
        let plan = SandboxPlan(command: ["/usr/bin/find"] + trees + ["-uid", String(user.uid), "!", "-type", "l",
                                         "-exec", "/bin/chmod", "a+rX", "--", "{}", "+"], user: user,
                               mounts: zip(paths, trees).map { .bind(source: $0, destination: $1, readOnly: false) },
                               syscallFilter: .profile(try defaultProfile()))
        let outcome = try Sandbox.run(plan)
        guard outcome.termination == .exited(0) else {
            throw SandboxError(.system, "cannot open \(paths.joined(separator: " and ")) to the invoker: find/chmod ended with \(outcome.termination)")
        }
    }

    /// Removes everything beneath `path` and `path` itself, including files
    /// the stack user made that the invoker cannot delete (a subordinate
    /// range): those go from inside a sandbox, as the stack user.
    public static func removeTree(_ path: String, for user: StackUser) throws(SandboxError) {
        if remove(path) { return }
        // What is left lies in directories the stack user made. Open ours to it
        // (chmod only changes what we own); it opens its own, each before find descends
        // into it (so one it made unreadable is read next), then deletes them.
        _ = try Spawn.wait(try Spawn.start(["/bin/chmod", "-R", "a+rwX", "--", path], quiet: true), "/bin/chmod")
        // Both in one sandbox: the deletion's status is the sandbox's.
        let script = "/usr/bin/find /doomed -type d -uid \"$1\" -exec /bin/chmod u+rwx -- {} \\; ; exec /usr/bin/find /doomed -mindepth 1 -delete"
        let outcome = try Sandbox.run(SandboxPlan(command: ["/bin/sh", "-c", script, "sh", String(user.uid)], user: user,
                                                  mounts: [.bind(source: path, destination: "/doomed", readOnly: false)],
                                                  syscallFilter: .profile(try defaultProfile())))
        guard outcome.termination == .exited(0), remove(path) else {
            throw SandboxError(.system, "cannot remove \(path): files of the stack user remain")
        }
    }

    /// Removes the tree as the invoker; whether nothing is left. A failure is not an error here:
    /// what the invoker may not delete is the stack user's, which the caller deletes next.
    private static func remove(_ path: String) -> Bool {
        (try? SystemCalls.removeTree(atPath: path)) != nil
    }

    private static func defaultProfile() throws(SandboxError) -> BPFProgram {
        do {
            let source = try ProfileSource.resolve("default")
            return try SeccompCompiler.compile(source, cache: FilterCache.forCurrentUser()).program
        } catch {
            throw SandboxError(.system, "cannot compile the default profile: \(error)")
        }
    }
}
