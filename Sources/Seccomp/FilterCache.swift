import CSeccomp
import Glibc
import SystemCalls
import SystemPackage

/// Compiled filters kept on disk, so a sandbox does not pay for parsing and
/// libseccomp's compilation (over a millisecond for the default profile) on
/// every start.
///
/// An entry stores its whole key (the profile's exact bytes, what produced the
/// BPF: this executable, libseccomp's version, the kernel and architecture)
/// and is used only when the key matches byte for byte, so neither a hash
/// collision nor a rebuilt stockade can hand back another profile's filter.
/// Entries are trusted only in a directory and files owned by the current
/// user and writable by nobody else; anything else is a miss, never an error.
public struct FilterCache: Sendable {
    public let directory: String
    static let magic = Array("stockade-bpf-cache-1\n".utf8)
    static let entryLimit = 4 << 20

    public init(directory: String) {
        self.directory = directory
    }

    /// `$XDG_CACHE_HOME/stockade/seccomp`, else `$HOME/.cache/stockade/seccomp`.
    public static func forCurrentUser() -> FilterCache? {
        if let xdg = getenv("XDG_CACHE_HOME"), xdg.pointee == 0x2F /* "/" */ {
            return FilterCache(directory: String(cString: xdg) + "/stockade/seccomp")
        }
        guard let home = getenv("HOME"), home.pointee == 0x2F else { return nil }
        return FilterCache(directory: String(cString: home) + "/.cache/stockade/seccomp")
    }

    /// The compiled filter for `source`, from the cache or from `compile`,
    /// which then fills the cache.
    public func compiled<E: Error>(kind: String, source: [UInt8],
                                   compile: () throws(E) -> CompiledProfile) throws(E) -> CompiledProfile {
        let key = Self.key(kind: kind, source: source)
        let path = directory + "/" + Self.fileName(key)
        if let hit = load(path, key: key) { return hit }
        let compiled = try compile()
        store(compiled, key: key, at: path)
        return compiled
    }

    // MARK: - key

    /// Everything the BPF depends on besides the source.
    static let environment: [UInt8] = {
        var text = "libseccomp "
        if let v = seccomp_version() { text += "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.micro)" }
        var names = utsname()
        if uname(&names) == 0 {
            text += " " + field(&names.machine) + " " + field(&names.release)
        }
        var st = stat()
        if stat("/proc/self/exe", &st) == 0 {
            text += " exe \(st.st_dev):\(st.st_ino):\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
        }
        return Array(text.utf8)
    }()

