import Glibc
import SystemCalls
import SystemPackage

/// One step of building the sandbox's root, executed in order by the child.
public struct MountStep: Sendable, Equatable {
    public struct Owner: Sendable, Equatable {
        public var uid: UInt32
        public var gid: UInt32
    }

    public enum Action: Sendable, Equatable {
        /// `source` is canonical; `device`/`inode` are what it was when planned.
        case bind(source: String, readOnly: Bool, devices: Bool, optional: Bool, device: UInt64, inode: UInt64)
        /// `size` in bytes; 0: the kernel's default (half of RAM).
        case tmpfs(mode: UInt32, owner: Owner?, size: UInt64)
        case proc
        case devpts
        case symlink(target: String)
        case file(contents: [UInt8], mode: UInt32, owner: Owner?)
        case directory(mode: UInt32, owner: Owner?)
        case remountReadOnly(recursive: Bool)
        /// Bind a path of the new root onto itself read-only, when it exists.
        case maskReadOnly
    }

    public var destination: String
    public var action: Action
}

extension MountRequest {
    var destination: String {
        switch self {
        case .bind(_, let destination, _), .tmpfs(let destination): destination
        }
    }

    var destinationDepth: Int { destination.split(separator: "/").count }
}

/// The whole filesystem plan: what the child mounts, and where the command may write.
public struct FilesystemLayout: Sendable, Equatable {
    public var steps: [MountStep] = []
    /// Paths inside the sandbox the command may write beneath (Landlock rules).
    public var writablePaths: [String] = []

    /// From the host /etc, only what programs need to run, resolve names and
    /// verify certificates: never shadow, sudoers, ssh keys or other secrets.
    static let hostEtcEntries = [
        "alternatives", "ca-certificates", "gai.conf", "host.conf", "hosts", "ld.so.cache", "ld.so.conf",
        "ld.so.conf.d", "localtime", "nsswitch.conf", "os-release", "protocols", "resolv.conf", "services",
    ]
    /// Of /etc/ssl, the public parts only (Debian's `certs` and `openssl.cnf`, other distributions'
    /// `cert.pem` bundle): `private`, where the host keeps its TLS keys, is never bound.
    static let hostSSLEntries = ["cert.pem", "certs", "ct_log_list.cnf", "openssl.cnf"]
    static let systemLinks = ["bin", "lib", "lib32", "lib64", "libx32", "sbin"]
    static let deviceNodes = ["full", "null", "random", "tty", "urandom", "zero"]
    /// Read-only over procfs: kernel tunables and triggers that a process with
    /// a leaked capability could use against the host.
    static let procMasks = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    /// Rootfs entries the sandbox provides itself.
    static let replacedRootEntries: Set<String> = ["dev", "home", "proc", "sys", "tmp"]
    static let fileSizeLimit = 1 << 20

    public init(steps: [MountStep] = [], writablePaths: [String] = []) {
        self.steps = steps
        self.writablePaths = writablePaths
    }

    public static func plan(_ plan: SandboxPlan) throws(SandboxError) -> FilesystemLayout {
        var layout = FilesystemLayout()
        let user = plan.user
        let stackOwner = MountStep.Owner(uid: user.uid, gid: user.gid)
        if let rootfs = plan.rootfs {
            try layout.addRootfs(rootfs, user: user, omitting: plan.rootfsOmitted)
        } else {
            try layout.addHostSystem(user: user)
        }
        layout.add("/proc", .proc)
        for mask in procMasks { layout.add(mask, .maskReadOnly) }
        let tmpfsSize = tmpfsBound(plan)
        try layout.addDevices(shmSize: tmpfsSize)
        layout.add("/tmp", .tmpfs(mode: 0o1777, owner: nil, size: tmpfsSize), writable: true)
        layout.add(user.home, .tmpfs(mode: 0o700, owner: stackOwner, size: tmpfsSize), writable: true)

        // Parents before children, whatever order the options came in.
        let requests = plan.mounts.enumerated().sorted { a, b in
            let (da, db) = (a.element.destinationDepth, b.element.destinationDepth)
            return da != db ? da < db : a.offset < b.offset
        }.map(\.element)
        for request in requests {
            switch request {
            case .bind(let source, let destination, let readOnly):
                let dest = try validDestination(destination)
                let (canonical, identity) = try existingSource(source)
                layout.add(dest, .bind(source: canonical, readOnly: readOnly, devices: false, optional: false,
                                       device: identity.device, inode: identity.inode), writable: !readOnly)
            case .tmpfs(let destination):
                layout.add(try validDestination(destination), .tmpfs(mode: 0o755, owner: stackOwner, size: tmpfsSize),
                           writable: true)
            }
        }
        // Last, so every mount point above could still be created.
        layout.add("/dev", .remountReadOnly(recursive: false))
        layout.add("/", .remountReadOnly(recursive: false))
        return layout
    }

