import CCap
import CSandbox
import CrashSafety
import Glibc
import Seccomp
import SystemCalls
import SystemPackage

/// Runs plans. The calling thread blocks until the sandbox's pid 1 is gone,
/// and with it every process that ran inside.
public enum Sandbox {
    /// Signals the supervisor passes on to the sandbox while it waits.
    static let forwardedSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2]

    /// Runs `plan` to completion.
    /// - Parameters:
    ///   - stdio: the command's standard input, output and error.
    ///   - forwardSignals: block the termination signals on this thread and pass
    ///     them to the sandbox instead (for a command-line supervisor).
    ///   - audit: where the events of an `.audited` plan go.
    ///   - watch: asked while the sandbox runs whether it must be stopped.
    public static func run(_ plan: SandboxPlan, stdio: StandardStreams = .inherited, forwardSignals: Bool = false,
                           audit: AuditObserver? = nil, watch: Watch? = nil) throws(SandboxError) -> SandboxOutcome {
        guard let program = plan.command.first, !program.isEmpty else {
            throw SandboxError(.invalidPlan, "no command to run")
        }
        if case .audited = plan.syscallFilter, audit == nil {
            throw SandboxError(.invalidPlan, "an audited plan needs an audit observer")
        }
        if case .unavailable(let code) = UserNamespaces.state {
            return try runWithoutNamespaces(plan, refusal: code, stdio: stdio, forwardSignals: forwardSignals,
                                            audit: audit, watch: watch)
        }
        let layout = try FilesystemLayout.plan(plan)
        let mapping = try IdentityMapping.forCurrentProcess(plan.user)
        do {
            let supervisor = try Supervisor(plan: plan, layout: layout, mapping: mapping, stdio: stdio,
                                            forwardSignals: forwardSignals, audit: audit, watch: watch)
            defer { supervisor.close() }
            return try supervisor.run(program: program)
        } catch where error.kind == .userNamespacesUnavailable && error.errno != nil {
            UserNamespaces.record(.unavailable(errno: error.errno!))
            return try runWithoutNamespaces(plan, refusal: error.errno!, stdio: stdio, forwardSignals: forwardSignals,
                                            audit: audit, watch: watch)
        }
    }

    /// The fallback, unless the plan requires namespaces: then the refusal, and the
    /// stdio descriptors handed in are closed as a sandbox would have.
    private static func runWithoutNamespaces(_ plan: SandboxPlan, refusal: Int32, stdio: StandardStreams, forwardSignals: Bool,
                                             audit: AuditObserver?, watch: Watch?) throws(SandboxError) -> SandboxOutcome {
        let owner: (uid: UInt32, gid: UInt32)? = UserNamespaces.privileged ? (plan.user.uid, plan.user.gid) : nil
        let fallback: FallbackLayout
        do throws(SandboxError) {
            guard !plan.requireNamespaces else {
                throw SandboxError(.userNamespacesUnavailable,
                    "namespaces are required (--require-namespaces) and the kernel refused to create a user namespace; enable them with `sysctl -w user.max_user_namespaces=15000` (and `kernel.unprivileged_userns_clone=1` where that sysctl exists), or run where the seccomp profile allows them", errno: refusal)
            }
            fallback = try FallbackLayout.plan(plan, owner: owner)
        } catch {
            for fd in stdio.takenOver { _ = Glibc.close(fd) }
            throw error
        }
        defer { FallbackLayout.removeScratch(fallback.scratch) }
        UserNamespaces.warnOnce(refusal)
        let supervisor = try Supervisor(plan: plan, layout: FilesystemLayout(), mapping: IdentityMapping.withoutNamespaces(plan.user),
                                        stdio: stdio, forwardSignals: forwardSignals, audit: audit, watch: watch,
                                        fallback: fallback)
        defer { supervisor.close() }
        return try supervisor.run(program: plan.command[0])
    }

    /// Runs `plan` on a thread of its own, so its blocking waits never hold a
    /// thread of the concurrency pool. The thread lives until the sandbox is
    /// reaped: the kernel's parent-death signal follows the thread that cloned (the
    /// main thread, which forked the zygote, for a sandbox the zygote clones).
    ///
    /// Async code gets a `Result` rather than a typed throw: swiftc 6.3 -O
    /// corrupts task-group results around `try await` (reproduction: `Detector.detectAll`).
    public static func run(_ plan: SandboxPlan, stdio: StandardStreams = .inherited, audit: AuditObserver? = nil,
                           watch: Watch? = nil) async -> Result<SandboxOutcome, SandboxError> {
        await withCheckedContinuation { (continuation: CheckedContinuation<Result<SandboxOutcome, SandboxError>, Never>) in
            DedicatedThread.start {
                continuation.resume(returning: Result { () throws(SandboxError) in
                    try run(plan, stdio: stdio, audit: audit, watch: watch)
                })
            }
        }
    }
}

