import CCap
import CSandbox
import CrashSafety
import Glibc
import Synchronization
import SystemCalls
import SystemPackage

/// Whether this process may create user namespaces, learnt once: from the
/// first sandbox's clone, or from `probe()` where an answer is needed before
/// any sandbox runs (which host ids own the stack user's files).
public enum UserNamespaces {
    public enum State: Sendable, Equatable {
        case unknown
        case available
        /// The kernel's answer to clone(CLONE_NEWUSER).
        case unavailable(errno: Int32)
    }

    /// 0 unknown, -1 available, else the errno of the refusal: read on every sandbox's
    /// start, so an atomic rather than a lock.
    private static let known = Atomic<Int32>(0)
    private static let warned = Atomic<Bool>(false)

    public static var state: State {
        switch known.load(ordering: .acquiring) {
        case 0: .unknown
        case -1: .available
        case let code: .unavailable(errno: code)
        }
    }

    /// The answer, by a clone whose child exits at once when it is not known yet.
    @discardableResult
    public static func probe() -> State {
        let known = state
        if known != .unknown { return known }
        let code = stk_probe_user_namespace()
        return record(code == 0 ? .available : (refusals.contains(code) ? .unavailable(errno: code) : .available))
    }

    @discardableResult
    static func record(_ state: State) -> State {
        switch state {
        case .unknown: break
        case .available: known.store(-1, ordering: .releasing)
        case .unavailable(let code): known.store(max(code, 1), ordering: .releasing)
        }
        return state
    }

    /// The errnos of a clone that mean "no user namespace for you": a seccomp
    /// filter (EPERM), `user.max_user_namespaces` (ENOSPC, EUSERS),
    /// `kernel.unprivileged_userns_clone=0` (EPERM, EACCES), a kernel without them (EINVAL).
    static let refusals: Set<Int32> = [EPERM, ENOSPC, EUSERS, EACCES, EINVAL]

    /// May switch to other ids (root with its capabilities): the fallback then runs the
    /// command as the stack user; otherwise as the invoker.
    static var privileged: Bool {
        guard geteuid() == 0, let caps = cap_get_proc() else { return false }
        defer { cap_free(UnsafeMutableRawPointer(caps)) }
        var uid = CAP_CLEAR, gid = CAP_CLEAR
        cap_get_flag(caps, CAP_SETUID, CAP_EFFECTIVE, &uid)
        cap_get_flag(caps, CAP_SETGID, CAP_EFFECTIVE, &gid)
        return uid == CAP_SET && gid == CAP_SET
    }

    static let refused = "user namespaces are unavailable: the kernel refused to create one"

    /// The one line, once per process, that says what the fallback loses.
    static func warnOnce(_ code: Int32) {
        guard !warned.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let abi = stk_landlock_abi()
        var lost = ["private mounts", "a private pid space (the command sees and is seen in the host's /proc)",
                    "a private network (only TCP is refused under --network none)", "a private ipc and hostname"]
        if abi < 1 {
            lost.append("Landlock (files are confined by their permissions alone)")
        } else if abi < 6 {
            lost.append("signal and abstract-socket scoping (Landlock ABI \(abi) < 6)")
        }
        if abi < 4 { lost[2] = "a private network" }
        lost.append(privileged ? "the id mapping (the stack user is the host's uid of that number)"
                                   : "the stack user (the command runs as you)")
        let line = "stockade: warning: \(refused) (\(ErrorNumber.describe(code))); running without namespaces, confined by Landlock, seccomp, no_new_privs, rlimits and a process group. Lost: \(lost.joined(separator: "; ")). --require-namespaces refuses instead.\n"
        _ = line.withCString { Glibc.write(STDERR_FILENO, $0, strlen($0)) }
    }
}

/// What the fallback needs instead of mounts. Without a mount namespace every
/// path the command sees is a host path, so the paths a plan presents (bind
/// destinations, tmpfs, /tmp, the home) are translated to the host paths
/// behind them in the command, its environment and working directory; and
/// Landlock allows reads and writes beneath exactly those host paths.
struct FallbackLayout {
    var command: [String]
    var environment: [String]
    var workingDirectory: String
    var searchPath: String
    /// Host paths the command may read and execute beneath.
    var readable: [String] = []
    /// Host paths the command may also write beneath.
    var writable: [String] = []
    /// The private directory standing in for every tmpfs, removed afterwards.
    var scratch: String

    /// The device nodes the namespaced layout binds, writable as there.
    static let deviceNodes = FilesystemLayout.deviceNodes.map { "/dev/" + $0 }

