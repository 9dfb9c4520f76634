/// What the kernel does with a syscall, given the filters installed: the action of the
/// strictest `SECCOMP_RET_*` value among them.
public enum SeccompDecision: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// `SECCOMP_RET_ALLOW`: the call runs.
    case allow
    /// `SECCOMP_RET_ERRNO`: the call fails with this errno without running (capped at 4095, as
    /// the kernel does). `errno(0)` makes it return 0 without running.
    case errno(Int32)
    /// `SECCOMP_RET_KILL_PROCESS` or `SECCOMP_RET_KILL_THREAD`, or an action the kernel does
    /// not know (which it treats as a kill).
    case kill
    /// `SECCOMP_RET_TRAP`: SIGSYS is delivered to the caller.
    case trap
    /// `SECCOMP_RET_USER_NOTIF`: the listener of the filter decides; with none the call fails with ENOSYS.
    case notify
    /// `SECCOMP_RET_LOG`: the call runs and the kernel writes an audit record.
    case log
    /// `SECCOMP_RET_TRACE`: a ptrace tracer decides; with none the call fails with ENOSYS.
    case trace

    /// The action of one `SECCOMP_RET_*` value.
    public init(returnValue: UInt32) {
        let data = returnValue & BPF.dataMask
        switch returnValue & BPF.actionMask {
        case BPF.retAllow: self = .allow
        case BPF.retErrno: self = .errno(Int32(min(data, 4095)))
        case BPF.retTrap: self = .trap
        case BPF.retUserNotif: self = .notify
        case BPF.retLog: self = .log
        case BPF.retTrace: self = .trace
        default: self = .kill  // KILL_PROCESS, KILL_THREAD, and anything unknown
        }
    }

    /// The decision of `filters`, given in installation order (the first installed first), on
    /// `data`: each program runs and the strictest action wins, KILL_PROCESS > KILL_THREAD >
    /// TRAP > ERRNO > USER_NOTIF > TRACE > LOG > ALLOW, comparing the action bits only (as
    /// signed 32-bit values, like the kernel's `ACTION_ONLY`). Between equal actions the filter
    /// installed last wins, so its errno is the one returned. No filters allow everything.
    public static func decide(_ data: SeccompData, filters: [BPFProgram]) -> SeccompDecision {
        SeccompDecision(returnValue: returnValue(data, filters: filters))
    }

    /// The `SECCOMP_RET_*` value the kernel acts on for `filters` (in installation order).
    public static func returnValue(_ data: SeccompData, filters: [BPFProgram]) -> UInt32 {
        // seccomp_run_filters walks from the newest filter to the oldest and replaces the
        // result only on a strictly stricter action: the newest wins ties.
        var result = BPF.retAllow
        for program in filters.reversed() {
            let current = program.evaluate(data)
            if actionOnly(current) < actionOnly(result) { result = current }
        }
        return result
    }

    private static func actionOnly(_ value: UInt32) -> Int32 { Int32(bitPattern: value & BPF.actionMask) }

    public var description: String {
        switch self {
        case .allow: "allow"
        case .errno(let code): "errno \(code)"
        case .kill: "kill"
        case .trap: "trap"
        case .notify: "notify"
        case .log: "log"
        case .trace: "trace"
        }
    }
}
