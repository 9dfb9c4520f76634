import CSeccomp
import Glibc

/// The syscall audit's filters. The audit never changes what is allowed: every call either
/// filter would refuse, and every call `x-stockade.audit` observes, becomes a user
/// notification, and the supervisor answers it with the decision of the original filters
/// (``SeccompDecision/decide(_:filters:)`` on ``hardeningBaseline`` and the profile's
/// ``compile(_:)`` program). Kills and traps stay in BPF.
///
/// Audit mode installs ``auditBaseline`` and then ``compileAudit(_:)``'s program, the latter with
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` and behind ``allowingHandoff(_:handoff:enforcing:)``. Learn
/// mode installs ``auditBaseline`` and then ``learnFilter`` the same way, and decides with
/// ``hardeningBaseline`` alone.
extension SeccompCompiler {
    /// The profile's audit variant, to be installed last, with the listener, after
    /// ``auditBaseline``. It is three programs run one after the other, each deciding unless
    /// it allows:
    /// 1. the profile, with every ERRNO, TRACE, LOG and USER_NOTIF result (the default action
    ///    included) turned into USER_NOTIF; ALLOW, KILL and TRAP kept;
    /// 2. ``auditBaseline``, so that wherever the baseline notifies, this filter does too: the
    ///    kernel hands a notification to the newest filter with the winning action, and a
    ///    notification reaching the listener-less baseline would fail with ENOSYS;
    /// 3. the profile's `x-stockade.audit` rules: USER_NOTIF where they match, ALLOW elsewhere.
    ///
    /// So a call runs without notification exactly when the profile and the baseline both
    /// allow it and no audit rule matches; a call the original filters kill or trap is still
    /// killed or trapped in BPF. The result keeps `compile(_:)`'s warnings (and adds unknown
    /// names in audit rules) and `filterFlags`; add `SECCOMP_FILTER_FLAG_NEW_LISTENER` to them.
    public static func compileAudit(_ profile: SeccompProfile) throws(SeccompCompileError) -> CompiledProfile {
        try compileAudit(profile, on: .current)
    }

    static func compileAudit(_ profile: SeccompProfile, on host: Host) throws(SeccompCompileError) -> CompiledProfile {
        let original = try compile(profile, on: host)
        var warnings = original.warnings
        var stages = [
            try notifyingInsteadOfRefusing(original.program, subject: "the profile"),
            BPFInstruction.decode(try auditBaseline),
        ]
        if let observed = try observedProgram(profile.auditRules, warnings: &warnings) {
            stages.append(BPFInstruction.decode(observed))
        }
        let program = try chained(stages, subject: "the profile's audit variant")
        return CompiledProfile(program: program, warnings: warnings, filterFlags: original.filterFlags, notifies: true)
    }

    /// ``hardeningBaseline`` with every result but ALLOW, KILL and TRAP turned into
    /// USER_NOTIF: its EPERMs and clone3's ENOSYS are notified, a foreign architecture is still
    /// killed. Installed first, without a listener, in audit and learn mode. Compiled once per process.
    public static var auditBaseline: BPFProgram {
        get throws(SeccompCompileError) { try auditBaselineProgram.get() }
    }

    /// Learn mode's filter, installed last with the listener after ``auditBaseline``: every
    /// native call is notified (which covers every call the baseline notifies), a foreign
    /// architecture is killed. Compiled once per process.
    public static var learnFilter: BPFProgram {
        get throws(SeccompCompileError) { try learnProgram.get() }
    }

    /// `program` (the listener's filter, ``compileAudit(_:)``'s or ``learnFilter``) behind a
    /// check that allows `handoff`'s call outright, and nothing else. Once the listener filter
    /// is installed every call may wait for a supervisor that does not have the listener yet,
    /// so the call that gives it over must not. The check compares every register of that call,
    /// the secret in the upper halves included, so the command, which never learns the secret,
    /// cannot make the same call after `execve`: a sendmsg of its own on that descriptor, with
    /// other flags or another message, goes through `program` like any other call. Throws (EPERM)
    /// if `enforcing`, the filters that decide, would refuse the call itself, since the exception
    /// would then let through what they deny.
    public static func allowingHandoff(_ program: BPFProgram, handoff: ListenerHandoff,
                                       enforcing: [BPFProgram]) throws(SeccompCompileError) -> BPFProgram {
        let call = handoff.call
        let decision = SeccompDecision.decide(call, filters: enforcing)
        guard decision == .allow || decision == .log else {
            throw SeccompCompileError(
                operation: "allowing the audit's listener handoff",
                subject: "the profile, which answers sendmsg(\(handoff.descriptor), ..., MSG_NOSIGNAL) with "
                    + "\(decision) (the sandbox hands the listener to the supervisor with that call)",
                errno: EPERM)
        }
        var checks: [(offset: UInt32, value: UInt32)] = [(4, SeccompData.nativeAuditArch), (0, UInt32(call.nr))]
        for index in 0..<3 {
            checks.append((SeccompData.argumentOffset(index), UInt32(truncatingIfNeeded: call.args[index])))
            checks.append((SeccompData.argumentHighOffset(index), UInt32(truncatingIfNeeded: call.args[index] >> 32)))
        }
        // Each check loads a word and jumps past the final ALLOW, to `program`, on a mismatch.
        let length = 2 * checks.count + 1
        var instructions: [BPFInstruction] = []
        for check in checks {
            instructions.append(BPFInstruction(code: BPF.ldWAbs, jt: 0, jf: 0, k: check.offset))
            instructions.append(BPFInstruction(code: BPF.jeq, jt: 0, jf: UInt8(length - instructions.count - 1),
                                               k: check.value))
        }
        instructions.append(BPFInstruction(code: BPF.retK, jt: 0, jf: 0, k: BPF.retAllow))
        instructions += BPFInstruction.decode(program)
        guard instructions.count <= BPF.maxInstructions else {
            throw SeccompCompileError(operation: "allowing the audit's listener handoff",
                                      subject: "a filter of \(instructions.count) instructions", errno: E2BIG)
        }
        return BPFInstruction.encode(instructions)
    }

    private static let auditBaselineProgram = Result { () throws(SeccompCompileError) in
        BPFInstruction.encode(try notifyingInsteadOfRefusing(try hardeningBaseline, subject: "the hardening baseline"))
    }

    private static let learnProgram = Result { () throws(SeccompCompileError) in
        try LibseccompFilter(defaultAction: SCMP_ACT_NOTIFY, subject: "the learning filter").export()
    }

    /// `program` with each ERRNO, TRACE, LOG or USER_NOTIF return turned into USER_NOTIF.
    /// Only the returns change, so the program decides exactly where it did before.
    static func notifyingInsteadOfRefusing(_ program: BPFProgram,
                                           subject: String) throws(SeccompCompileError) -> [BPFInstruction] {
        var instructions = BPFInstruction.decode(program)
        for index in instructions.indices {
            switch instructions[index].code {
            case BPF.retK:
                switch instructions[index].k & BPF.actionMask {
                case BPF.retErrno, BPF.retTrace, BPF.retLog, BPF.retUserNotif:
                    instructions[index].k = BPF.retUserNotif
                default:
                    break  // ALLOW, KILL, TRAP (and unknown actions, which kill)
                }
            case BPF.retA:
                // libseccomp never returns A; a result computed at run time cannot be rewritten.
                throw SeccompCompileError(operation: "rewriting returns for the audit",
                                          subject: "\(subject) (instruction \(index) returns A)", errno: EINVAL)
            default:
                continue
            }
        }
        return instructions
    }

    /// One program running `stages` in turn: every ALLOW return of a stage but the last becomes
    /// a jump to the first instruction of the next, so a later stage decides only what the
    /// earlier ones allow. Stages are whole libseccomp programs: they load what they need from
    /// `seccomp_data` themselves, and their jumps are relative.
    static func chained(_ stages: [[BPFInstruction]], subject: String) throws(SeccompCompileError) -> BPFProgram {
        var result: [BPFInstruction] = []
        for (number, stage) in stages.enumerated() {
            let next = result.count + stage.count
            let isLast = number == stages.count - 1
            for instruction in stage {
                if !isLast && instruction.code == BPF.retK && instruction.k & BPF.actionMask == BPF.retAllow {
                    result.append(BPFInstruction(code: BPF.ja, jt: 0, jf: 0, k: UInt32(next - result.count - 1)))
                } else {
                    result.append(instruction)
                }
            }
        }
        guard result.count <= BPF.maxInstructions else {
            throw SeccompCompileError(
                operation: "joining the audit filter",
                subject: "\(subject) (\(result.count) instructions; seccomp(2) takes at most \(BPF.maxInstructions))",
                errno: E2BIG)
        }
        return BPFInstruction.encode(result)
    }

    /// The `x-stockade.audit` rules as a filter of their own: USER_NOTIF where one matches,
    /// ALLOW elsewhere; nil when there is none. A syscall observed without conditions loses its
    /// conditional rules (they add nothing, and libseccomp keeps one or the other).
    static func observedProgram(_ rules: [AuditRule],
                                warnings: inout [String]) throws(SeccompCompileError) -> BPFProgram? {
        var unconditional: [Int32] = []
        var conditional: [(syscall: Int32, group: [SeccompSyscall.Arg], subject: String)] = []
        for (index, rule) in rules.enumerated() {
            let path = #"$["x-stockade"].audit["# + String(index) + "]"
            for (nameIndex, name) in rule.names.enumerated() {
                switch SyscallNumber(name: name) {
                case .number(let number):
                    if rule.args.isEmpty {
                        if !unconditional.contains(number) { unconditional.append(number) }
                    } else {
                        for group in argGroups(rule.args) {
                            conditional.append((number, group, "\"\(name)\" (audit) from \(path)"))
                        }
                    }
                case .notOnThisArchitecture:
                    continue
                case .unknown:
                    warnings.append("unknown syscall \"\(name)\" in \(path).names[\(nameIndex)]: skipped")
                }
            }
        }
        guard !unconditional.isEmpty || !conditional.isEmpty else { return nil }

        let filter = try LibseccompFilter(defaultAction: SCMP_ACT_ALLOW, subject: "the audit rules")
        for number in unconditional {
            try filter.add(FilterRule(syscall: number, action: SCMP_ACT_NOTIFY,
                                      subject: "\"\(syscallName(number) ?? String(number))\" (audit)"))
        }
        var added: [(Int32, [SeccompSyscall.Arg])] = []
        for rule in conditional where !unconditional.contains(rule.syscall) {
            guard !added.contains(where: { $0.0 == rule.syscall && $0.1 == rule.group }) else { continue }
            added.append((rule.syscall, rule.group))
            try filter.add(FilterRule(
                syscall: rule.syscall, action: SCMP_ACT_NOTIFY,
                checks: rule.group.map { scmp_arg_cmp($0.index, $0.op, $0.value, $0.valueTwo) },
                subject: rule.subject))
        }
        return try filter.export()
    }
}
