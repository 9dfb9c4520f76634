import Glibc
import Sandbox
import Seccomp

/// `--profile NAME|FILE` → a compiled filter, with warnings and errors on stderr.
enum ProfileSelection {
    static let sizeLimit = 1 << 20

    static func filter(named name: String) throws -> SyscallFilter {
        if name == "unconfined" {
            complain("--profile unconfined: no seccomp filter at all, not even the hardening baseline; the command may use every syscall a user namespace allows", level: "warning")
            return .unconfined
        }
        let compiled = try compile(named: name)
        return .profile(compiled.program, flags: compiled.filterFlags)
    }

    /// A built-in profile or a JSON file, compiled; warnings go to stderr.
    static func compile(named name: String) throws -> CompiledProfile {
        let profile: SeccompProfile
        if let builtin = SeccompProfile.builtin(name) {
            profile = builtin
        } else {
            guard name.contains("/") || name.hasSuffix(".json") else {
                complain("unknown profile \(name): use default, strict, unconfined or a path to an OCI seccomp JSON file")
                throw Failure(code: ExitCode.missingPath)
            }
            let fd = open(name, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                complain("cannot open profile \(name): \(String(cString: strerror(errno)))")
                throw Failure(code: ExitCode.missingPath)
            }
            defer { close(fd) }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                bytes += chunk[0..<n]
                if bytes.count > sizeLimit {
                    complain("profile \(name) is larger than 1 MiB")
                    throw Failure(code: ExitCode.invalidProfile)
                }
            }
            do {
                profile = try SeccompProfile.parse(bytes, origin: name)
            } catch {
                complain("\(error)")
                throw Failure(code: ExitCode.invalidProfile)
            }
        }
        do {
            let compiled = try SeccompCompiler.compile(profile)
            for warning in compiled.warnings { complain(warning, level: "warning") }
            return compiled
        } catch {
            complain("profile \(name): \(error)")
            throw Failure(code: ExitCode.invalidProfile)
        }
    }
}
