/// One `x-stockade.audit[]` entry: calls the syscall audit reports even when the profile allows
/// them (`execve`, `connect`, opening a file for writing).
///
/// ```json
/// "x-stockade": {"audit": [
///   {"names": ["openat"], "args": [{"index": 2, "value": 3, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}],
///    "comment": "Opening for writing (O_WRONLY)."}
/// ]}
/// ```
///
/// `args` has the shape and the meaning of `syscalls[].args`: checks on different arguments
/// must all hold; several checks on one argument mean any of them. The checks run in BPF, so
/// a call they do not match costs nothing: only register values can be checked, never memory
/// (a path, a socket address). Docker and runc ignore `x-stockade`.
public struct AuditRule: Sendable, Equatable {
    /// Syscall names. A name this libseccomp does not know is skipped with a warning, as in `syscalls[]`.
    public var names: [String]
    /// Argument checks; none means every call of these syscalls.
    public var args: [SeccompSyscall.Arg]
    public var comment: String?

    public init(names: [String], args: [SeccompSyscall.Arg] = [], comment: String? = nil) {
        self.names = names
        self.args = args
        self.comment = comment
    }
}
