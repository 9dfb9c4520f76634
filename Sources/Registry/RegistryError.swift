/// What went wrong talking to a registry, in one line naming the registry and what was asked.
public struct RegistryError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The host name does not resolve.
        case unknownHost
        /// No connection, a reset, a timeout, or 5xx/429 after every retry.
        case unreachable
        /// Certificate verification or the TLS handshake failed.
        case tls
        /// 401/403 with the credentials found (or none).
        case authRefused
        /// The tag, manifest or blob is not in the repository.
        case notFound
        /// Bytes that do not hash to the digest they were asked by or announced with.
        case digestMismatch
        /// A manifest or layer media type Stockade does not read.
        case unsupportedMediaType
        /// A document over its bound: a manifest over 4 MiB, an index over 1,000 entries.
        case tooLarge
        /// An answer that does not follow the distribution spec.
        case protocolViolation
        /// libcurl cannot be loaded.
        case unavailable
        /// A local read or write failed (the blob cache, the disk budget).
        case io
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
