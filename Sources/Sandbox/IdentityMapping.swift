import Glibc
import Synchronization
import SystemCalls
import SystemPackage

/// How the sandbox's user namespace maps ids onto the host, and how the maps
/// get written. The stack user never maps to host uid 0.
public struct IdentityMapping: Sendable, Equatable {
    public struct Range: Sendable, Equatable {
        public var inside: UInt32
        public var outside: UInt32
        public var count: UInt32
        var line: String { "\(inside) \(outside) \(count)" }
    }

    public enum Method: Sendable, Equatable {
        /// The supervisor writes /proc/PID/{uid,gid}_map itself (root, or a single own id).
        case direct
        /// The setuid helpers newuidmap/newgidmap write ranges from /etc/subuid and /etc/subgid.
        case subordinateHelpers(newuidmap: String, newgidmap: String)
    }

    public var uids: [Range]
    public var gids: [Range]
    public var method: Method
    /// "deny" must be written to /proc/PID/setgroups before an unprivileged
    /// gid_map; the command then keeps the invoking user's supplementary groups.
    public var denySetgroups: Bool
    /// Ids to switch to before building the filesystem, so the files the
    /// sandbox creates belong to a mapped id; nil when the creator's own id is mapped.
    public var setupIdentity: Identity?

    public struct Identity: Sendable, Equatable {
        public var uid: UInt32
        public var gid: UInt32
    }

    /// Root's range when /etc/subuid has no entry for root: 65536 ids from
    /// 0x7FFF0000, above anything useradd hands out (SUB_UID_MAX 600100000)
    /// and clear of systemd's reserved ranges.
    public static let rootDefaultBase: UInt32 = 0x7FFF_0000
    public static let rangeSize: UInt32 = 65536

    /// The host id that an inside uid appears as.
    public func hostUID(_ inside: UInt32) -> UInt32? { Self.host(inside, in: uids) }
    public func hostGID(_ inside: UInt32) -> UInt32? { Self.host(inside, in: gids) }

    private static func covers(_ ranges: [Range], hostID id: UInt32) -> Bool {
        ranges.contains { id >= $0.outside && id - $0.outside < $0.count }
    }

    private static func host(_ inside: UInt32, in ranges: [Range]) -> UInt32? {
        for r in ranges where inside >= r.inside && inside - r.inside < r.count {
            return r.outside + (inside - r.inside)
        }
        return nil
    }

