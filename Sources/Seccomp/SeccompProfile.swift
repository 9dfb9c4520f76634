import JSON
/// A seccomp profile in the Docker/OCI JSON format (`docker run --security-opt seccomp=FILE`,
/// runtime-spec `linux.seccomp`), so existing profiles can be brought as they are.
///
/// Field names and spellings follow the format; ``SeccompProfile/parse(_:origin:)`` reads it
/// and ``SeccompCompiler/compile(_:)`` turns it into BPF for the native architecture.
public struct SeccompProfile: Sendable, Equatable {
    /// What happens to a syscall no rule matches.
    public var defaultAction: SeccompAction
    /// The errno for `defaultAction` `SCMP_ACT_ERRNO` (or the message for `SCMP_ACT_TRACE`); EPERM when absent.
    public var defaultErrnoRet: UInt16?
    /// Architectures the profile was written for. Validated, but only the native one is compiled.
    public var architectures: [Architecture]
    /// Docker's alternative to `architectures`: each main architecture with its compat ones.
    public var archMap: [ArchMapEntry]
    /// Flags for seccomp(2) when the filter is installed.
    public var flags: [Flag]
    /// runc's seccomp agent socket. Stockade runs no agent: compiling warns that it is ignored.
    public var listenerPath: String?
    /// Opaque data runc passes to the seccomp agent.
    public var listenerMetadata: String?
    /// The rules, in document order.
    public var syscalls: [SeccompSyscall]
    /// The `"x-stockade"` object, kept raw. Other runtimes ignore it as an unknown key; stockade
    /// reads `comment` (a string) and `audit` (``auditRules``).
    public var stockadeExtension: JSONValue?
    /// `x-stockade.audit`: the calls the syscall audit reports even when the profile allows them.
    /// Empty when absent. Read from ``stockadeExtension`` by the parser.
    public var auditRules: [AuditRule]

    public init(
        defaultAction: SeccompAction,
        defaultErrnoRet: UInt16? = nil,
        architectures: [Architecture] = [],
        archMap: [ArchMapEntry] = [],
        flags: [Flag] = [],
        listenerPath: String? = nil,
        listenerMetadata: String? = nil,
        syscalls: [SeccompSyscall] = [],
        stockadeExtension: JSONValue? = nil,
        auditRules: [AuditRule] = []
    ) {
        self.defaultAction = defaultAction
        self.defaultErrnoRet = defaultErrnoRet
        self.architectures = architectures
        self.archMap = archMap
        self.flags = flags
        self.listenerPath = listenerPath
        self.listenerMetadata = listenerMetadata
        self.syscalls = syscalls
        self.stockadeExtension = stockadeExtension
        self.auditRules = auditRules
    }

    /// A libseccomp architecture token, as spelled in the format.
    public enum Architecture: String, Sendable, CaseIterable {
        case x86 = "SCMP_ARCH_X86"
        case x86_64 = "SCMP_ARCH_X86_64"
        case x32 = "SCMP_ARCH_X32"
        case arm = "SCMP_ARCH_ARM"
        case aarch64 = "SCMP_ARCH_AARCH64"
        case mips = "SCMP_ARCH_MIPS"
        case mips64 = "SCMP_ARCH_MIPS64"
        case mips64n32 = "SCMP_ARCH_MIPS64N32"
        case mipsel = "SCMP_ARCH_MIPSEL"
        case mipsel64 = "SCMP_ARCH_MIPSEL64"
        case mipsel64n32 = "SCMP_ARCH_MIPSEL64N32"
        case ppc = "SCMP_ARCH_PPC"
        case ppc64 = "SCMP_ARCH_PPC64"
        case ppc64le = "SCMP_ARCH_PPC64LE"
        case s390 = "SCMP_ARCH_S390"
        case s390x = "SCMP_ARCH_S390X"
        case parisc = "SCMP_ARCH_PARISC"
        case parisc64 = "SCMP_ARCH_PARISC64"
        case riscv64 = "SCMP_ARCH_RISCV64"
        case loongarch64 = "SCMP_ARCH_LOONGARCH64"
        case m68k = "SCMP_ARCH_M68K"
        case sh = "SCMP_ARCH_SH"
        case sheb = "SCMP_ARCH_SHEB"
    }

    /// One `archMap` entry: `{"architecture": ..., "subArchitectures": [...]}`.
    public struct ArchMapEntry: Sendable, Equatable {
        public var architecture: Architecture
        public var subArchitectures: [Architecture]

        public init(architecture: Architecture, subArchitectures: [Architecture] = []) {
            self.architecture = architecture
            self.subArchitectures = subArchitectures
        }
    }

    /// A seccomp(2) `SECCOMP_FILTER_FLAG_*` named in `flags`.
    public enum Flag: String, Sendable, CaseIterable {
        case tsync = "SECCOMP_FILTER_FLAG_TSYNC"
        case log = "SECCOMP_FILTER_FLAG_LOG"
        case specAllow = "SECCOMP_FILTER_FLAG_SPEC_ALLOW"
        case waitKillableRecv = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
    }
}