    private mutating func add(_ destination: String, _ action: MountStep.Action, writable: Bool = false) {
        steps.append(MountStep(destination: destination, action: action))
        if writable { writablePaths.append(destination) }
    }

    private mutating func bind(_ source: String, at destination: String, identity: HostFiles.Identity,
                               readOnly: Bool = true, devices: Bool = false) {
        add(destination, .bind(source: source, readOnly: readOnly, devices: devices, optional: false,
                               device: identity.device, inode: identity.inode))
    }

    private mutating func addHostSystem(user: StackUser) throws(SandboxError) {
        guard let usr = HostFiles.entry("/usr"), usr.kind == .directory else {
            throw SandboxError(.missingPath, "the host has no /usr to run commands from; give a --rootfs")
        }
        bind("/usr", at: "/usr", identity: usr)
        for name in Self.systemLinks {
            let path = "/" + name
            guard let entry = HostFiles.entry(path) else { continue }
            switch entry.kind {
            case .symlink: if let target = HostFiles.readLink(path) { add(path, .symlink(target: target)) }
            case .directory: bind(path, at: path, identity: entry)
            default: continue
            }
        }
        add("/etc", .directory(mode: 0o755, owner: nil))
        for name in Self.hostEtcEntries { addHostEntry("/etc/" + name) }
        if HostFiles.entry("/etc/ssl")?.kind == .directory {
            add("/etc/ssl", .directory(mode: 0o755, owner: nil))
            for name in Self.hostSSLEntries { addHostEntry("/etc/ssl/" + name) }
        }
        add("/etc/passwd", .file(contents: Array(Self.passwd(base: "", user: user).utf8), mode: 0o644, owner: nil))
        add("/etc/group", .file(contents: Array(Self.group(base: "", user: user).utf8), mode: 0o644, owner: nil))
    }

    /// A host file or directory at the same path inside, read-only. A link into /usr still
    /// resolves inside; anything else (say resolv.conf → /run/...) is bound as what it points at.
    private mutating func addHostEntry(_ path: String) {
        guard let entry = HostFiles.entry(path) else { return }
        if entry.kind == .symlink {
            guard let real = HostFiles.canonical(path), let target = HostFiles.target(real) else { return }
            if real.hasPrefix("/usr/") {
                add(path, .symlink(target: real))
            } else if target.kind == .regular || target.kind == .directory {
                bind(real, at: path, identity: target)
            }
        } else if entry.kind == .regular || entry.kind == .directory {
            bind(path, at: path, identity: entry)
        }
    }

    private mutating func addRootfs(_ rootfs: String, user: StackUser, omitting: Set<String>) throws(SandboxError) {
        guard let root = HostFiles.canonical(rootfs), HostFiles.target(root)?.kind == .directory else {
            throw SandboxError(.missingPath, "rootfs \(rootfs) does not exist or is not a directory")
        }
        guard let names = HostFiles.list(root) else {
            throw SandboxError(.missingPath, "cannot list rootfs \(root)", errno: Errno.current.rawValue)
        }
        let prefix = root == "/" ? "" : root
        for name in names where !Self.replacedRootEntries.contains(name) && !omitting.contains(name) {
            let path = prefix + "/" + name
            guard let entry = HostFiles.entry(path) else { continue }
            if name == "etc" && entry.kind == .directory {
                try addRootfsEtc(path, identity: entry, user: user)
                continue
            }
            switch entry.kind {
            case .symlink: if let target = HostFiles.readLink(path) { add("/" + name, .symlink(target: target)) }
            case .directory, .regular: bind(path, at: "/" + name, identity: entry)
            case .other: continue
            }
        }
    }

    /// The image's /etc as it is when it already names the stack user;
    /// otherwise its entries with passwd and group extended by the stack user.
    private mutating func addRootfsEtc(_ etc: String, identity: HostFiles.Identity, user: StackUser) throws(SandboxError) {
        let passwd = HostFiles.read(etc + "/passwd", limit: Self.fileSizeLimit).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let group = HostFiles.read(etc + "/group", limit: Self.fileSizeLimit).map { String(decoding: $0, as: UTF8.self) } ?? ""
        if Self.names(id: user.uid, in: passwd) && Self.names(id: user.gid, in: group) {
            bind(etc, at: "/etc", identity: identity)
            return
        }
        add("/etc", .directory(mode: 0o755, owner: nil))
        for name in HostFiles.list(etc) ?? [] where name != "passwd" && name != "group" {
            let path = etc + "/" + name
            guard let entry = HostFiles.entry(path) else { continue }
            switch entry.kind {
            case .symlink: if let target = HostFiles.readLink(path) { add("/etc/" + name, .symlink(target: target)) }
            case .directory, .regular: bind(path, at: "/etc/" + name, identity: entry)
            case .other: continue
            }
        }
        add("/etc/passwd", .file(contents: Array(Self.passwd(base: passwd, user: user).utf8), mode: 0o644, owner: nil))
        add("/etc/group", .file(contents: Array(Self.group(base: group, user: user).utf8), mode: 0o644, owner: nil))
    }

