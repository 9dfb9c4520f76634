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

    /// The audit variants of a profile and the filters that decide for them;
    /// `handoff` is the descriptor the listener is handed over on.
    static func auditFilters(named name: String, handoff: Int32) throws -> AuditFilters {
        guard name != "unconfined" else {
            complain("--audit needs a profile: with --profile unconfined nothing is filtered, so nothing can be observed")
            throw Failure(code: ExitStatus.usage)
        }
        let enforcing = try compile(named: name)
        do {
            let source = try ProfileSource.resolve(name)
            let profile = try SeccompProfile.parse(source.bytes, origin: source.origin)
            let audited = try FilterCache.forCurrentUser().map { cache in
                try cache.compiled(kind: "audit", source: source.bytes) { () throws(SeccompCompileError) in
                    try SeccompCompiler.compileAudit(profile)
                }
            } ?? SeccompCompiler.compileAudit(profile)
            let filters = AuditFilters(baseline: try SeccompCompiler.auditBaseline, profile: audited.program,
                                       profileFlags: audited.filterFlags,
                                       enforcing: [try SeccompCompiler.hardeningBaseline, enforcing.program])
            // The sandbox adds the exception with its own message and secret; a profile that
            // refuses the handoff is refused here already, as the profile error it is.
            _ = try SeccompCompiler.allowingHandoff(filters.profile, handoff: ListenerHandoff(
                descriptor: handoff, message: 0, secret: 0), enforcing: filters.enforcing)
            return filters
        } catch {
            complain("\(error)")
            throw Failure(code: ExitStatus.invalidProfile)
        }
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
            throw Failure(code: ProfileSource.isMissingFile(name) ? ExitStatus.missingPath : ExitStatus.invalidProfile)
        }
    }
}
