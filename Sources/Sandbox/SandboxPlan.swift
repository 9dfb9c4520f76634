import Seccomp

/// Everything one sandboxed run needs, as a value that can be printed, compared
/// and tested before anything is spawned. Nothing here knows about buildpacks.
public struct SandboxPlan: Sendable, Equatable {
    /// argv; the first element is looked up in the sandbox's PATH when it has no '/'.
    public var command: [String]
    /// The command's environment as KEY=VALUE, exactly as it will be passed.
    public var environment: [String]
    public var user: StackUser
    public var network: NetworkMode
    public var hostname: String
    /// A root filesystem to use read-only; nil uses the host's system directories.
    public var rootfs: String?
    /// Top-level entries of `rootfs` left out, for the caller to mount its own there (a read-only
    /// bind of the image's directory would leave no place for mount points beneath it).
    public var rootfsOmitted: Set<String> = []
    /// Binds and tmpfs mounts applied over the base layout, in order.
    public var mounts: [MountRequest]
    public var workingDirectory: String
    public var limits: ResourceLimits
    public var syscallFilter: SyscallFilter
    /// Kill the whole sandbox after this many seconds.
    public var timeoutSeconds: Double?
    /// Use Landlock, where the kernel offers it, as a second wall for writes.
    public var landlock: Bool
    /// How `limits.memory`, `pids` and `cpus` are held; decided once per command (`LimitEnforcement.detect`).
    public var enforcement: LimitEnforcement
    /// Where the sandbox's cgroups come from and go back to, for a run of many sandboxes; nil: its own, removed.
    public var cgroupPool: CgroupPool?
    /// Refuse (`userNamespacesUnavailable`) rather than fall back to a sandbox
    /// without namespaces when the kernel will not create a user namespace.
    public var requireNamespaces: Bool

    public init(command: [String], environment: [String] = [], user: StackUser = StackUser(),
                network: NetworkMode = .none, hostname: String = "stockade", rootfs: String? = nil,
                mounts: [MountRequest] = [], workingDirectory: String = "/",
                limits: ResourceLimits = ResourceLimits(), syscallFilter: SyscallFilter,
                timeoutSeconds: Double? = nil, landlock: Bool = true,
                enforcement: LimitEnforcement = .rlimits(reason: "no cgroup asked for"),
                cgroupPool: CgroupPool? = nil, requireNamespaces: Bool = false) {
        self.cgroupPool = cgroupPool
        self.requireNamespaces = requireNamespaces
        self.command = command
        self.environment = environment
        self.user = user
        self.network = network
        self.hostname = hostname
        self.rootfs = rootfs
        self.mounts = mounts
        self.workingDirectory = workingDirectory
        self.limits = limits
        self.syscallFilter = syscallFilter
        self.timeoutSeconds = timeoutSeconds
        self.landlock = landlock
        self.enforcement = enforcement
    }
}

/// The unprivileged user the command runs as (CNB_USER_ID / CNB_GROUP_ID).
public struct StackUser: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public init(uid: UInt32 = 1000, gid: UInt32 = 1000) {
        self.uid = uid
        self.gid = gid
    }
    public var name: String { uid == 0 ? "root" : "cnb" }
    public var home: String { uid == 0 ? "/root" : "/home/\(name)" }
}

public enum NetworkMode: String, Sendable, Equatable, CaseIterable {
    /// A private network namespace with only loopback, brought up.
    case none
    /// The host's network namespace.
    case host
}

public enum MountRequest: Sendable, Equatable {
    case bind(source: String, destination: String, readOnly: Bool)
    case tmpfs(destination: String)
}

public struct ResourceLimits: Sendable, Equatable {
    /// Memory of the whole sandbox, tmpfs pages included, in bytes: a cgroup's limit, or
    /// RLIMIT_AS per process and the tmpfs sizes when only rlimits hold.
    public var memory: UInt64?
    /// Processes and threads of the whole sandbox (pids.max), or RLIMIT_NPROC.
    public var pids: UInt64?
    /// CPU bandwidth in cores (0.5: half of one); a cgroup's quota, unenforced with rlimits only.
    public var cpus: Double?
    public var maxProcesses: UInt64?
    public var maxFileSize: UInt64?
    public var maxOpenFiles: UInt64?
    public var cpuSeconds: UInt64?
    /// RLIMIT_AS, in bytes.
    public var maxMemory: UInt64?
    public init(maxProcesses: UInt64? = nil, maxFileSize: UInt64? = nil, maxOpenFiles: UInt64? = nil,
                cpuSeconds: UInt64? = nil, maxMemory: UInt64? = nil,
                memory: UInt64? = nil, pids: UInt64? = nil, cpus: Double? = nil) {
        self.memory = memory
        self.pids = pids
        self.cpus = cpus
        self.maxProcesses = maxProcesses
        self.maxFileSize = maxFileSize
        self.maxOpenFiles = maxOpenFiles
        self.cpuSeconds = cpuSeconds
        self.maxMemory = maxMemory
    }
}

public enum SyscallFilter: Sendable, Equatable {
    /// No seccomp at all, not even the hardening baseline.
    case unconfined
    /// A compiled profile and its SECCOMP_FILTER_FLAG_* flags; the hardening
    /// baseline is installed with it.
    case profile(BPFProgram, flags: UInt32 = 0)
    /// Audit variants with a listener; every notification is decided by the
    /// original filters (see `AuditFilters`). Needs an `AuditObserver`.
    case audited(AuditFilters)
}

/// How a sandboxed command ended.
public enum Termination: Sendable, Equatable {
    case exited(Int32)
    case signaled(Int32)
    case timedOut

    /// The shell convention: the exit code, 128+N for signal N, 124 for a timeout.
    public var exitCode: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        case .timedOut: 124
        }
    }
}

/// CPU time and peak memory of everything that ran in the sandbox.
public struct ResourceUsage: Sendable, Equatable {
    public var userMicroseconds: Int64
    public var systemMicroseconds: Int64
    public var maxResidentKiB: Int64
}

public struct SandboxOutcome: Sendable, Equatable {
    public var termination: Termination
    public var usage: ResourceUsage
    public var wallMicroseconds: Int64
    /// For an audited sandbox.
    public var audit: AuditSummary?
    /// A cgroup limit the sandbox ran into, when one held it.
    public var limitReached: LimitReached?
}
