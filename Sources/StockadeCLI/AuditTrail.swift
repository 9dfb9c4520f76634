import ArgumentParser
import Glibc
import Sandbox
import SystemCalls
import SystemPackage

/// How much one run may write into the audit log.
struct AuditCapOptions: ParsableArguments {
    @Option(help: ArgumentHelp("With --audit: the most this run appends to the log (suffixes K, M, G; default 64M, at least 1K); events beyond it are counted, not written.", valueName: "size"))
    var auditMaxBytes: String?

    @Option(help: ArgumentHelp("With --audit: the most events written per second (default 10000); events beyond it are counted, not written.", valueName: "n"))
    var auditMaxRate: UInt64?

    /// The values parsed, which everything else works on.
    var request: AuditCaps { AuditCaps(auditMaxBytes: auditMaxBytes, auditMaxRate: auditMaxRate) }

    func validate() throws { try request.validate() }
}

/// `AuditCapOptions` as plain values (see `SandboxRequest`).
struct AuditCaps: Equatable {
    var auditMaxBytes: String?
    var auditMaxRate: UInt64?

    func validate() throws { _ = try limits(Configuration()) }

    /// The flags, else the configuration's `[audit]`, else the standard caps.
    func limits(_ configuration: Configuration) throws -> AuditLog.Limits {
        var limits = AuditLog.Limits.standard
        if let bytes = configuration.auditMaxBytes { limits.maxBytes = max(bytes, 2 * AuditLog.Limits.reserved) }
        if let rate = configuration.auditMaxRate { limits.maxEventsPerSecond = rate }
        if let auditMaxBytes {
            limits.maxBytes = try SandboxOptions.byteSize(auditMaxBytes)
            guard limits.maxBytes >= 2 * AuditLog.Limits.reserved else {
                throw ValidationError("--audit-max-bytes must be at least 1K, room for the record of what was dropped.")
            }
        }
        if let auditMaxRate {
            guard auditMaxRate > 0 else { throw ValidationError("--audit-max-rate must be at least 1.") }
            limits.maxEventsPerSecond = auditMaxRate
        }
        return limits
    }
}

/// The audit log file and the summary on stderr.
enum AuditTrail {
    static func open(_ path: String, caps: AuditCaps, configuration: Configuration) throws -> AuditLog {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            complain("cannot open the audit log \(path): \(Errno.current.description)")
            throw Failure(code: ExitStatus.missingPath)
        }
        return AuditLog(fd: fd, limits: try caps.limits(configuration))
    }

    /// Eight hex digits, different for every sandbox of a run.
    static func newSandboxID() -> String {
        let value = UInt32.random(in: 0...UInt32.max)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }

    static func report(_ summary: AuditSummary, prefix: String = "") {
        for line in summary.lines {
            let text = Array("stockade: \(prefix)\(line)\n".utf8)
            _ = text.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        }
    }
}
