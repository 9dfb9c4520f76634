import Glibc
import SystemCalls

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

/// Incremental SHA-256 through OpenSSL's libcrypto, which uses the CPU's SHA extensions where
/// there are some: hashing a layer while it is written must cost less than writing it.
///
/// libcrypto is loaded on first use, not linked: loading it (and its CPU probing) cost every
/// `stockade exec` a quarter of a millisecond, and only image work hashes.
public final class SHA256 {
    private let context: OpaquePointer

    /// Whether SHA-256 can be computed here: image commands ask first and fail with one line.
    public static func checkAvailable() throws(OCIError) {
        if case .failure(let error) = LibCrypto.loaded {
            throw OCIError(.io, "libcrypto.so.3 (Debian's libssl3) is needed to hash images and cannot be loaded: \(error)")
        }
    }

    public init() {
        let crypto = LibCrypto.shared
        context = crypto.newContext()
        _ = crypto.initialize(context, crypto.sha256(), nil)
    }

    deinit { LibCrypto.shared.freeContext(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        _ = LibCrypto.shared.update(context, base, bytes.count)
    }

    public func finish() -> Digest {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = LibCrypto.shared.final(context, &out, &length)
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in out { hex.append(digits[Int(byte >> 4)]); hex.append(digits[Int(byte & 15)]) }
        return Digest(hex: String(decoding: hex, as: UTF8.self))
    }
}

/// The six EVP functions SHA-256 needs, from libcrypto.so.3 (Debian's libssl3, which every
/// system with OpenSSL 3 has).
struct LibCrypto: @unchecked Sendable {
    typealias NewContext = @convention(c) () -> OpaquePointer
    typealias FreeContext = @convention(c) (OpaquePointer) -> Void
    typealias Algorithm = @convention(c) () -> OpaquePointer
    typealias Initialize = @convention(c) (OpaquePointer, OpaquePointer, OpaquePointer?) -> Int32
    typealias Update = @convention(c) (OpaquePointer, UnsafeRawPointer, Int) -> Int32
    typealias Final = @convention(c) (OpaquePointer, UnsafeMutablePointer<UInt8>, UnsafeMutablePointer<UInt32>) -> Int32

    let newContext: NewContext
    let freeContext: FreeContext
    let sha256: Algorithm
    let initialize: Initialize
    let update: Update
    let final: Final

    /// libcrypto, loaded on first use.
    static let loaded = Result { () throws(LibraryError) in try LibCrypto(SharedLibrary("libcrypto.so.3")) }

    private init(_ library: SharedLibrary) throws(LibraryError) {
        newContext = try library.symbol("EVP_MD_CTX_new")
        freeContext = try library.symbol("EVP_MD_CTX_free")
        sha256 = try library.symbol("EVP_sha256")
        initialize = try library.symbol("EVP_DigestInit_ex")
        update = try library.symbol("EVP_DigestUpdate")
        final = try library.symbol("EVP_DigestFinal_ex")
    }

    /// Callers have passed `SHA256.checkAvailable()`.
    static var shared: LibCrypto { try! loaded.get() }
}
