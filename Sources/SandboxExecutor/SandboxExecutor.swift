import CrashSafety
import Glibc
import Lifecycle
import Sandbox
import Seccomp
import SystemCalls
import SystemPackage
import TerminalText

/// Runs each buildpack invocation in a sandbox of its own: detection under
/// one profile, build under another, as the stack user, with exactly the
/// views the lifecycle asked for.
public struct SandboxExecutor: BuildpackExecutor {
    public var user: StackUser
    public var rootfs: String?
    public var detectFilter: SyscallFilter
    public var buildFilter: SyscallFilter
    public var limits: ResourceLimits
    /// How `limits` are held, decided once for the whole lifecycle run.
    public var enforcement: LimitEnforcement
    /// The run's emptied cgroups, for the next buildpack's sandbox.
    public var cgroupPool: CgroupPool?
    /// Where streamed output goes.
    public var console: Console
    /// With a syscall audit: the filters per phase and where events go.
    public var audit: Audit?
    /// Refuse rather than fall back to sandboxes without namespaces.
    public var requireNamespaces: Bool

    public struct Audit: Sendable {
        public var detect: AuditFilters
        public var build: AuditFilters
        public var sink: any AuditSink
        public var newSandboxID: @Sendable () -> String

        public init(detect: AuditFilters, build: AuditFilters, sink: any AuditSink, newSandboxID: @escaping @Sendable () -> String) {
            self.detect = detect
            self.build = build
            self.sink = sink
            self.newSandboxID = newSandboxID
        }
    }

    public init(user: StackUser, rootfs: String?, detectFilter: SyscallFilter, buildFilter: SyscallFilter,
                limits: ResourceLimits = ResourceLimits(),
                enforcement: LimitEnforcement = .rlimits(reason: "no cgroup asked for"), cgroupPool: CgroupPool? = nil,
                console: Console = Console(fd: STDOUT_FILENO), audit: Audit? = nil, requireNamespaces: Bool = false) {
        self.cgroupPool = cgroupPool
        self.requireNamespaces = requireNamespaces
        self.enforcement = enforcement
        self.audit = audit
        self.user = user
        self.rootfs = rootfs
        self.detectFilter = detectFilter
        self.buildFilter = buildFilter
        self.limits = limits
        self.console = console
    }

    static let platformDirectories: Set<String> = ["cnb", "layers", "workspace", "platform"]

    public func plan(for invocation: Invocation) -> SandboxPlan {
        var mounts: [MountRequest] = invocation.scratch.map { .tmpfs(destination: $0) }
        mounts += invocation.views.map { .bind(source: $0.hostPath, destination: $0.path, readOnly: !$0.writable) }
        var plan = SandboxPlan(command: [invocation.executable] + invocation.arguments,
                               environment: invocation.environment, user: user,
                               network: invocation.network ? .host : .none, hostname: "stockade", rootfs: rootfs,
                               mounts: mounts, workingDirectory: invocation.workingDirectory, limits: limits,
                               syscallFilter: invocation.phase == .detect ? detectFilter : buildFilter,
                               timeoutSeconds: invocation.timeoutSeconds, enforcement: enforcement,
                               cgroupPool: cgroupPool, requireNamespaces: requireNamespaces)
        // A builder image's own platform directories: the lifecycle mounts each buildpack's view there.
        plan.rootfsOmitted = Self.platformDirectories
        return plan
    }

    public func run(_ invocation: Invocation) async -> Result<InvocationResult, ExecutionError> {
        var plan = plan(for: invocation)
        var watch: Watch?
        if let disk = invocation.disk {
            plan.limits.maxFileSize = min(plan.limits.maxFileSize ?? .max, disk.maxFileSize)
            watch = disk.exceeded.map { Watch(intervalMicroseconds: disk.pollMicroseconds, mustStop: $0) }
        }
        var observer: AuditObserver?
        if let audit {
            plan.syscallFilter = .audited(invocation.phase == .detect ? audit.detect : audit.build)
            observer = AuditObserver(sandbox: audit.newSandboxID(),
                                     labels: ["phase": invocation.phase.rawValue, "buildpack": invocation.buildpack],
                                     sink: audit.sink)
        }
        var fds: [Int32] = [-1, -1]
        // A socket pair rather than a pipe: it can be made close-on-exec
        // atomically, so a sandbox cloned meanwhile by another thread never
        // holds our write end.
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            return .failure(ExecutionError("cannot create a pipe for \(invocation.buildpack): \(Errno.current)", exitCode: 71))
        }
        shutdown(fds[0], Int32(SHUT_WR))
        let nullFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        let reader: OutputReader
        let fault: FaultPoint = invocation.phase == .detect ? .detect : .build
        switch invocation.output {
        case .capture(let limit): reader = OutputReader(fd: fds[0], mode: .capture(limit: limit), fault: fault)
        case .stream(let prefix): reader = OutputReader(fd: fds[0], mode: .stream(prefix: prefix, console: console), fault: fault)
        }
        let collected = reader.start()
        let outcome: SandboxOutcome
        // The sandbox takes over the write end and /dev/null.
        switch await Sandbox.run(plan, stdio: StandardStreams(input: nullFD >= 0 ? .takenOver(nullFD) : .inherited,
                                                               output: .takenOver(fds[1]), error: .takenOver(fds[1])),
                                 audit: observer, watch: watch) {
        case .success(let value):
            outcome = value
        case .failure(let error):
            _ = await collected.value
            switch error.kind {
            case .commandNotFound, .commandNotExecutable:
                return .success(InvocationResult(ending: .notRunnable(error.description)))
            default:
                return .failure(ExecutionError("cannot run \(invocation.buildpack)'s \(invocation.phase.rawValue) in a sandbox: \(error)",
                                               exitCode: error.kind == .userNamespacesUnavailable ? 69 : 70))
            }
        }
        let output = await collected.value
        let ending: InvocationResult.Ending
        switch outcome.termination {
        case .exited(let code): ending = .exited(code)
        case .signaled(let signal): ending = .signaled(signal)
        case .timedOut: ending = .timedOut
        }
        if let summary = outcome.audit, summary.lost > 0 {
            return .failure(ExecutionError("\(summary.lost) audit events of \(invocation.buildpack) could not be written", exitCode: 71))
        }
        let counts = outcome.audit.map {
            AuditCounts(events: $0.counts, programs: $0.programs.sorted(), destinations: $0.destinations.sorted(),
                        denials: $0.denials, dropped: $0.dropped)
        }
        return .success(InvocationResult(ending: ending, output: output, wallMicroseconds: outcome.wallMicroseconds,
                                         cpuMicroseconds: outcome.usage.userMicroseconds + outcome.usage.systemMicroseconds,
                                         maxResidentKiB: outcome.usage.maxResidentKiB, audit: counts,
                                         limitReached: outcome.limitReached?.description))
    }
}

