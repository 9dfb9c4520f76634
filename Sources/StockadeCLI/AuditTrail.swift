import Glibc
import Sandbox

/// The audit log file and the summary on stderr.
enum AuditTrail {
    static func open(_ path: String) throws -> AuditLog {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            complain("cannot open the audit log \(path): \(String(cString: strerror(errno)))")
            throw Failure(code: ExitCode.missingPath)
        }
        return AuditLog(fd: fd)
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