    /// Each writable tmpfs the sandbox mounts: /tmp, /dev/shm, the home, every --tmpfs.
    static func tmpfsCount(_ plan: SandboxPlan) -> Int {
        3 + plan.mounts.filter { if case .tmpfs = $0 { true } else { false } }.count
    }

    /// The size of each writable tmpfs. Under a memory cgroup its pages are
    /// charged there, so one limit bounds them all; with rlimits only, the
    /// sizes are the only bound, so together they stay within the limit.
    static func tmpfsBound(_ plan: SandboxPlan) -> UInt64 {
        guard let memory = plan.limits.memory else { return 0 }
        let page: UInt64 = 4096
        let share = plan.enforcement.controllers.contains(.memory) ? memory : memory / UInt64(tmpfsCount(plan))
        return max(1 << 20, share / page * page)
    }

    /// /dev holds only mount points and links.
    static let deviceDirectorySize: UInt64 = 1 << 20

    private mutating func addDevices(shmSize: UInt64) throws(SandboxError) {
        add("/dev", .tmpfs(mode: 0o755, owner: nil, size: Self.deviceDirectorySize), writable: true)
        for name in Self.deviceNodes {
            let path = "/dev/" + name
            guard let entry = HostFiles.entry(path), entry.kind == .other else { continue }
            bind(path, at: path, identity: entry, readOnly: false, devices: true)
        }
        add("/dev/shm", .tmpfs(mode: 0o1777, owner: nil, size: shmSize), writable: true)
        add("/dev/pts", .devpts, writable: true)
        add("/dev/ptmx", .symlink(target: "pts/ptmx"))
        add("/dev/fd", .symlink(target: "/proc/self/fd"))
        for (fd, name) in ["stdin", "stdout", "stderr"].enumerated() {
            add("/dev/" + name, .symlink(target: "/proc/self/fd/\(fd)"))
        }
    }

    static func passwd(base: String, user: StackUser) -> String {
        var text = base.isEmpty ? "root:x:0:0:root:/root:/bin/sh\n" : base
        if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
        if !names(id: user.uid, in: text) {
            text += "\(user.name):x:\(user.uid):\(user.gid):\(user.name):\(user.home):/bin/sh\n"
        }
        if base.isEmpty { text += "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n" }
        return text
    }

    static func group(base: String, user: StackUser) -> String {
        var text = base.isEmpty ? "root:x:0:\n" : base
        if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
        if !names(id: user.gid, in: text) { text += "\(user.name):x:\(user.gid):\n" }
        if base.isEmpty { text += "nogroup:x:65534:\n" }
        return text
    }

    /// Whether a passwd or group text has an entry whose third field is `id`.
    static func names(id: UInt32, in text: String) -> Bool {
        text.split(separator: "\n").contains { line in
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            return fields.count >= 3 && fields[2] == "\(id)"
        }
    }

    static func validDestination(_ path: String) throws(SandboxError) -> String {
        guard path.hasPrefix("/") else {
            throw SandboxError(.invalidPlan, "mount destination \(path) must be an absolute path inside the sandbox")
        }
        let parts = path.split(separator: "/")
        guard !parts.contains(where: { $0 == ".." || $0 == "." }) else {
            throw SandboxError(.invalidPlan, "mount destination \(path) must not contain . or .. components")
        }
        let normalized = "/" + parts.joined(separator: "/")
        guard normalized != "/", normalized != "/proc", !normalized.hasPrefix("/proc/") else {
            throw SandboxError(.invalidPlan, "cannot mount over \(normalized): the sandbox owns / and /proc")
        }
        return normalized
    }

    static func existingSource(_ source: String) throws(SandboxError) -> (String, HostFiles.Identity) {
        guard let canonical = HostFiles.canonical(source) else {
            throw SandboxError(.missingPath, "bind source \(source) does not exist", errno: Errno.current.rawValue)
        }
        guard let identity = HostFiles.target(canonical) else {
            throw SandboxError(.missingPath, "bind source \(source) cannot be examined", errno: Errno.current.rawValue)
        }
        return (canonical, identity)
    }
}