/// A check the supervisor makes every `intervalMicroseconds` while the sandbox runs (on its own
/// thread, between waits); when `mustStop` says yes, the whole sandbox is killed with SIGKILL.
public struct Watch: Sendable {
    public var intervalMicroseconds: Int64
    public var mustStop: @Sendable () -> Bool

    public init(intervalMicroseconds: Int64, mustStop: @escaping @Sendable () -> Bool) {
        self.intervalMicroseconds = intervalMicroseconds
        self.mustStop = mustStop
    }
}

extension Sandbox {
    /// Where an audited command hands its listener over: high, so the command
    /// rarely uses the same number, and below its open-files limit.
    public static func handoffDescriptor(_ limits: ResourceLimits) -> Int32 {
        Int32(max(3, min(1023, Int64(limits.maxOpenFiles ?? 1024) - 1)))
    }
}

/// A detached pthread for one blocking job.
public enum DedicatedThread {
    private final class Job {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    public static func start(_ body: @escaping @Sendable () -> Void) {
        if !spawn(body) {
            // No thread to be had: run here rather than never.
            body()
        }
    }

    /// Starts `body` on a new thread; false, and `body` not run, when there is none to be had.
    @discardableResult
    public static func spawn(_ body: @escaping @Sendable () -> Void) -> Bool {
        let job = Unmanaged.passRetained(Job(body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attributes, { context in
            Unmanaged<Job>.fromOpaque(context!).takeRetainedValue().body()
            return nil
        }, job)
        if rc != 0 { Unmanaged<Job>.fromOpaque(job).release() }
        return rc == 0
    }
}

/// One sandbox from clone to reaping.
final class Supervisor {
    let plan: SandboxPlan
    let layout: FilesystemLayout
    let mapping: IdentityMapping
    let stdio: StandardStreams
    let audit: AuditObserver?
    let watch: Watch?
    /// Set: the sandbox without namespaces.
    let fallback: FallbackLayout?
    private var server: NotificationServer?
    private var socket: (parent: Int32, child: Int32) = (-1, -1)
    private var signalFD: Int32 = -1
    private var savedMask = sigset_t()
    private var forwarding = false
    private var stdioReleased = false

    init(plan: SandboxPlan, layout: FilesystemLayout, mapping: IdentityMapping, stdio: StandardStreams,
         forwardSignals: Bool, audit: AuditObserver?, watch: Watch? = nil,
         fallback: FallbackLayout? = nil) throws(SandboxError) {
        self.fallback = fallback
        self.plan = plan
        self.audit = audit
        self.watch = watch
        self.layout = layout
        self.mapping = mapping
        self.stdio = stdio
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw SandboxError(.system, "socketpair", errno: Errno.current.rawValue)
        }
        socket = (fds[0], fds[1])
        if forwardSignals {
            var set = sigset_t()
            sigemptyset(&set)
            for sig in Sandbox.forwardedSignals { sigaddset(&set, sig) }
            pthread_sigmask(SIG_BLOCK, &set, &savedMask)
            forwarding = true
            signalFD = signalfd(-1, &set, Int32(SFD_CLOEXEC | SFD_NONBLOCK))
            guard signalFD >= 0 else { throw SandboxError(.system, "signalfd", errno: Errno.current.rawValue) }
        }
    }

    /// The child has its copies of the stdio descriptors handed in; ours go.
    private func releaseStdio() {
        guard !stdioReleased else { return }
        stdioReleased = true
        for fd in stdio.takenOver { _ = Glibc.close(fd) }
    }

    func close() {
        releaseStdio()
        for fd in [socket.parent, socket.child, signalFD] where fd >= 0 { _ = Glibc.close(fd) }
        socket = (-1, -1)
        signalFD = -1
        if forwarding {
            pthread_sigmask(SIG_SETMASK, &savedMask, nil)
            forwarding = false
        }
    }

