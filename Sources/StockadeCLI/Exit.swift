import ArgumentParser
import Glibc
import Sandbox
import Seccomp
import TerminalText

/// Exit codes of stockade's own failures (sysexits.h where one fits); the
/// command's own status passes through unchanged.
enum ExitStatus {
    static let usage: Int32 = 64
    static let invalidProfile: Int32 = 65
    static let missingPath: Int32 = 66
    static let unavailable: Int32 = 69
    static let system: Int32 = 71
    static let cannotCreate: Int32 = 73
    static let ioError: Int32 = 74
    static let permission: Int32 = 77
    static let timeout: Int32 = 124
    static let setupFailed: Int32 = 125
    static let notExecutable: Int32 = 126
    static let notFound: Int32 = 127

    static func of(_ error: SandboxError) -> Int32 {
        switch error.kind {
        case .userNamespacesUnavailable: unavailable
        case .missingPath: missingPath
        case .invalidPlan: usage
        case .identityMapping: permission
        case .setupFailed: setupFailed
        case .commandNotFound: notFound
        case .commandNotExecutable: notExecutable
        case .system: system
        }
    }
}

/// One line on stderr, never a backtrace. Messages quote what buildpacks and images
/// named (layers, process types), so nothing a terminal would act on passes.
func complain(_ message: String, level: String = "error") {
    let line = Array(TerminalFilter.sanitize(Array("stockade: \(level): \(message)\n".utf8)).utf8)
    _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
}

/// An error already reported on stderr, carrying the exit code to end with.
struct Failure: Error {
    let code: Int32
}

extension Stockade {
    /// Parses, runs and exits: the whole life of the `stockade` process.
    public static func entry() -> Never {
        do {
            let arguments = CommandLine.arguments.dropFirst()
            if let exec = ExecFastPath.parse(arguments) {
                try exec.run()
            } else if let lifecycle = LifecycleFastPath.parse(arguments) {
                try lifecycle.run()
            } else if let user = Janitor.fastPath(arguments) {
                try Janitor.serve(user: user)
            } else {
                var command = try parseAsRoot()
                try command.run()
            }
            Glibc.exit(0)
        } catch let failure as Failure {
            Glibc.exit(failure.code)
        } catch {
            Stockade.exit(withError: error)
        }
    }
}
