import CSeccomp
import Glibc

/// The syscall audit's filters. The audit never changes what is allowed: every call either
/// filter would refuse, and every call `x-stockade.audit` observes, becomes a user
/// notification, and the supervisor answers it with the decision of the original filters
/// (``SeccompDecision/decide(_:filters:)`` on ``hardeningBaseline`` and the profile's
/// ``compile(_:)`` program). Kills and traps stay in BPF.
///
/// Audit mode installs ``auditBaseline`` and then ``compileAudit(_:handoffDescriptor:)``'s
/// program, the latter with `SECCOMP_FILTER_FLAG_NEW_LISTENER`. Learn mode installs
/// ``auditBaseline`` and then ``learnFilter(handoffDescriptor:)`` with the listener, and decides
/// with ``hardeningBaseline`` alone.
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
    ///
    /// `handoffDescriptor`: see ``learnFilter(handoffDescriptor:)``. `sendmsg` on that
    /// descriptor is allowed outright, before any of the three, so that the sandbox can hand
    /// the listener over; this throws (EPERM) if the original filters would refuse that call,
    /// since the exception would then let through what they deny.
    public static func compileAudit(_ profile: SeccompProfile,
                                    handoffDescriptor: Int32? = nil) throws(SeccompCompileError) -> CompiledProfile {
        try compileAudit(profile, handoffDescriptor: handoffDescriptor, on: .current)
    }

    static func compileAudit(_ profile: SeccompProfile, handoffDescriptor: Int32? = nil,
                             on host: Host) throws(SeccompCompileError) -> CompiledProfile {
        let original = try compile(profile, on: host)
        var warnings = original.warnings
        var stages = [
            try notifyingInsteadOfRefusing(original.program, subject: "the profile"),
            BPFInstruction.decode(try auditBaseline),
        ]
        if let observed = try observedProgram(profile.auditRules, warnings: &warnings) {
            stages.append(BPFInstruction.decode(observed))
        }
        var program = try chained(stages, subject: "the profile's audit variant")
        if let handoffDescriptor {
            let descriptor = UInt64(UInt32(bitPattern: handoffDescriptor))
            let handoff = SeccompData(nr: Int32(__NR_sendmsg), args: [descriptor, 0, 0x4000])  // MSG_NOSIGNAL
            let decision = SeccompDecision.decide(handoff, filters: [try hardeningBaseline, original.program])
            guard decision == .allow || decision == .log else {
                throw SeccompCompileError(
                    operation: "allowing the audit's listener handoff",
                    subject: "the profile, which answers sendmsg(\(handoffDescriptor), ..., MSG_NOSIGNAL) with "
                        + "\(decision) (the sandbox hands the listener to the supervisor with that call)",
                    errno: EPERM)
            }
            program = try withHandoffAllowed(program, handoffDescriptor: handoffDescriptor)
        }
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

    /// ``learnFilter`` that lets the sandbox hand its listener over: `sendmsg` on
    /// `handoffDescriptor` (compared on its low 32 bits, the `int` the kernel reads) is allowed
    /// outright. Once the listener filter is installed, every call waits for a supervisor that
    /// does not yet have the listener, so the call that gives it the listener must not. Every
    /// call after that one may be notified: the supervisor has the listener by then, or will.
    /// The hardening baseline allows sendmsg, so this allows nothing that learn mode's
    /// enforcement would refuse.
    public static func learnFilter(handoffDescriptor: Int32) throws(SeccompCompileError) -> BPFProgram {
        try withHandoffAllowed(try learnFilter, handoffDescriptor: handoffDescriptor)
    }

    /// `program` behind a check that allows `sendmsg(handoffDescriptor, ...)` outright.
    static func withHandoffAllowed(_ program: BPFProgram,
                                   handoffDescriptor: Int32) throws(SeccompCompileError) -> BPFProgram {
        let instructions = [
            BPFInstruction(code: BPF.ldWAbs, jt: 0, jf: 0, k: 4),  // arch
            BPFInstruction(code: BPF.jeq, jt: 0, jf: 5, k: SeccompData.nativeAuditArch),
            BPFInstruction(code: BPF.ldWAbs, jt: 0, jf: 0, k: 0),  // nr
            BPFInstruction(code: BPF.jeq, jt: 0, jf: 3, k: UInt32(__NR_sendmsg)),
            BPFInstruction(code: BPF.ldWAbs, jt: 0, jf: 0, k: SeccompData.argumentOffset(0)),  // its low half
            BPFInstruction(code: BPF.jeq, jt: 0, jf: 1, k: UInt32(bitPattern: handoffDescriptor)),
            BPFInstruction(code: BPF.retK, jt: 0, jf: 0, k: BPF.retAllow),
        ] + BPFInstruction.decode(program)
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