    func run(program: String) throws(SandboxError) -> SandboxOutcome {
        let started = monotonicMicroseconds()
        var pidfd: Int32 = -1
        let pid: pid_t
        let mapped: Bool
        do {
            (pid, mapped) = try spawn(pidfd: &pidfd)
        } catch {
            // The caller falls back and hands the descriptors to that sandbox.
            if error.kind == .userNamespacesUnavailable { stdioReleased = true }
            throw error
        }
        // A janitor cleaning up after a killed supervisor first waits for this sandbox to die.
        CleanupJournal.sandboxStarted(pid)
        defer {
            _ = Glibc.close(pidfd)
            CleanupJournal.sandboxEnded(pid)
        }
        _ = Glibc.close(socket.child)
        socket.child = -1
        releaseStdio()

        // Released on the way out, once pid 1 is reaped (by the catch below or by supervise).
        var cgroup: SandboxCgroup?
        defer { cgroup?.release() }
        do {
            if fallback == nil && !mapped { try mapping.apply(to: pid) }
            try send(UInt8(ascii: "g"))  // STK_SYNC_GO
            // Made while pid 1 sets up on the other core; it moves in before it starts anything.
            cgroup = try SandboxCgroup.create(plan.enforcement, limits: plan.limits, pool: plan.cgroupPool)
            let joins = try cgroup?.openJoinFiles() ?? []
            defer { for fd in joins { _ = Glibc.close(fd) } }
            try send(UInt8(ascii: "c"), descriptors: joins)  // STK_SYNC_CGROUPS
        } catch {
            _ = stk_pidfd_send_signal(pidfd, SIGKILL)
            var status: Int32 = 0
            var usage = stk_rusage()
            _ = stk_wait_pidfd(pidfd, &status, &usage)
            // pid 1 sets up meanwhile: when its set-up failed (and closed the socket this
            // send then failed on), its report says why.
            var reports: [stk_report] = []
            _ = drainReports(into: &reports, pidfd: pidfd)
            if let failure = reports.first(where: { $0.kind == Int32(STK_REPORT_FAILED.rawValue) }) {
                throw describe(failure, program: program)
            }
            throw error
        }

        let (status, usage, reports, timedOut) = try supervise(pid: pid, pidfd: pidfd, deadline: plan.timeoutSeconds.map {
            started + Int64($0 * 1_000_000)
        })
        let wall = monotonicMicroseconds() - started
        // Every process that could notify is gone; the server sees it hang up.
        let summary = server?.finish()
        let resources = ResourceUsage(userMicroseconds: usage.user_usec, systemMicroseconds: usage.system_usec,
                                      maxResidentKiB: usage.max_rss_kib)
        if let failure = reports.first(where: { $0.kind == Int32(STK_REPORT_FAILED.rawValue) }), !timedOut {
            throw describe(failure, program: program)
        }
        let termination: Termination
        if timedOut {
            termination = .timedOut
        } else if let exited = reports.first(where: { $0.kind == Int32(STK_REPORT_EXITED.rawValue) }) {
            termination = Self.termination(exited.status)
        } else {
            // pid 1 died without a word: killed from outside (OOM, a signal).
            termination = Self.termination(status)
        }
        return SandboxOutcome(termination: termination, usage: resources, wallMicroseconds: wall, audit: summary,
                              limitReached: cgroup?.reached())
    }

    /// Whether pid 1 may join at the end of its set-up, the cgroups' making hidden behind it:
    /// only root's cgroup v1 files admit it once it has its set-up identity (the plan's field).
    static func joinsCgroupsAfterSetup(_ enforcement: LimitEnforcement) -> Bool {
        guard case .cgroupV1 = enforcement else { return false }
        return geteuid() == 0
    }

    /// One message to pid 1 on the sync socket.
    private func send(_ tag: UInt8, descriptors: [Int32] = []) throws(SandboxError) {
        var byte = tag
        let sent = withUnsafeMutableBytes(of: &byte) { bytes in
            var part = iovec(iov_base: bytes.baseAddress, iov_len: 1)
            return stk_send_with_fds(socket.parent, &part, 1, descriptors, descriptors.count)
        }
        guard sent == 1 else { throw SandboxError(.system, "cannot start the sandbox", errno: Errno.current.rawValue) }
    }

    static func termination(_ status: Int32) -> Termination {
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
    }

    // MARK: - clone