    /// - Parameter owner: the host ids that run the command, when they differ from the invoker's.
    static func plan(_ plan: SandboxPlan, owner: (uid: UInt32, gid: UInt32)?) throws(SandboxError) -> FallbackLayout {
        if plan.rootfs != nil {
            throw SandboxError(.userNamespacesUnavailable,
                "a root filesystem (--rootfs, an image) needs a mount namespace, and the kernel refused to create a user namespace",
                errno: UserNamespaces.stateErrno)
        }
        if owner != nil && (plan.user.uid == 0 || plan.user.gid == 0) {
            throw SandboxError(.userNamespacesUnavailable,
                "the kernel refused to create a user namespace, and without one stack user 0 would be the host's root",
                errno: UserNamespaces.stateErrno)
        }
        var translations: [(inside: String, host: String)] = []
        var readable = ["/usr", "/proc"] + FilesystemLayout.systemLinks.map { "/" + $0 }
        var writable: [String] = []
        for name in FilesystemLayout.hostEtcEntries + ["passwd", "group"] {
            readable.append("/etc/" + name)
            if let real = HostFiles.canonical("/etc/" + name), real != "/etc/" + name { readable.append(real) }
        }
        readable += FilesystemLayout.hostSSLEntries.map { "/etc/ssl/" + $0 }

        let scratch = try makeScratch(owner: owner)
        var tmpfsCount = 0
        func privateDirectory() throws(SandboxError) -> String {
            tmpfsCount += 1
            let path = scratch + "/\(tmpfsCount)"
            guard mkdir(path, 0o700) == 0 else {
                throw SandboxError(.system, "cannot make \(path)", errno: Errno.current.rawValue)
            }
            if let owner, chown(path, owner.uid, owner.gid) != 0 {
                let code = Errno.current.rawValue
                if code == EINVAL {
                    throw SandboxError(.identityMapping,
                        "stack user \(owner.uid):\(owner.gid) has no id in this process's user namespace, and without a user namespace of its own the sandbox runs as exactly that id; choose a mapped --user",
                        errno: code)
                }
                throw SandboxError(.system, "cannot hand \(path) to the stack user", errno: code)
            }
            return path
        }
        do {
            let tmp = try privateDirectory()
            translations.append(("/tmp", tmp))
            translations.append((plan.user.home, try privateDirectory()))
            // Destinations and sources are checked as the namespaced layout checks them.
            for request in plan.mounts {
                switch request {
                case .bind(let source, let destination, let readOnly):
                    let inside = try FilesystemLayout.validDestination(destination)
                    let (host, _) = try FilesystemLayout.existingSource(source)
                    translations.append((inside, host))
                    if readOnly { readable.append(host) } else { writable.append(host) }
                case .tmpfs(let destination):
                    translations.append((try FilesystemLayout.validDestination(destination), try privateDirectory()))
                }
            }
            writable += translations.filter { $0.host.hasPrefix(scratch + "/") }.map(\.host)
            writable += deviceNodes
            // Longest first, so a bind inside a tmpfs (/layers/a in /layers) wins.
            translations.sort { $0.inside.count > $1.inside.count }
            func translate(_ path: String) -> String {
                for (inside, host) in translations {
                    if path == inside { return host }
                    if path.hasPrefix(inside + "/") { return host + path.dropFirst(inside.count) }
                }
                return path
            }
            func translateList(_ value: String) -> String {
                value.split(separator: ":", omittingEmptySubsequences: false).map { translate(String($0)) }
                    .joined(separator: ":")
            }
            var environment = plan.environment.map { entry -> String in
                guard let eq = entry.firstIndex(of: "=") else { return entry }
                return entry[...eq] + translateList(String(entry[entry.index(after: eq)...]))
            }
            environment.removeAll { $0.hasPrefix("TMPDIR=") }
            environment.append("TMPDIR=" + tmp)
            return FallbackLayout(command: plan.command.map(translate),
                                  environment: environment, workingDirectory: translate(plan.workingDirectory),
                                  searchPath: translateList(Supervisor.searchPath(plan.environment)),
                                  readable: readable, writable: writable, scratch: scratch)
        } catch {
            removeScratch(scratch)
            throw error
        }
    }

    /// Journaled, so a killed run's janitor removes it; 0711 for another owner: the stack
    /// user reaches its own directories beneath and lists nothing.
    private static func makeScratch(owner: (uid: UInt32, gid: UInt32)?) throws(SandboxError) -> String {
        let path: String
        do {
            path = try CleanupJournal.makeTemporaryDirectory(in: Supervisor.stagingDirectory())
        } catch {
            throw SandboxError(.system, "cannot make a private directory for the sandbox: \(error)")
        }
        if owner != nil { chmod(path, 0o711) }
        return path
    }

    static func removeScratch(_ path: String) {
        if let pid = try? Spawn.start(["/bin/rm", "-rf", "--", path], quiet: true) { _ = try? Spawn.wait(pid, "/bin/rm") }
        if access(path, F_OK) != 0 { CleanupJournal.record(.forget, path) }
    }
}

extension UserNamespaces {
    static var stateErrno: Int32 {
        if case .unavailable(let code) = state { return code }
        return EPERM
    }
}
