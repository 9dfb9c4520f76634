import Glibc
import Sandbox
import Seccomp

/// `--profile NAME|FILE` → a compiled filter, with warnings and errors on stderr.
enum ProfileSelection {
    static func filter(named name: String) throws -> SyscallFilter {
        if name == "unconfined" {
            complain("--profile unconfined: no seccomp filter at all, not even the hardening baseline; the command may use every syscall a user namespace allows", level: "warning")
            return .unconfined
        }
        let compiled = try compile(named: name)
        return .profile(compiled.program, flags: compiled.filterFlags)
    }

    /// A built-in profile or a JSON file, compiled (or from the filter cache);
    /// warnings go to stderr.
    static func compile(named name: String) throws -> CompiledProfile {
        do {
            let source = try ProfileSource.resolve(name)
            let compiled = try SeccompCompiler.compile(source, cache: FilterCache.forCurrentUser())
            for warning in compiled.warnings { complain("\(source.origin): \(warning)", level: "warning") }
            return compiled
        } catch {
            complain("\(error)")
            throw Failure(code: ProfileSource.isMissingFile(name) ? ExitCode.missingPath : ExitCode.invalidProfile)
        }
    }
}