    /// The pid, and whether its maps are written (by the zygote, for a nested namespace).
    private func spawn(pidfd: inout Int32) throws(SandboxError) -> (pid_t, mapped: Bool) {
        let arena = CArena()
        defer { arena.release() }
        var cplan = stk_spawn_plan()
        if let fallback {
            prepareWithoutNamespaces(&cplan, fallback, arena)
        } else {
            prepareNamespaces(&cplan, arena)
        }
        cplan.cap_last_cap = Int32(cap_max_bits()) - 1
        let limits = Self.rlimits(plan.limits, enforcement: plan.enforcement)
        let climits = arena.array(of: stk_rlimit.self, count: max(limits.count, 1))
        for (i, limit) in limits.enumerated() { climits[i] = limit }
        cplan.rlimits = UnsafePointer(climits)
        cplan.rlimit_count = limits.count
        cplan.umask = 0o022
        try prepareFilters(&cplan, arena)
        // Fail closed: without it pid 1 would show this process's arguments to the command.
        guard Self.memoryLayout.arg_start != 0 else {
            throw SandboxError(.system, "cannot read where this process's arguments lie from /proc/self/stat")
        }
        cplan.supervisor_memory = Self.memoryLayout
        cplan.cgroups_after_setup = Self.joinsCgroupsAfterSetup(plan.enforcement) ? 1 : 0
        cplan.stdio = stdio.childDescriptors
        cplan.sync_fd = socket.child

        switch Zygote.spawn(cplan, arena: arena, mapping: mapping, pidfd: &pidfd) {
        case .spawned(let pid, let mapped):
            return (pid, mapped)
        case .refused(let code):
            throw cloneFailed(code)
        case .lost(let code):
            throw SandboxError(.system, "the sandbox zygote stopped answering", errno: code)
        case .unavailable:
            let pid = stk_spawn(&cplan, socket.parent, &pidfd, 0)
            guard pid > 0 else { throw cloneFailed(Errno.current.rawValue) }
            return (pid, false)
        }
    }

    private func cloneFailed(_ code: Int32) -> SandboxError {
        if fallback == nil && UserNamespaces.refusals.contains(code) {
            return SandboxError(.userNamespacesUnavailable, UserNamespaces.refused, errno: code)
        }
        return SandboxError(.system, "clone", errno: code)
    }

    /// The fallback: no namespaces, no mounts; host paths, Landlock over reads and writes.
    private func prepareWithoutNamespaces(_ cplan: inout stk_spawn_plan, _ fallback: FallbackLayout, _ arena: CArena) {
        cplan.namespaced = 0
        cplan.setup_uid = -1
        cplan.setup_gid = -1
        cplan.switch_identity = UserNamespaces.privileged ? 1 : 0
        cplan.uid = plan.user.uid
        cplan.gid = plan.user.gid
        cplan.clear_groups = 1
        cplan.scratch_fds = arena.array(of: Int32.self, count: 1)
        cplan.workdir = arena.string(fallback.workingDirectory)
        cplan.writable_paths = arena.strings(fallback.writable)
        cplan.writable_count = fallback.writable.count
        cplan.readable_paths = arena.strings(fallback.readable)
        cplan.readable_count = fallback.readable.count
        cplan.landlock = 1
        cplan.deny_tcp = plan.network == .none ? 1 : 0
        cplan.argv = arena.strings(fallback.command)
        cplan.envp = arena.strings(fallback.environment)
        cplan.search_path = arena.string(fallback.searchPath)
    }

    private func prepareNamespaces(_ cplan: inout stk_spawn_plan, _ arena: CArena) {
        var flags: UInt64 = 0
        for ns in [STK_NEWUSER, STK_NEWNS, STK_NEWPID, STK_NEWIPC, STK_NEWUTS, STK_NEWCGROUP] { flags |= UInt64(ns.rawValue) }
        if plan.network == .none { flags |= UInt64(STK_NEWNET.rawValue) }
        cplan.clone_flags = flags
        cplan.namespaced = 1
        cplan.switch_identity = 1
        cplan.loopback_up = plan.network == .none ? 1 : 0
        cplan.hostname = arena.string(plan.hostname)
        cplan.setup_uid = mapping.setupIdentity.map { Int64($0.uid) } ?? -1
        cplan.setup_gid = mapping.setupIdentity.map { Int64($0.gid) } ?? -1
        cplan.uid = plan.user.uid
        cplan.gid = plan.user.gid
        cplan.clear_groups = mapping.denySetgroups ? 0 : 1

        let mounts = arena.array(of: stk_mount.self, count: layout.steps.count)
        for (i, step) in layout.steps.enumerated() { mounts[i] = arena.mount(step) }
        cplan.mounts = UnsafePointer(mounts)
        cplan.mount_count = layout.steps.count
        cplan.scratch_fds = arena.array(of: Int32.self, count: max(layout.steps.count, 1))
        cplan.staging = arena.string(Self.stagingDirectory())
        cplan.workdir = arena.string(plan.workingDirectory)
        cplan.writable_paths = arena.strings(layout.writablePaths)
        cplan.writable_count = layout.writablePaths.count
        cplan.landlock = plan.landlock ? 1 : 0

        cplan.argv = arena.strings(plan.command)
        cplan.envp = arena.strings(plan.environment)
        cplan.search_path = arena.string(Self.searchPath(plan.environment))
    }

