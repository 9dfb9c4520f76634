import CSeccomp
import Glibc
import SystemCalls

/// One libseccomp rule: a syscall number, an action, and checks that must all hold.
struct FilterRule {
    var syscall: Int32
    var action: UInt32
    var checks: [scmp_arg_cmp] = []
    /// Names the rule in errors: `"socket" (SCMP_ACT_ALLOW) from $.syscalls[4]`.
    var subject: String
}

/// A libseccomp filter context for the native architecture, released when it goes away.
/// All libseccomp and memfd calls of the module live here.
struct LibseccompFilter: ~Copyable {
    private let context: scmp_filter_ctx
    private let subject: String

    /// `subject` names the filter in errors (`the profile`, `the hardening baseline`).
    init(defaultAction: UInt32, subject: String) throws(SeccompCompileError) {
        guard let context = seccomp_init(defaultAction) else {
            // seccomp_init gives no reason; an action it rejects is the likely one.
            throw SeccompCompileError(operation: "seccomp_init", subject: subject, errno: EINVAL)
        }
        // SCMP_FLTATR_CTL_OPTIMIZE=2, a binary tree over syscall numbers: installing a filter,
        // the kernel (5.11+) runs it for every syscall number to cache those it allows outright,
        // which walked the default profile's linear list 450 times: 0.5 ms per sandbox, against
        // 0.2 ms as a tree. Compiling the tree costs 0.2 ms more, once per user (FilterCache).
        let attributes: [(scmp_filter_attr, UInt32)] = [
            // Foreign-architecture and x32 calls bypass a native-only filter's syscall numbers: kill them.
            (SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS),
            // The sandbox sets no_new_privs itself, and only the exported program is ever used.
            (SCMP_FLTATR_CTL_NNP, 0),
            // Report the system's errno (for example from write) rather than ECANCELED.
            (SCMP_FLTATR_API_SYSRAWRC, 1),
            (SCMP_FLTATR_CTL_OPTIMIZE, 2),
        ]
        for (attribute, value) in attributes {
            let rc = seccomp_attr_set(context, attribute, value)
            guard rc == 0 else {
                seccomp_release(context)
                throw SeccompCompileError(operation: "seccomp_attr_set(\(attribute.rawValue))", subject: subject,
                                          errno: -rc)
            }
        }
        self.context = context
        self.subject = subject
    }

    deinit { seccomp_release(context) }

    func add(_ rule: FilterRule) throws(SeccompCompileError) {
        let rc = rule.checks.withUnsafeBufferPointer {
            seccomp_rule_add_array(context, rule.action, rule.syscall, UInt32($0.count), $0.baseAddress)
        }
        guard rc == 0 else {
            throw SeccompCompileError(operation: "seccomp_rule_add", subject: rule.subject, errno: -rc)
        }
    }

    /// Generates the BPF. libseccomp 2.5.4 only writes it to a file descriptor, so it goes
    /// through a memfd and is read back; nothing is loaded into this process.
    func export() throws(SeccompCompileError) -> BPFProgram {
        let fd = try memfd(name: "stockade-seccomp")
        defer { close(fd) }
        let rc = seccomp_export_bpf(context, fd)
        guard rc == 0 else {
            throw SeccompCompileError(operation: "seccomp_export_bpf", subject: subject, errno: -rc)
        }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            throw SeccompCompileError(operation: "fstat", subject: subject, errno: errno)
        }
        let size = Int(status.st_size)
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            while count < size {
                switch systemCall({ pread(fd, buffer.baseAddress! + count, size - count, off_t(count)) }) {
                case .success(0): failure = EIO; return
                case .success(let n): count += n
                case .failure(let error): failure = error.rawValue; return
                }
            }
        }
        guard failure == 0 else {
            throw SeccompCompileError(operation: "pread", subject: subject, errno: failure)
        }
        return BPFProgram(bytes: bytes)
    }

    private func memfd(name: String) throws(SeccompCompileError) -> Int32 {
        // glibc declares memfd_create only under _GNU_SOURCE, which Swift's Glibc module is
        // built without. It is a plain (non-variadic) C function, so calling it through its
        // exact prototype is sound.
        typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>, UInt32) -> Int32
        guard let symbol = dlsym(nil, "memfd_create") else {
            throw SeccompCompileError(operation: "memfd_create", subject: subject, errno: ENOSYS)
        }
        let memfdCreate = unsafeBitCast(symbol, to: MemfdCreate.self)
        let mfdCloexec: UInt32 = 0x0001  // MFD_CLOEXEC, <linux/memfd.h>
        let fd = memfdCreate(name, mfdCloexec)
        guard fd >= 0 else {
            throw SeccompCompileError(operation: "memfd_create", subject: subject, errno: errno)
        }
        return fd
    }
}

