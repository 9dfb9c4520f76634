import CSeccomp
import Glibc

/// The one call with which an audited sandbox hands its seccomp listener to the supervisor,
/// after the listener's filter is installed and before `execve`:
/// `sendmsg(descriptor, message, MSG_NOSIGNAL)`, with `secret` in the upper halves of the
/// descriptor and flags registers. The kernel reads both as 32-bit ints and never sees the
/// secret; a filter sees the whole registers. The supervisor draws the secret for each sandbox
/// and `message` is a buffer it allocated before the clone, so both are known when the filter is
/// built, and the command, whose `execve` replaces the memory that held them, cannot repeat the
/// call: see ``SeccompCompiler/allowingHandoff(_:handoff:enforcing:)``.
public struct ListenerHandoff: Sendable, Equatable {
    public var descriptor: Int32
    /// The address of the `struct msghdr` the call passes.
    public var message: UInt64
    public var secret: UInt64

    public static let flags: UInt32 = 0x4000  // MSG_NOSIGNAL

    public init(descriptor: Int32, message: UInt64, secret: UInt64) {
        self.descriptor = descriptor
        self.message = message
        self.secret = secret
    }

    /// The call's registers as a filter sees them.
    public var call: SeccompData {
        SeccompData(nr: Int32(__NR_sendmsg), args: [
            UInt64(UInt32(bitPattern: descriptor)) | secret & 0xFFFF_FFFF_0000_0000,
            message,
            UInt64(Self.flags) | secret << 32,
        ])
    }
}
