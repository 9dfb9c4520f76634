/// A failure to set up or supervise a sandbox, as one sentence a person can
/// act on, with the errno behind it.
public struct SandboxError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The kernel refused to create a user namespace.
        case userNamespacesUnavailable
        /// A rootfs, bind source or working directory does not exist.
        case missingPath
        /// The plan contradicts itself (a relative destination, an empty command...).
        case invalidPlan
        /// uid/gid maps could not be written (newuidmap failed, id out of range).
        case identityMapping
        /// A step of the sandbox's setup failed inside the child.
        case setupFailed
        /// The command does not exist inside the sandbox (shell convention: 127).
        case commandNotFound
        /// The command exists but cannot be executed (126).
        case commandNotExecutable
        /// A system call of the supervisor itself failed.
        case system
    }

    public let kind: Kind
    public let message: String
    public let errno: Int32?

    public init(_ kind: Kind, _ message: String, errno: Int32? = nil) {
        self.kind = kind
        self.message = message
        self.errno = errno
    }

    public var description: String {
        guard let errno else { return message }
        return "\(message): \(ErrorNumber.describe(errno))"
    }
}
