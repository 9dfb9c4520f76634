import CCrypto
import Glibc

/// A `sha256:<64 hex>` content address. Other algorithms are refused: every blob here is written
/// and checked with SHA-256, and an unknown algorithm could not be verified.
public struct Digest: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let hex: String

    public init?(_ text: String) {
        guard text.hasPrefix("sha256:") else { return nil }
        let hex = text.dropFirst(7)
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else { return nil }
        self.hex = String(hex)
    }

    init(hex: String) { self.hex = hex }

    public var description: String { "sha256:" + hex }
    /// The blob's path inside a layout.
    public var blobPath: String { "blobs/sha256/" + hex }

    public static func < (a: Digest, b: Digest) -> Bool { a.hex < b.hex }

    public static func of(_ bytes: [UInt8]) -> Digest {
        let hasher = SHA256()
        bytes.withUnsafeBytes { hasher.update($0) }
        return hasher.finish()
    }
}

/// Incremental SHA-256 through OpenSSL, which uses the CPU's SHA extensions where there are some:
/// hashing a layer while it is written must cost less than writing it.
public final class SHA256 {
    private let context: OpaquePointer

    public init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    public func finish() -> Digest {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in out { hex.append(digits[Int(byte >> 4)]); hex.append(digits[Int(byte & 15)]) }
        return Digest(hex: String(decoding: hex, as: UTF8.self))
    }
}