    private func prepareFilters(_ cplan: inout stk_spawn_plan, _ arena: CArena) throws(SandboxError) {
        do {
            let builtin = try Self.builtinFilters.get()
            switch plan.syscallFilter {
            case .unconfined:
                break
            case .profile(let program, let flags):
                cplan.profile = arena.bpf(program, flags: flags)
                cplan.baseline = arena.bpf(builtin.baseline)
            case .audited(let filters):
                let message = arena.array(of: msghdr.self, count: 1)
                let handoff = ListenerHandoff(descriptor: Sandbox.handoffDescriptor(plan.limits),
                                              message: UInt64(UInt(bitPattern: message)),
                                              secret: UInt64.random(in: .min ... .max))
                cplan.baseline = arena.bpf(filters.baseline)
                cplan.profile = arena.bpf(
                    try SeccompCompiler.allowingHandoff(filters.profile, handoff: handoff, enforcing: filters.enforcing),
                    flags: filters.profileFlags)
                cplan.audit_listener = 1
                cplan.handoff_fd = handoff.descriptor
                cplan.handoff_message = message
                cplan.handoff_secret = handoff.secret
            }
            cplan.init_filter = arena.bpf(builtin.initFilter)
        } catch where error.errno == EPERM {
            throw SandboxError(.invalidPlan, "the profile cannot be audited: \(error)")
        } catch {
            throw SandboxError(.system, "cannot compile the built-in seccomp filters: \(error)")
        }
    }

    /// The hardening baseline and pid 1's filter: the same for every sandbox, so
    /// taken from the user's filter cache (or compiled) once per process, not per sandbox.
    static let builtinFilters = Result { () throws(SeccompCompileError) in
        let cache = FilterCache.forCurrentUser()
        return (baseline: try SeccompCompiler.hardeningBaseline(cache: cache),
                initFilter: try SeccompCompiler.initFilter(cache: cache))
    }

    /// This process's code, data, stack, argument and environment bounds, which pid 1 (its
    /// copy) hides from the command; all 0 when /proc/self/stat cannot be read. They are fixed
    /// at execve, so read once.
    static let memoryLayout: stk_memory_layout = {
        var layout = stk_memory_layout()
        let field = ownStat()
        layout.start_code = field(26)
        layout.end_code = field(27)
        layout.start_stack = field(28)
        layout.start_data = field(45)
        layout.end_data = field(46)
        layout.start_brk = field(47)
        layout.arg_start = field(48)
        layout.arg_end = field(49)
        layout.env_start = field(50)
        layout.env_end = field(51)
        return layout
    }()

    /// The numeric fields of /proc/self/stat by proc(5)'s numbers (0 where not a number, or
    /// when the file cannot be read).
    static func ownStat() -> (Int) -> UInt64 {
        guard let bytes = HostFiles.read("/proc/self/stat", limit: 4096),
              let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return { _ in 0 } }
        // Fields after the command name, which may hold spaces: the state is field 3.
        let fields = bytes[(close + 1)...].split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") })
            .map { UInt64(String(decoding: $0, as: UTF8.self)) ?? 0 }
        return { number in number - 3 < fields.count ? fields[number - 3] : 0 }
    }

    /// A host directory with nothing of value beneath it to mount the new root
    /// on; inside the private mount namespace only.
    static func stagingDirectory() -> String {
        for candidate in ["/tmp", "/mnt", "/var/tmp"] where HostFiles.entry(candidate)?.kind == .directory {
            return candidate
        }
        return "/"
    }

    static func searchPath(_ environment: [String]) -> String {
        for entry in environment.reversed() where entry.hasPrefix("PATH=") { return String(entry.dropFirst(5)) }
        return SearchPath.default
    }

    /// The explicit rlimits, and the sandbox limits where rlimits stand in:
    /// RLIMIT_NPROC always (`ulimit -u` inside then says no more than holds),
    /// RLIMIT_AS only without a memory cgroup (a reservation is not a use).
    static func rlimits(_ limits: ResourceLimits, enforcement: LimitEnforcement) -> [stk_rlimit] {
        // No core dumps, hard limit included: a crash's memory must not reach the host's
        // core_pattern (which may pipe it to a helper outside the sandbox) or fill the disk.
        var result = [stk_rlimit(resource: Int32(STK_RLIMIT_CORE.rawValue), soft: 0, hard: 0)]
        func add(_ resource: stk_resource, _ values: UInt64?...) {
            if let value = values.compactMap({ $0 }).min() {
                result.append(stk_rlimit(resource: Int32(resource.rawValue), soft: value, hard: value))
            }
        }
        add(STK_RLIMIT_NPROC, limits.maxProcesses, limits.pids)
        add(STK_RLIMIT_FSIZE, limits.maxFileSize)
        add(STK_RLIMIT_NOFILE, limits.maxOpenFiles)
        add(STK_RLIMIT_CPU, limits.cpuSeconds)
        add(STK_RLIMIT_AS, limits.maxMemory, enforcement.controllers.contains(.memory) ? nil : limits.memory)
        return result
    }