/// A descriptor whole lines are written to, one writer at a time, so the
/// output of concurrent buildpacks never interleaves within a line.
public final class Console: Sendable {
    let fd: Int32
    private let lock = LockedState()

    public init(fd: Int32) { self.fd = fd }

    public func write(_ bytes: [UInt8]) {
        lock.withLock {
            // A console that cannot be written to loses the output, not the build.
            try? FileDescriptor(rawValue: fd).writeAll(bytes)
        }
    }
}

/// A pthread mutex for the few places that need one across threads, at a
/// fixed heap address (`&property` may hand pthread a temporary copy).
final class LockedState: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    init() { pthread_mutex_init(mutex, nil) }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
    func withLock<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }
}

/// Drains a pipe on its own thread until EOF, which comes when every process
/// of the sandbox is gone.
final class OutputReader: Sendable {
    enum Mode: Sendable {
        case capture(limit: Int)
        case stream(prefix: String, console: Console)
    }

    let fd: Int32
    let mode: Mode
    /// Reached at the first output: the sandbox is running then.
    let fault: FaultPoint

    init(fd: Int32, mode: Mode, fault: FaultPoint) {
        self.fd = fd
        self.mode = mode
        self.fault = fault
    }

    /// Starts reading; the task's value is what was captured.
    func start() -> Task<[UInt8], Never> {
        let (stream, continuation) = AsyncStream<[UInt8]>.makeStream()
        let fd = self.fd, mode = self.mode, fault = self.fault
        DedicatedThread.start {
            continuation.yield(OutputReader.drain(fd: fd, mode: mode, fault: fault))
            continuation.finish()
        }
        return Task {
            for await captured in stream { return captured }
            return []
        }
    }

    static func drain(fd: Int32, mode: Mode, fault: FaultPoint) -> [UInt8] {
        defer { close(fd) }
        var captured: [UInt8] = []
        // What a buildpack prints is hostile: only safe, bounded lines reach the console.
        var lines: PrefixedLines?
        if case .stream(let prefix, _) = mode { lines = PrefixedLines(prefix: prefix) }
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let result = buffer.withUnsafeMutableBytes { raw in systemCall { read(fd, raw.baseAddress, raw.count) } }
            guard case .success(let n) = result, n > 0 else { break }
            fault.reached()
            switch mode {
            case .capture(let limit):
                if captured.count < limit { captured += buffer[0..<min(n, limit - captured.count)] }
            case .stream(_, let console):
                if let ready = lines?.feed(buffer[0..<n]), !ready.isEmpty { console.write(ready) }
            }
        }
        if case .stream(_, let console) = mode, let rest = lines?.finish(), !rest.isEmpty {
            console.write(rest)
        }
        return captured
    }
}

extension SandboxExecutor {
    public func makeWritable(_ hostPath: String) throws(ExecutionError) {
        try onHostFiles("cannot hand \(hostPath) to the stack user: ") { () throws(SandboxError) in
            try StackUserFiles.makeWritable(hostPath, for: user)
        }
    }

    /// Lets the invoker read a tree the stack user wrote into (to export it).
    public func makeReadable(_ hostPaths: [String]) throws(ExecutionError) {
        try onHostFiles("cannot read what the stack user wrote in \(hostPaths.joined(separator: " and ")): ") { () throws(SandboxError) in
            try StackUserFiles.makeReadable(hostPaths, for: user)
        }
    }

    /// Lets the stack user pass through the run's scratch directory where it reaches it by host path.
    public func makeReachable(_ hostPath: String) throws(ExecutionError) {
        try onHostFiles { () throws(SandboxError) in try StackUserFiles.makeReachable(hostPath, for: user) }
    }

    /// Removes a tree the stack user wrote into.
    public func remove(_ hostPath: String) throws(ExecutionError) {
        try onHostFiles { () throws(SandboxError) in try StackUserFiles.removeTree(hostPath, for: user) }
    }

    /// Work on host files failed: the system's fault, not the buildpack's (exit 71, EX_OSERR).
    private func onHostFiles(_ context: String = "", _ work: () throws(SandboxError) -> Void) throws(ExecutionError) {
        do {
            try work()
        } catch {
            throw ExecutionError(context + "\(error)", exitCode: 71)
        }
    }
}
