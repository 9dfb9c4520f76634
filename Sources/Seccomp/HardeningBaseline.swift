import CSeccomp
import Glibc

extension SeccompCompiler {
    /// The filter installed under every profile (all but `--profile unconfined`). Its default
    /// is ALLOW, so it only takes away: namespace creation, the mount API, ptrace and other
    /// cross-process access, kernel code loading, keyrings, io_uring, TIOCSTI/TIOCLINUX and
    /// host administration fail with EPERM; `clone3` fails with ENOSYS so libc falls back to
    /// `clone`, whose flags a filter can see. Calls from any architecture but the native one
    /// (i386 `int 0x80`, x32) kill the process, whatever the profile's `architectures` say.
    /// A profile can refuse more, never less.
    ///
    /// Compiled once per process.
    public static var hardeningBaseline: BPFProgram {
        get throws(SeccompCompileError) { try baselineProgram.get() }
    }

    /// The allowlist for the sandbox's own pid 1, which only waits, forwards signals and
    /// writes one status message. Anything else kills it, seccomp(2) included: install it last.
    /// Compiled once per process.
    public static var initFilter: BPFProgram {
        get throws(SeccompCompileError) { try initProgram.get() }
    }

    private static let baselineProgram = Result { () throws(SeccompCompileError) in
        try program(baselineRules, defaultAction: SCMP_ACT_ALLOW, subject: "the hardening baseline")
    }

    private static let initProgram = Result { () throws(SeccompCompileError) in
        let allowed = [
            "wait4", "waitid", "rt_sigtimedwait", "rt_sigprocmask", "rt_sigreturn", "kill", "tgkill",
            "write", "read", "close", "exit", "exit_group", "restart_syscall", "getpid",
            "clock_nanosleep", "nanosleep",
        ]
        return try program(allowed.map { ($0, SCMP_ACT_ALLOW, []) },
                           defaultAction: SCMP_ACT_KILL_PROCESS, subject: "the init filter")
    }

    typealias NamedRule = (syscall: String, action: UInt32, checks: [scmp_arg_cmp])

    static var baselineRules: [NamedRule] {
        let eperm = SeccompAction.errno.returnValue(errno: UInt16(EPERM))
        var rules: [NamedRule] = [("clone3", SeccompAction.errno.returnValue(errno: UInt16(ENOSYS)), [])]

        // CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME: one rule
        // each, since "any of these bits" is an OR of masked compares.
        let namespaceFlags: [UInt64] = [
            0x0002_0000, 0x0200_0000, 0x0400_0000, 0x0800_0000, 0x1000_0000, 0x2000_0000, 0x4000_0000, 0x0000_0080,
        ]
        #if arch(s390x)
        let cloneFlagsIndex = 1  // s390 swaps clone's first two arguments
        #else
        let cloneFlagsIndex = 0
        #endif
        for flag in namespaceFlags {
            rules.append(("clone", eperm, [scmp_arg_cmp(cloneFlagsIndex, .maskedEqual, flag, flag)]))
            rules.append(("unshare", eperm, [scmp_arg_cmp(0, .maskedEqual, flag, flag)]))
        }

        // The kernel reads ioctl's request as 32 bits; comparing only those keeps the high-bit
        // trick of CVE-2019-10063 from slipping past.
        for request in [UInt64(TIOCSTI), UInt64(TIOCLINUX)] {
            rules.append(("ioctl", eperm, [scmp_arg_cmp(1, .maskedEqual, 0xFFFF_FFFF, request)]))
        }

        rules += personalityRules(action: eperm)

        let denied = [
            // Namespaces and the mount API: the sandbox's view of the filesystem is final.
            "setns", "mount", "umount", "umount2", "pivot_root", "move_mount", "open_tree", "open_tree_attr",
            "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
            // Reading or changing other processes.
            "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd", "kcmp",
            // Loading code into the kernel, and kernel-wide observation.
            "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "bpf",
            "perf_event_open", "lookup_dcookie", "fanotify_init", "syslog",
            // Kernel keyrings are not namespaced.
            "keyctl", "add_key", "request_key",
            // Stalls kernel page faults at will: a classic race-widener for exploits.
            "userfaultfd",
            // Bypasses path-based confinement.
            "open_by_handle_at", "name_to_handle_at",
            // io_uring performs syscalls' work without passing through seccomp.
            "io_uring_setup", "io_uring_enter", "io_uring_register",
            // Host administration and clocks.
            "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "iopl", "ioperm", "vhangup",
            "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "lsm_set_self_attr",
            // Obsolete interfaces nothing current needs.
            "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl",
        ]
        rules += denied.map { ($0, eperm, []) }
        return rules
    }

    /// personality(2) is allowed only with Docker's values: 0 (PER_LINUX), 0x8 (PER_LINUX32),
    /// 0x20000 (UNAME26), 0x20008, and the query 0xffffffff. libseccomp cannot AND two checks on
    /// one argument, so "none of these" is written as an OR of single checks:
    /// - anything above 32 bits;
    /// - over the 30 bits other than 0x8 and 0x20000, taken as a cycle, "this bit set and the
    ///   next one clear": every pattern of those bits but all-clear and all-set has such a pair;
    /// - the three all-set values other than the query.
    private static func personalityRules(action: UInt32) -> [NamedRule] {
        var rules: [NamedRule] = [("personality", action, [scmp_arg_cmp(0, .greaterThan, 0xFFFF_FFFF)])]
        let bits = (0..<32).map { UInt64(1) << $0 }.filter { $0 != 0x8 && $0 != 0x2_0000 }
        for (index, bit) in bits.enumerated() {
            let next = bits[(index + 1) % bits.count]
            rules.append(("personality", action, [scmp_arg_cmp(0, .maskedEqual, bit | next, bit)]))
        }
        for value: UInt64 in [0xFFFD_FFF7, 0xFFFD_FFFF, 0xFFFF_FFF7] {
            rules.append(("personality", action, [scmp_arg_cmp(0, .equal, value)]))
        }
        return rules
    }

    /// Builds a fixed filter. A name this libseccomp does not know is an error: a baseline
    /// with a hole must not pass for a whole one.
    private static func program(_ rules: [NamedRule], defaultAction: UInt32,
                                subject: String) throws(SeccompCompileError) -> BPFProgram {
        let filter = try LibseccompFilter(defaultAction: defaultAction, subject: subject)
        for rule in rules {
            let ruleSubject = "\"\(rule.syscall)\" in \(subject)"
            switch SyscallNumber(name: rule.syscall) {
            case .number(let number):
                try filter.add(FilterRule(syscall: number, action: rule.action, checks: rule.checks,
                                          subject: ruleSubject))
            case .notOnThisArchitecture:
                continue
            case .unknown:
                throw SeccompCompileError(operation: "seccomp_syscall_resolve_name", subject: ruleSubject,
                                          errno: ENOSYS)
            }
        }
        return try filter.export()
    }
}