    // MARK: - waiting

    private func supervise(pid: pid_t, pidfd: Int32, deadline: Int64?) throws(SandboxError)
        -> (Int32, stk_rusage, [stk_report], Bool) {
        var reports: [stk_report] = []
        var timedOut = false
        var stopped = false
        var socketOpen = true
        var nextWatch = watch.map { monotonicMicroseconds() + $0.intervalMicroseconds }
        while true {
            var fds = [pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: socketOpen ? socket.parent : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
            var timeout: Int32 = -1
            let wake = [timedOut ? nil : deadline, stopped ? nil : nextWatch].compactMap { $0 }.min()
            if let wake {
                let left = wake - monotonicMicroseconds()
                timeout = left <= 0 ? 0 : Int32(min((left + 999) / 1000, Int64(Int32.max)))
            }
            let ready: Int32
            switch systemCall(retryOnInterrupt: false, { poll(&fds, nfds_t(fds.count), timeout) }) {
            case .success(let count): ready = count
            // Not retried as it was: the timeout is recomputed from the deadline.
            case .failure(.interrupted): continue
            case .failure(let error): throw SandboxError(.system, "poll", errno: error.rawValue)
            }
            // Checked whenever due, not only when nothing else woke the loop.
            if let watch, let due = nextWatch, !stopped, monotonicMicroseconds() >= due {
                if watch.mustStop() {
                    _ = stk_pidfd_send_signal(pidfd, SIGKILL)
                    stopped = true
                }
                nextWatch = monotonicMicroseconds() + watch.intervalMicroseconds
            }
            if ready == 0 {
                guard let deadline, !timedOut, monotonicMicroseconds() >= deadline else { continue }
                // The deadline passed: pid 1 takes the whole namespace with it.
                _ = stk_pidfd_send_signal(pidfd, SIGKILL)
                timedOut = true
                continue
            }
            if fds[1].revents != 0 { socketOpen = drainReports(into: &reports, pidfd: pidfd) }
            if fds[2].revents != 0 { forwardPendingSignals(to: pidfd) }
            if fds[0].revents != 0 {
                // pid 1 is a zombie until reaped, so its group id names no one else yet.
                if fallback != nil { _ = kill(-pid, SIGKILL) }
                var status: Int32 = 0
                var usage = stk_rusage()
                guard stk_wait_pidfd(pidfd, &status, &usage) == 0 else {
                    throw SandboxError(.system, "waitid", errno: Errno.current.rawValue)
                }
                // Reports written just before the exit are still queued.
                if socketOpen { _ = drainReports(into: &reports, pidfd: pidfd) }
                return (status, usage, reports, timedOut)
            }
        }
    }

    /// Reads every queued report; false once the child side is closed.
    private func drainReports(into reports: inout [stk_report], pidfd: Int32) -> Bool {
        while true {
            var report = stk_report()
            var fd: Int32 = -1
            var extra = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = stk_receive_report(socket.parent, &report, &fd, &extra, Int(PATH_MAX))
            if n >= MemoryLayout<stk_report>.size {
                if report.kind == Int32(STK_REPORT_LISTENER.rawValue) {
                    startAudit(listener: fd, program: String(cString: extra), pidfd: pidfd)
                } else {
                    if fd >= 0 { _ = Glibc.close(fd) }
                    reports.append(report)
                }
                continue
            }
            if fd >= 0 { _ = Glibc.close(fd) }
            if n < 0 && (Errno.current == .resourceTemporarilyUnavailable || Errno.current == .interrupted) { return true }
            return false
        }
    }

    /// Serves the listener the command handed over, then lets it go on.
    private func startAudit(listener: Int32, program: String, pidfd: Int32) {
        guard listener >= 0, server == nil, let audit, case .audited(let filters) = plan.syscallFilter else {
            if listener >= 0 { _ = Glibc.close(listener) }
            return
        }
        let server = NotificationServer(listener: listener, enforcing: filters.enforcing, observer: audit,
                                        firstExec: .exec(path: program, argv: plan.command),
                                        killSandbox: { [pidfd] in _ = stk_pidfd_send_signal(pidfd, SIGKILL) })
        server.start()
        self.server = server
        var ack = UInt8(ascii: "a")
        _ = Glibc.write(socket.parent, &ack, 1)
    }

    private func forwardPendingSignals(to pidfd: Int32) {
        var info = signalfd_siginfo()
        while Glibc.read(signalFD, &info, MemoryLayout<signalfd_siginfo>.size) == MemoryLayout<signalfd_siginfo>.size {
            _ = stk_pidfd_send_signal(pidfd, Int32(info.ssi_signo))
        }
    }

    // MARK: - errors

    private func describe(_ report: stk_report, program: String) -> SandboxError {
        let code = report.error
        let stage = stk_stage(UInt32(report.stage))
        let step = report.index >= 0 && Int(report.index) < layout.steps.count ? layout.steps[Int(report.index)] : nil
        switch stage {
        case STK_STAGE_EXEC:
            if code == ENOENT {
                return SandboxError(.commandNotFound, "command not found in the sandbox: \(program)")
            }
            return SandboxError(.commandNotExecutable, "cannot execute \(program) in the sandbox", errno: code)
        case STK_STAGE_CHDIR:
            return SandboxError(.missingPath, "working directory \(plan.workingDirectory) is not usable in the sandbox", errno: code)
        case STK_STAGE_OPEN_SOURCE, STK_STAGE_SOURCE_CHANGED:
            var source = step?.destination ?? "?"
            if case .bind(let path, _, _, _, _, _)? = step?.action { source = path }
            return SandboxError(.setupFailed, "bind source \(source) changed or vanished while the sandbox was set up", errno: code)
        case STK_STAGE_CGROUP:
            return SandboxError(.setupFailed, "cannot join the sandbox's cgroup", errno: code)
        case STK_STAGE_RLIMIT:
            return SandboxError(.setupFailed, "cannot set resource limit #\(report.index)", errno: code)
        default:
            let what = Self.stageNames[stage.rawValue] ?? "step \(stage.rawValue)"
            let place = step.map { " at \($0.destination)" } ?? ""
            return SandboxError(.setupFailed, "sandbox setup failed: \(what)\(place)", errno: code)
        }
    }

    static let stageNames: [UInt32: String] = [
        STK_STAGE_PARENT_DEATH_SIGNAL.rawValue: "arming the parent-death signal",
        STK_STAGE_SETUP_IDENTITY.rawValue: "switching to the setup identity",
        STK_STAGE_NOT_DUMPABLE.rawValue: "making the process non-dumpable",
        STK_STAGE_MOUNT_PRIVATE.rawValue: "making mount propagation private",
        STK_STAGE_STAGING_ROOT.rawValue: "mounting the new root",
        STK_STAGE_MOUNTPOINT.rawValue: "creating a mount point",
        STK_STAGE_BIND.rawValue: "bind mount",
        STK_STAGE_TMPFS.rawValue: "tmpfs mount",
        STK_STAGE_PROC.rawValue: "mounting /proc",
        STK_STAGE_DEVPTS.rawValue: "mounting devpts",
        STK_STAGE_SYMLINK.rawValue: "creating a symlink",
        STK_STAGE_FILE.rawValue: "writing a file",
        STK_STAGE_DIR.rawValue: "creating a directory",
        STK_STAGE_REMOUNT.rawValue: "remounting read-only",
        STK_STAGE_PIVOT_ROOT.rawValue: "pivot_root",
        STK_STAGE_DETACH_OLD_ROOT.rawValue: "detaching the old root",
        STK_STAGE_HOSTNAME.rawValue: "setting the hostname",
        STK_STAGE_LOOPBACK.rawValue: "bringing up loopback",
        STK_STAGE_BOUNDING_SET.rawValue: "clearing the capability bounding set",
        STK_STAGE_SECUREBITS.rawValue: "locking securebits",
        STK_STAGE_SETGROUPS.rawValue: "dropping supplementary groups",
        STK_STAGE_SETGID.rawValue: "switching to the stack group",
        STK_STAGE_SETUID.rawValue: "switching to the stack user",
        STK_STAGE_CAPABILITIES.rawValue: "dropping capabilities",
        STK_STAGE_FORK.rawValue: "starting the command process",
        STK_STAGE_INIT_FILTER.rawValue: "confining the sandbox init",
        STK_STAGE_STDIO.rawValue: "setting up stdio",
        STK_STAGE_SESSION.rawValue: "starting a new session",
        STK_STAGE_CLOSE_FDS.rawValue: "closing inherited descriptors",
        STK_STAGE_NO_NEW_PRIVS.rawValue: "setting no_new_privs",
        STK_STAGE_LANDLOCK.rawValue: "applying Landlock",
        STK_STAGE_SECCOMP_PROFILE.rawValue: "loading the seccomp profile",
        STK_STAGE_SECCOMP_BASELINE.rawValue: "loading the seccomp hardening baseline",
        STK_STAGE_AUDIT_LISTENER.rawValue: "handing the seccomp listener to the supervisor",
        STK_STAGE_SUBREAPER.rawValue: "becoming the subreaper of the command's processes",
        STK_STAGE_SESSION_FILTER.rawValue: "loading the filter that keeps the command in its process group",
    ]
}

/// C memory for one spawn: the child reads its copy after clone, the parent
/// frees its own once stk_spawn returns. One block while it fits, so that the
/// zygote can take a copy whole and move its pointers; beyond, blocks of their own.
final class CArena {
    static let capacity = 96 * 1024
    let base: UnsafeMutableRawPointer
    private(set) var used = 0
    /// Everything lies in [base, base + used).
    private(set) var contiguous = true
    private var overflow: [UnsafeMutableRawPointer] = []

