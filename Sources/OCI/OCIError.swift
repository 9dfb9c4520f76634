import Glibc
import SystemCalls
import SystemPackage

/// What went wrong with an image, a layout or a layer, in one line, with the errno and path when
/// a system call failed.
public struct OCIError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// A layout, manifest or config that does not follow the image spec.
        case malformed
        /// A blob whose bytes do not hash to its digest, or are not its size.
        case digestMismatch
        /// A tag, blob or path that does not exist.
        case notFound
        /// A directory that exists and holds something other than an OCI layout.
        case notALayout
        /// Content an image cannot carry (a FIFO, a socket, a device, a name that is not UTF-8).
        case unsupportedContent
        /// A system call failed.
        case io
        /// Writing it would exceed the disk budget (`DiskAccount`).
        case overBudget
    }

    public var kind: Kind
    public var message: String
    public var errno: Int32?
    public var path: String?

    public init(_ kind: Kind, _ message: String, path: String? = nil, errno: Int32? = nil) {
        self.kind = kind
        self.message = message
        self.path = path
        self.errno = errno
    }

    public static func system(_ call: String, _ path: String, _ err: Int32 = Glibc.errno) -> OCIError {
        OCIError(err == ENOENT ? .notFound : .io, "\(call) \(path): \(Errno(rawValue: err))", path: path, errno: err)
    }

    /// A failed file operation of the system-call layer.
    public static func system(_ error: FileError) -> OCIError {
        system(error.call, error.path, error.errno.rawValue)
    }

    /// Runs `body` (calls of the system-call layer), naming `call` and `path` when it fails.
    static func attempt<T>(_ call: String, _ path: String, _ body: () throws(Errno) -> T) throws(OCIError) -> T {
        do {
            return try body()
        } catch {
            throw system(call, path, error.rawValue)
        }
    }

    public var description: String { message }
}