/// What the kernel does when a rule matches.
public enum SeccompAction: String, Sendable, CaseIterable {
    /// libseccomp's historical name for `SCMP_ACT_KILL_THREAD`.
    case kill = "SCMP_ACT_KILL"
    case killProcess = "SCMP_ACT_KILL_PROCESS"
    case killThread = "SCMP_ACT_KILL_THREAD"
    case trap = "SCMP_ACT_TRAP"
    /// Fail with `errnoRet` (EPERM by default) without running the syscall.
    case errno = "SCMP_ACT_ERRNO"
    /// Stop for a ptrace tracer, passing `errnoRet`; with no tracer the call fails with ENOSYS.
    case trace = "SCMP_ACT_TRACE"
    case allow = "SCMP_ACT_ALLOW"
    /// Allow, and write an audit record.
    case log = "SCMP_ACT_LOG"
    /// Ask the listener of a filter installed with `SECCOMP_FILTER_FLAG_NEW_LISTENER`;
    /// with no listener the call fails with ENOSYS.
    case notify = "SCMP_ACT_NOTIFY"

    /// Whether `errnoRet` means something for this action.
    var takesErrno: Bool { self == .errno || self == .trace }
}

/// One `syscalls[]` entry: names, the action taken when they are called, and optional argument checks.
public struct SeccompSyscall: Sendable, Equatable {
    /// Syscall names. The legacy single `name` key is read into this array.
    public var names: [String]
    public var action: SeccompAction
    /// The errno for `SCMP_ACT_ERRNO` (or the message for `SCMP_ACT_TRACE`); EPERM when absent.
    public var errnoRet: UInt16?
    /// Argument checks. Distinct indexes must all hold (AND); when an index repeats, each check
    /// becomes a rule of its own (OR), as runc does, because libseccomp cannot AND two checks on one argument.
    public var args: [Arg]
    public var comment: String?
    /// The rule applies only where all of these hold.
    public var includes: Filter
    /// The rule is skipped where any of these holds.
    public var excludes: Filter

    public init(
        names: [String],
        action: SeccompAction,
        errnoRet: UInt16? = nil,
        args: [Arg] = [],
        comment: String? = nil,
        includes: Filter = Filter(),
        excludes: Filter = Filter()
    ) {
        self.names = names
        self.action = action
        self.errnoRet = errnoRet
        self.args = args
        self.comment = comment
        self.includes = includes
        self.excludes = excludes
    }

    /// One argument check. For `SCMP_CMP_MASKED_EQ`, `value` is the mask and `valueTwo`
    /// the expected result: `(arg & value) == valueTwo`.
    public struct Arg: Sendable, Equatable {
        /// The syscall argument, 0 to 5.
        public var index: Int
        public var value: UInt64
        public var valueTwo: UInt64
        public var op: Operator

        public init(index: Int, value: UInt64, valueTwo: UInt64 = 0, op: Operator) {
            self.index = index
            self.value = value
            self.valueTwo = valueTwo
            self.op = op
        }
    }

    /// A comparison, applied to the full 64-bit argument.
    public enum Operator: String, Sendable, CaseIterable {
        case notEqual = "SCMP_CMP_NE"
        case lessThan = "SCMP_CMP_LT"
        case lessOrEqual = "SCMP_CMP_LE"
        case equal = "SCMP_CMP_EQ"
        case greaterOrEqual = "SCMP_CMP_GE"
        case greaterThan = "SCMP_CMP_GT"
        case maskedEqual = "SCMP_CMP_MASKED_EQ"
    }

    /// Docker's `includes`/`excludes`. The sandbox drops every capability, so a rule that
    /// includes capabilities never applies and one that excludes them always does.
    public struct Filter: Sendable, Equatable {
        /// Docker architecture names (`amd64`, `arm64`, ...), matched against the native one.
        public var arches: [String]
        /// Capability names such as `CAP_SYS_ADMIN`.
        public var caps: [String]
        /// Compared with the running kernel's `uname -r`.
        public var minKernel: KernelVersion?

        public init(arches: [String] = [], caps: [String] = [], minKernel: KernelVersion? = nil) {
            self.arches = arches
            self.caps = caps
            self.minKernel = minKernel
        }

        /// The architecture names Docker uses in `includes`/`excludes`.
        static let knownArches = [
            "x86", "amd64", "x32", "arm", "arm64", "mips", "mipsle", "mips64", "mips64n32",
            "mipsel64", "mipsel64n32", "mips3l64n32", "ppc", "ppc64", "ppc64le", "riscv64",
            "s390", "s390x", "loong64", "parisc", "parisc64", "m68k", "sh",
        ]
    }
}

/// A kernel release as `major.minor`, the precision Docker's `minKernel` uses.
public struct KernelVersion: Sendable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// Reads the leading `major.minor` of a release string: `"4.8"`, or `"6.18.44-fc-v657"` from uname.
    public init?(release: String) {
        let parts = release.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, let major = Int(parts[0]),
              let minor = Int(parts[1].prefix { $0.isASCII && $0.isNumber }),
              major >= 0, minor >= 0 else { return nil }
        self.init(major: major, minor: minor)
    }

    public var description: String { "\(major).\(minor)" }

    public static func < (lhs: KernelVersion, rhs: KernelVersion) -> Bool {
        (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
    }
}