    init() { base = malloc(Self.capacity)! }

    /// `count` zeroed bytes.
    private func allocate(_ count: Int, alignment: Int) -> UnsafeMutableRawPointer {
        let size = max(count, 1)
        let start = (used + alignment - 1) & ~(alignment - 1)
        if start + size <= Self.capacity {
            used = start + size
            memset(base + start, 0, size)
            return base + start
        }
        contiguous = false
        let p = calloc(1, size)!
        overflow.append(p)
        return p
    }

    func string(_ s: String) -> UnsafePointer<CChar> {
        var s = s
        return s.withUTF8 { utf8 in
            let p = allocate(utf8.count + 1, alignment: 1)
            if utf8.count > 0 { p.copyMemory(from: utf8.baseAddress!, byteCount: utf8.count) }
            return UnsafePointer(p.assumingMemoryBound(to: CChar.self))
        }
    }

    func bytes(_ b: [UInt8]) -> UnsafePointer<CChar> {
        let p = allocate(b.count, alignment: 8)
        b.withUnsafeBytes { if $0.count > 0 { p.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
        return UnsafePointer(p.assumingMemoryBound(to: CChar.self))
    }

    func array<T>(of: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        allocate(max(count, 1) * MemoryLayout<T>.stride, alignment: MemoryLayout<T>.alignment).assumingMemoryBound(to: T.self)
    }

    /// A NULL-terminated array of C strings.
    func strings(_ list: [String]) -> UnsafePointer<UnsafePointer<CChar>?> {
        let p = array(of: UnsafePointer<CChar>?.self, count: list.count + 1)
        for (i, s) in list.enumerated() { p[i] = string(s) }
        p[list.count] = nil
        return UnsafePointer(p)
    }

    func bpf(_ program: BPFProgram, flags: UInt32 = 0) -> stk_bpf {
        stk_bpf(instructions: UnsafeRawPointer(bytes(program.bytes)), count: UInt16(program.instructionCount), flags: flags)
    }

    func mount(_ step: MountStep) -> stk_mount {
        var m = stk_mount()
        m.dest = string(step.destination)
        m.uid = UInt32.max
        m.gid = UInt32.max
        func own(_ owner: MountStep.Owner?) {
            if let owner { m.uid = owner.uid; m.gid = owner.gid }
        }
        switch step.action {
        case .bind(let source, let readOnly, let devices, let optional, let device, let inode):
            m.kind = STK_MOUNT_BIND.rawValue
            m.source = string(source)
            m.flags = (readOnly ? UInt32(STK_MOUNT_READONLY) : 0) |
                (devices ? UInt32(STK_MOUNT_DEVICES) : 0) |
                (optional ? UInt32(STK_MOUNT_OPTIONAL) : 0)
            m.source_dev = device
            m.source_ino = inode
        case .tmpfs(let mode, let owner, let size):
            m.kind = STK_MOUNT_TMPFS.rawValue
            m.mode = mode
            m.size = size
            own(owner)
        case .proc:
            m.kind = STK_MOUNT_PROC.rawValue
        case .devpts:
            m.kind = STK_MOUNT_DEVPTS.rawValue
        case .symlink(let target):
            m.kind = STK_MOUNT_SYMLINK.rawValue
            m.data = string(target)
        case .file(let contents, let mode, let owner):
            m.kind = STK_MOUNT_FILE.rawValue
            m.data = bytes(contents)
            m.data_len = contents.count
            m.mode = mode
            own(owner)
        case .directory(let mode, let owner):
            m.kind = STK_MOUNT_DIR.rawValue
            m.mode = mode
            own(owner)
        case .remountReadOnly(let recursive):
            m.kind = STK_MOUNT_REMOUNT_RO.rawValue
            m.flags = recursive ? UInt32(STK_MOUNT_RECURSIVE) : 0
        case .maskReadOnly:
            m.kind = STK_MOUNT_MASK_RO.rawValue
        }
        return m
    }

    func release() {
        overflow.forEach { free($0) }
        overflow.removeAll()
        free(base)
    }
}