    private static func field<T>(_ tuple: inout T) -> String {
        withUnsafeBytes(of: &tuple) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    static func key(kind: String, source: [UInt8]) -> [UInt8] {
        environment + [0] + Array(kind.utf8) + [0] + source
    }

    /// FNV-1a names the file; the stored key decides whether it matches.
    static func fileName(_ key: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex + ".bpf"
    }

    // MARK: - entries
    // magic, key length, key, flags, notifies, warning count, each warning
    // (length, bytes), program length, program; integers are UInt32 little-endian.

    func load(_ path: String, key: [UInt8]) -> CompiledProfile? {
        guard Self.isPrivate(directory, directory: true) else { return nil }
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_uid == geteuid(),
              st.st_mode & 0o022 == 0, st.st_size <= Self.entryLimit else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var total = 0
        while total < bytes.count {
            let n = bytes.withUnsafeMutableBytes { buffer in systemCall { read(fd, buffer.baseAddress! + total, buffer.count - total) } }
            guard case .success(let count) = n, count > 0 else { return nil }
            total += count
        }
        var reader = EntryReader(bytes: bytes)
        guard reader.take(Self.magic.count) == Self.magic,
              let keyLength = reader.u32(), reader.take(Int(keyLength)) == key,
              let flags = reader.u32(), let notifies = reader.u32(), let warningCount = reader.u32() else { return nil }
        var warnings: [String] = []
        for _ in 0..<warningCount {
            guard let length = reader.u32(), let text = reader.take(Int(length)) else { return nil }
            warnings.append(String(decoding: text, as: UTF8.self))
        }
        guard let programLength = reader.u32(), let program = reader.take(Int(programLength)), reader.atEnd,
              program.count % MemoryLayout<sock_filter>.size == 0, !program.isEmpty else { return nil }
        return CompiledProfile(program: BPFProgram(bytes: program), warnings: warnings,
                               filterFlags: flags, notifies: notifies != 0)
    }

    /// Best effort: a cache that cannot be written is only slower.
    func store(_ compiled: CompiledProfile, key: [UInt8], at path: String) {
        guard makePrivateDirectory() else { return }
        var entry = Self.magic
        func u32(_ value: Int) { withUnsafeBytes(of: UInt32(value).littleEndian) { entry += $0 } }
        u32(key.count)
        entry += key
        u32(Int(compiled.filterFlags))
        u32(compiled.notifies ? 1 : 0)
        u32(compiled.warnings.count)
        for warning in compiled.warnings {
            let text = Array(warning.utf8)
            u32(text.count)
            entry += text
        }
        u32(compiled.program.bytes.count)
        entry += compiled.program.bytes
        guard entry.count <= Self.entryLimit else { return }

        let temporary = path + ".\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let written: Bool
        do {
            try FileDescriptor(rawValue: fd).writeAll(entry)
            written = true
        } catch {
            written = false
        }
        close(fd)
        if !written || rename(temporary, path) != 0 { unlink(temporary) }
    }

    private func makePrivateDirectory() -> Bool {
        if Self.isPrivate(directory, directory: true) { return true }
        var path = ""
        for component in directory.split(separator: "/") {
            path += "/" + component
            if mkdir(path, 0o700) != 0 && errno != EEXIST { return false }
        }
        return Self.isPrivate(directory, directory: true)
    }

    /// Owned by us, not a symlink, writable by no one else.
    static func isPrivate(_ path: String, directory: Bool) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0 else { return false }
        return st.st_mode & S_IFMT == (directory ? S_IFDIR : S_IFREG) && st.st_uid == geteuid() && st.st_mode & 0o022 == 0
    }
}

private struct EntryReader {
    let bytes: [UInt8]
    var offset = 0

    var atEnd: Bool { offset == bytes.count }

    mutating func take(_ count: Int) -> [UInt8]? {
        guard count >= 0, count <= bytes.count - offset else { return nil }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func u32() -> UInt32? {
        guard let raw = take(4) else { return nil }
        return UInt32(raw[0]) | UInt32(raw[1]) << 8 | UInt32(raw[2]) << 16 | UInt32(raw[3]) << 24
    }
}

/// Why a profile could not become a filter.
public enum ProfileLoadError: Error, CustomStringConvertible, Sendable {
    case invalid(SeccompProfileError)
    case compile(SeccompCompileError)

    public var description: String {
        switch self {
        case .invalid(let error): error.description
        case .compile(let error): error.description
        }
    }
}

extension SeccompCompiler {
    /// Parses and compiles `source`, or takes the filter from `cache` when the
    /// same bytes were compiled before by this stockade, libseccomp and kernel.
    public static func compile(_ source: ProfileSource, cache: FilterCache?) throws(ProfileLoadError) -> CompiledProfile {
        func build() throws(ProfileLoadError) -> CompiledProfile {
            let profile: SeccompProfile
            do { profile = try SeccompProfile.parse(source.bytes, origin: source.origin) } catch { throw .invalid(error) }
            do { return try compile(profile) } catch { throw .compile(error) }
        }
        guard let cache else { return try build() }
        return try cache.compiled(kind: "profile", source: source.bytes, compile: build)
    }

    /// ``hardeningBaseline``, through `cache`.
    public static func hardeningBaseline(cache: FilterCache?) throws(SeccompCompileError) -> BPFProgram {
        guard let cache else { return try hardeningBaseline }
        return try cache.compiled(kind: "baseline", source: []) { () throws(SeccompCompileError) in
            CompiledProfile(program: try hardeningBaseline, warnings: [], filterFlags: 0, notifies: false)
        }.program
    }

    /// ``initFilter``, through `cache`.
    public static func initFilter(cache: FilterCache?) throws(SeccompCompileError) -> BPFProgram {
        guard let cache else { return try initFilter }
        return try cache.compiled(kind: "init", source: []) { () throws(SeccompCompileError) in
            CompiledProfile(program: try initFilter, warnings: [], filterFlags: 0, notifies: false)
        }.program
    }
}
