import CSeccomp
import Glibc

/// Compiles profiles to BPF with libseccomp, for the native architecture only.
///
/// A sandbox installs ``hardeningBaseline`` first and the user's profile last. The kernel runs
/// every installed filter and takes the strictest result; between equally strict results (two
/// ERRNOs) the filter installed last wins, so the profile's own errno is the one a process sees.
/// The one errno that matters is clone3's: its flags sit in memory where no filter can look, and
/// libc falls back to `clone` only on ENOSYS. So every compiled profile answers clone3 with
/// ENOSYS, whatever it says, unless it makes clone3 kill or trap.
public enum SeccompCompiler {
    /// Compiles `profile` for this machine: rules whose `includes`/`excludes` rule them out here
    /// are left out, and unknown syscall names are skipped with a warning, as runc does.
    public static func compile(_ profile: SeccompProfile) throws(SeccompCompileError) -> CompiledProfile {
        try compile(profile, on: .current)
    }

    static func compile(_ profile: SeccompProfile, on host: Host) throws(SeccompCompileError) -> CompiledProfile {
        var warnings: [String] = []
        let defaultAction = profile.defaultAction.returnValue(errno: profile.defaultErrnoRet)
        let filter = try LibseccompFilter(defaultAction: defaultAction, subject: "the profile")

        // A profile may answer clone3 more strictly than ENOSYS, never less.
        let fatal: Set<SeccompAction> = [.kill, .killThread, .killProcess, .trap]
        let clone3Actions = profile.syscalls.filter { $0.names.contains("clone3") && host.applies($0) }.map(\.action)
        let clone3IsFatal = clone3Actions.isEmpty
            ? fatal.contains(profile.defaultAction) : clone3Actions.contains(where: fatal.contains)

        for (index, rule) in profile.syscalls.enumerated() where host.applies(rule) {
            let action = rule.action.returnValue(errno: rule.errnoRet)
            // libseccomp refuses rules that repeat the default action; they change nothing.
            if action == defaultAction { continue }
            for (nameIndex, name) in rule.names.enumerated() {
                if name == "clone3" && !fatal.contains(rule.action) { continue }  // ENOSYS below
                switch SyscallNumber(name: name) {
                case .number(let number):
                    for checks in checkGroups(rule.args) {
                        try filter.add(FilterRule(
                            syscall: number, action: action, checks: checks,
                            subject: "\"\(name)\" (\(rule.action.rawValue)) from $.syscalls[\(index)]"))
                    }
                case .notOnThisArchitecture:
                    continue  // profiles list every architecture's names; not worth a warning
                case .unknown:
                    warnings.append("unknown syscall \"\(name)\" in $.syscalls[\(index)].names[\(nameIndex)]: skipped")
                }
            }
        }

        let enosys = SeccompAction.errno.returnValue(errno: UInt16(ENOSYS))
        if !clone3IsFatal && enosys != defaultAction, case .number(let number) = SyscallNumber(name: "clone3") {
            try filter.add(FilterRule(syscall: number, action: enosys,
                                      subject: "\"clone3\" (ENOSYS for every profile)"))
        }

        let listed = profile.architectures + profile.archMap.flatMap { [$0.architecture] + $0.subArchitectures }
        if let native = host.architecture, !listed.isEmpty, !listed.contains(native) {
            warnings.append("architectures does not list the native \(native.rawValue): compiling for it anyway")
        }
        if profile.listenerPath != nil {
            warnings.append("listenerPath is not supported (stockade runs no seccomp agent): ignored")
        }
        var filterFlags: UInt32 = 0
        for flag in profile.flags {
            switch flag {
            case .log: filterFlags |= 1 << 1  // SECCOMP_FILTER_FLAG_LOG
            case .specAllow: filterFlags |= 1 << 2  // SECCOMP_FILTER_FLAG_SPEC_ALLOW
            case .tsync:
                warnings.append("flag \(flag.rawValue) ignored: the sandbox installs filters before any thread exists")
            case .waitKillableRecv:
                warnings.append("flag \(flag.rawValue) ignored: the sandbox chooses the listener's flags")
            }
        }
        let notifies = profile.defaultAction == .notify
            || profile.syscalls.contains { $0.action == .notify && host.applies($0) }
        return CompiledProfile(program: try filter.export(), warnings: warnings,
                               filterFlags: filterFlags, notifies: notifies)
    }

    /// The argument checks of a rule as libseccomp rules: one rule with every check (AND), or,
    /// when an argument index repeats, one rule per check (OR), as runc does.
    static func checkGroups(_ args: [SeccompSyscall.Arg]) -> [[scmp_arg_cmp]] {
        argGroups(args).map { $0.map { scmp_arg_cmp($0.index, $0.op, $0.value, $0.valueTwo) } }
    }

    /// The same grouping on the profile's own values: a call matches when every check of one group holds.
    static func argGroups(_ args: [SeccompSyscall.Arg]) -> [[SeccompSyscall.Arg]] {
        let indexes = args.map(\.index)
        return Set(indexes).count == indexes.count ? [args] : args.map { [$0] }
    }

    /// The machine a profile is compiled for: what `includes` and `excludes` are checked against.
    struct Host {
        /// The native architecture as Docker names it in `includes.arches` (`amd64`, `arm64`).
        var dockerArchitecture: String
        var architecture: SeccompProfile.Architecture?
        var kernel: KernelVersion

        static var current: Host {
            var name = utsname()
            let release = uname(&name) == 0
                ? withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                : ""
            // An unreadable release counts as 0.0: no `includes.minKernel` is met.
            let kernel = KernelVersion(release: release) ?? KernelVersion(major: 0, minor: 0)
            #if arch(x86_64)
            return Host(dockerArchitecture: "amd64", architecture: .x86_64, kernel: kernel)
            #elseif arch(arm64)
            return Host(dockerArchitecture: "arm64", architecture: .aarch64, kernel: kernel)
            #elseif arch(riscv64)
            return Host(dockerArchitecture: "riscv64", architecture: .riscv64, kernel: kernel)
            #elseif arch(s390x)
            return Host(dockerArchitecture: "s390x", architecture: .s390x, kernel: kernel)
            #elseif arch(powerpc64le)
            return Host(dockerArchitecture: "ppc64le", architecture: .ppc64le, kernel: kernel)
            #else
            return Host(dockerArchitecture: "", architecture: nil, kernel: kernel)
            #endif
        }

        func applies(_ rule: SeccompSyscall) -> Bool {
            if !rule.includes.arches.isEmpty && !rule.includes.arches.contains(dockerArchitecture) { return false }
            // The sandbox holds no capabilities: a rule that needs one never applies, and
            // `excludes.caps` never excludes.
            if !rule.includes.caps.isEmpty { return false }
            if let minimum = rule.includes.minKernel, kernel < minimum { return false }
            if rule.excludes.arches.contains(dockerArchitecture) { return false }
            if let minimum = rule.excludes.minKernel, kernel >= minimum { return false }
            return true
        }
    }
}