/// How a syscall name maps to a number on the native architecture.
enum SyscallNumber: Equatable {
    case number(Int32)
    /// Known, but not a syscall of this architecture (`socketcall` on x86_64).
    case notOnThisArchitecture
    case unknown

    init(name: String) {
        let number = seccomp_syscall_resolve_name(name)
        if number >= 0 {
            self = .number(number)
        } else if number != __NR_SCMP_ERROR {
            // libseccomp's negative "pseudo" numbers stand for other architectures' syscalls.
            self = .notOnThisArchitecture
        } else if let number = Self.newerThanLibseccomp[name] {
            self = .number(number)
        } else {
            self = .unknown
        }
    }

    /// Syscalls newer than libseccomp 2.5.4's table (Debian's knows up to futex_requeue, 456).
    /// Since Linux 5.1 a new syscall has one number on every architecture stockade builds for,
    /// so these can be filtered by number; the baseline needs `open_tree_attr` and `lsm_set_self_attr`.
    static let newerThanLibseccomp: [String: Int32] = {
        #if arch(x86_64) || arch(arm64) || arch(riscv64) || arch(s390x) || arch(powerpc64le)
        return [
            "statmount": 457, "listmount": 458, "lsm_get_self_attr": 459, "lsm_set_self_attr": 460,
            "lsm_list_modules": 461, "mseal": 462, "setxattrat": 463, "getxattrat": 464,
            "listxattrat": 465, "removexattrat": 466, "open_tree_attr": 467, "file_getattr": 468,
            "file_setattr": 469,
        ]
        #else
        return [:]
        #endif
    }()
}

extension scmp_arg_cmp {
    init(_ index: Int, _ op: SeccompSyscall.Operator, _ a: UInt64, _ b: UInt64 = 0) {
        let compare: scmp_compare = switch op {
        case .notEqual: SCMP_CMP_NE
        case .lessThan: SCMP_CMP_LT
        case .lessOrEqual: SCMP_CMP_LE
        case .equal: SCMP_CMP_EQ
        case .greaterOrEqual: SCMP_CMP_GE
        case .greaterThan: SCMP_CMP_GT
        case .maskedEqual: SCMP_CMP_MASKED_EQ
        }
        self.init(arg: UInt32(index), op: compare, datum_a: a, datum_b: b)
    }
}

extension SeccompAction {
    /// The kernel's `SECCOMP_RET_*` value; `errno` is the data for ERRNO and TRACE.
    func returnValue(errno: UInt16?) -> UInt32 {
        let data = UInt32(errno ?? UInt16(EPERM))
        return switch self {
        case .kill, .killThread: SCMP_ACT_KILL_THREAD
        case .killProcess: SCMP_ACT_KILL_PROCESS
        case .trap: SCMP_ACT_TRAP
        case .errno: 0x0005_0000 | data  // SCMP_ACT_ERRNO(x), a macro Swift cannot import
        case .trace: 0x7FF0_0000 | data  // SCMP_ACT_TRACE(x)
        case .allow: SCMP_ACT_ALLOW
        case .log: SCMP_ACT_LOG
        case .notify: SCMP_ACT_NOTIFY
        }
    }
}