    /// Chooses the mapping for `user` as invoked by (euid, egid).
    /// - root: its /etc/subuid range if it has one, else `rootDefaultBase`; never host 0.
    /// - an unprivileged user with a subordinate range and the helpers: that range.
    /// - otherwise: the stack ids map onto the invoking user's own uid and gid.
    public static func choose(for user: StackUser, euid: UInt32, egid: UInt32, userName: String?,
                              subuid: String?, subgid: String?,
                              helpers: (newuidmap: String, newgidmap: String)?) throws(SandboxError) -> IdentityMapping {
        let needed = max(user.uid, user.gid)
        func subordinate(_ text: String?, id: UInt32) -> Range? {
            guard let text else { return nil }
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: ":", omittingEmptySubsequences: false)
                guard fields.count == 3, fields[0] == "\(id)" || (userName != nil && fields[0] == userName!),
                      let start = UInt32(fields[1]), let count = UInt32(fields[2]), count > 0 else { continue }
                return Range(inside: 0, outside: start, count: min(count, rangeSize))
            }
            return nil
        }
        let ownUIDRange = subordinate(subuid, id: euid)
        let ownGIDRange = subordinate(subgid, id: euid)

        if euid == 0 {
            let uidRange = ownUIDRange ?? Range(inside: 0, outside: rootDefaultBase, count: rangeSize)
            let gidRange = ownGIDRange ?? Range(inside: 0, outside: rootDefaultBase, count: rangeSize)
            guard needed < uidRange.count, needed < gidRange.count, uidRange.outside > 0, gidRange.outside > 0 else {
                throw SandboxError(.identityMapping,
                    "stack user \(user.uid):\(user.gid) does not fit root's id range (\(uidRange.outside)+\(uidRange.count)); use a smaller --user or a larger range for root in /etc/subuid and /etc/subgid")
            }
            var mapping = IdentityMapping(uids: [uidRange], gids: [gidRange], method: .direct, denySetgroups: false, setupIdentity: nil)
            mapping.setupIdentity = Identity(uid: 0, gid: 0)
            return mapping
        }
        if let helpers, let uidRange = ownUIDRange, let gidRange = ownGIDRange {
            guard needed < uidRange.count, needed < gidRange.count else {
                throw SandboxError(.identityMapping,
                    "stack user \(user.uid):\(user.gid) does not fit your subordinate id range (\(uidRange.count) uids from \(uidRange.outside) in /etc/subuid); use a smaller --user or ask for a larger range")
            }
            var mapping = IdentityMapping(uids: [uidRange], gids: [gidRange],
                                          method: .subordinateHelpers(newuidmap: helpers.newuidmap, newgidmap: helpers.newgidmap),
                                          denySetgroups: false, setupIdentity: nil)
            mapping.setupIdentity = Identity(uid: 0, gid: 0)
            return mapping
        }
        return IdentityMapping(uids: [Range(inside: user.uid, outside: euid, count: 1)],
                               gids: [Range(inside: user.gid, outside: egid, count: 1)],
                               method: .direct, denySetgroups: true, setupIdentity: nil)
    }

    /// The mapping for the current process, reading /etc/subuid and /etc/subgid
    /// once per user and process (a lifecycle starts hundreds of sandboxes).
    public static func forCurrentProcess(_ user: StackUser) throws(SandboxError) -> IdentityMapping {
        if case .unavailable = UserNamespaces.state { return withoutNamespaces(user) }
        let key = "\(geteuid()):\(user.uid):\(user.gid)"
        if let known = memo.withLock({ $0[key] }) { return known }
        let mapping = try uncached(user)
        memo.withLock { $0[key] = mapping }
        return mapping
    }

    private static let memo = Mutex<[String: IdentityMapping]>([:])

    /// No user namespace: the stack ids are the host's own when the invoker may switch to
    /// them, else the command runs as the invoker. Nothing is ever written.
    static func withoutNamespaces(_ user: StackUser) -> IdentityMapping {
        let privileged = UserNamespaces.privileged
        return IdentityMapping(uids: [Range(inside: user.uid, outside: privileged ? user.uid : geteuid(), count: 1)],
                               gids: [Range(inside: user.gid, outside: privileged ? user.gid : getegid(), count: 1)],
                               method: .direct, denySetgroups: false, setupIdentity: nil)
    }

    private static func uncached(_ user: StackUser) throws(SandboxError) -> IdentityMapping {
        let euid = geteuid()
        let egid = getegid()
        var name: String?
        if let pw = getpwuid(euid) { name = String(cString: pw.pointee.pw_name) }
        let subuid = HostFiles.read("/etc/subuid", limit: 1 << 20).map { String(decoding: $0, as: UTF8.self) }
        let subgid = HostFiles.read("/etc/subgid", limit: 1 << 20).map { String(decoding: $0, as: UTF8.self) }
        var helpers: (String, String)?
        for dir in ["/usr/bin", "/bin", "/usr/sbin"] {
            let u = dir + "/newuidmap", g = dir + "/newgidmap"
            if HostFiles.isExecutable(u) && HostFiles.isExecutable(g) { helpers = (u, g); break }
        }
        return try choose(for: user, euid: euid, egid: egid, userName: name, subuid: subuid, subgid: subgid, helpers: helpers)
    }

    /// Writes the maps for the child `pid`, which waits for them before going on.
    func apply(to pid: pid_t) throws(SandboxError) {
        switch method {
        case .direct:
            if denySetgroups { try Self.write("deny", to: "/proc/\(pid)/setgroups") }
            try Self.write(gids.map(\.line).joined(separator: "\n"), to: "/proc/\(pid)/gid_map")
            try Self.write(uids.map(\.line).joined(separator: "\n"), to: "/proc/\(pid)/uid_map")
        case .subordinateHelpers(let newuidmap, let newgidmap):
            try Self.runHelpers(newuidmap: Self.helperArguments(newuidmap, pid: pid, ranges: uids),
                                newgidmap: Self.helperArguments(newgidmap, pid: pid, ranges: gids))
        }
    }

    /// The maps of a user namespace nested in `runNamespace(of:)`'s: the same ids, which that
    /// namespace already maps onto the host as `apply` would. Its owner writes them without helpers.
    /// Nil where the helpers would refuse the run's maps, and the zygote, once it had left,
    /// could clone nothing: real and effective ids differ, or the invoker's own ids lie in its
    /// range (the maps would overlap).
    var nestedMaps: (uid: String, gid: String)? {
        guard case .subordinateHelpers = method, getuid() == geteuid(), getgid() == getegid(),
              !Self.covers(uids, hostID: geteuid()), !Self.covers(gids, hostID: getegid()) else { return nil }
        func identity(_ ranges: [Range]) -> String { ranges.map { "\($0.inside) \($0.inside) \($0.count)" }.joined(separator: "\n") }
        return (identity(uids), identity(gids))
    }

    /// Maps the user namespace `pid` made for the sandboxes of one run: the subordinate ranges
    /// as `apply` maps them, plus the invoker's own ids just above them, which the creator of a
    /// nested namespace must have mapped. The nested maps leave them out, so no sandbox has them.
    /// Quiet: where the helpers refuse (an effective gid not the user's own), each sandbox is
    /// mapped as before, and says so if that fails too.
    func mapRunNamespace(of pid: pid_t) throws(SandboxError) {
        guard case .subordinateHelpers(let newuidmap, let newgidmap) = method else { return }
        func own(_ ranges: [Range], _ id: UInt32) -> [Range] {
            ranges + [Range(inside: ranges.map { $0.inside + $0.count }.max() ?? 0, outside: id, count: 1)]
        }
        try Self.runHelpers(newuidmap: Self.helperArguments(newuidmap, pid: pid, ranges: own(uids, geteuid())),
                            newgidmap: Self.helperArguments(newgidmap, pid: pid, ranges: own(gids, getegid())), quiet: true)
    }

    /// Each is an exec of a setuid binary; they write different files, so run them side by side.
    private static func runHelpers(newuidmap uidArgs: [String], newgidmap gidArgs: [String], quiet: Bool = false) throws(SandboxError) {
        let gidHelper = try Spawn.start(gidArgs, quiet: quiet)
        let uidHelper: pid_t
        do { uidHelper = try Spawn.start(uidArgs, quiet: quiet) } catch { _ = try? Spawn.wait(gidHelper, gidArgs[0]); throw error }
        let gidStatus = try Spawn.wait(gidHelper, gidArgs[0])
        let uidStatus = try Spawn.wait(uidHelper, uidArgs[0])
        for (args, status) in [(gidArgs, gidStatus), (uidArgs, uidStatus)] where status != 0 {
            throw SandboxError(.identityMapping,
                "\(args.joined(separator: " ")) failed with status \(status); check your entries in /etc/subuid and /etc/subgid")
        }
    }

    /// Also the zygote's, for the maps of the namespaces it nests.
    static func write(_ text: String, to path: String) throws(SandboxError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SandboxError(.identityMapping, "cannot open \(path)", errno: Errno.current.rawValue) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else {
            throw SandboxError(.identityMapping, "cannot write \"\(text)\" to \(path)", errno: Errno.current.rawValue)
        }
    }

    private static func helperArguments(_ helper: String, pid: pid_t, ranges: [Range]) -> [String] {
        var args = [helper, "\(pid)"]
        for r in ranges { args += ["\(r.inside)", "\(r.outside)", "\(r.count)"] }
        return args
    }
}

/// posix_spawn for the few host helpers the supervisor runs (newuidmap).
enum Spawn {
    /// - Parameter quiet: send the helper's stderr to /dev/null.
    static func start(_ args: [String], quiet: Bool = false) throws(SandboxError) -> pid_t {
        var pid: pid_t = 0
        let cArgs = args.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if quiet { posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0) }
        closeInheritedDescriptors(&actions)
        let rc = posix_spawn(&pid, args[0], &actions, nil, cArgs, environ)
        guard rc == 0 else { throw SandboxError(.identityMapping, "cannot run \(args[0])", errno: rc) }
        return pid
    }

    /// The exit status, or 128+N when signal N ended it.
    static func wait(_ pid: pid_t, _ name: String) throws(SandboxError) -> Int32 {
        var status: Int32 = 0
        if case .failure(let error) = systemCall({ waitpid(pid, &status, 0) }) {
            throw SandboxError(.system, "waitpid \(name)", errno: error.rawValue)
        }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
