import CSeccomp
import Glibc
import SystemPackage

/// A classic BPF program for seccomp(2): `struct sock_filter` records in host byte order,
/// as `seccomp_export_bpf` writes them. Install it with `SECCOMP_SET_MODE_FILTER` and a
/// `struct sock_fprog { len = instructionCount, filter = bytes }`.
public struct BPFProgram: Sendable, Equatable {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    public var instructionCount: Int { bytes.count / MemoryLayout<sock_filter>.size }
}

/// A profile turned into BPF, with what was skipped or ignored on the way.
public struct CompiledProfile: Sendable {
    public let program: BPFProgram
    /// One line each, for example `unknown syscall "foo" in $.syscalls[2].names[1]: skipped`.
    public let warnings: [String]
    /// `SECCOMP_FILTER_FLAG_LOG` and `SECCOMP_FILTER_FLAG_SPEC_ALLOW` as the profile's `flags` ask;
    /// pass them to seccomp(2) when installing `program`.
    public let filterFlags: UInt32
    /// Whether a rule or the default action is `SCMP_ACT_NOTIFY`. Such calls fail with ENOSYS
    /// unless the filter is installed with `SECCOMP_FILTER_FLAG_NEW_LISTENER` and someone answers.
    public let notifies: Bool
}

/// A libseccomp call that failed while building a filter.
public struct SeccompCompileError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The failing call, such as `seccomp_rule_add`.
    public let operation: String
    /// What was being compiled, such as `"socket" (SCMP_ACT_ALLOW) from $.syscalls[4]`.
    public let subject: String
    /// The positive errno (libseccomp returns it negated).
    public let errno: Int32

    public init(operation: String, subject: String, errno: Int32) {
        self.operation = operation
        self.subject = subject
        self.errno = errno
    }

    public var description: String {
        "\(operation) failed for \(subject): \(Errno(rawValue: errno)) (errno \(errno))"
    }
}
