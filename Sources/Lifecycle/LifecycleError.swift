import OCI
import BuildpackSpec

/// Why a phase stopped, with the Platform API's exit code for it.
public struct LifecycleError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public let exitCode: Int32

    /// The image error underneath, when an input image or the disk failed rather than a buildpack:
    /// the command line gives it that error's exit code.
    public var cause: OCIError?

    public init(_ message: String, exitCode: Int32) {
        self.message = message
        self.exitCode = exitCode
    }

    public var description: String { message }

    /// The status the process ends with: the image error's own when an input image or the disk
    /// failed underneath, else the phase's.
    public var exitStatus: Int32 { cause.map(Self.exitStatus(of:)) ?? exitCode }

    /// The status for an image error that reaches the command line: what was wrong with which input.
    public static func exitStatus(of error: OCIError) -> Int32 {
        switch error.kind {
        case .notFound: Code.missingPath
        case .malformed, .digestMismatch, .unsupportedContent: Code.dataError
        case .notALayout: Code.cannotCreate
        case .io: Code.ioError
        // Where an image error reaches the command line unwrapped, an image was being extracted
        // or copied (run, rebase); the build and export wrap theirs.
        case .overBudget: Code.extractOverBudget
        }
    }

    /// Platform API exit codes (digest §3.4).
    public enum Code {
        public static let invalidArguments: Int32 = 3
        public static let unsupportedBuildpackAPI: Int32 = 12
        public static let detectAllFailed: Int32 = 20
        public static let detectBuildpackError: Int32 = 21
        public static let detectGeneric: Int32 = 22
        public static let buildFailed: Int32 = 51
        public static let buildGeneric: Int32 = 52
        /// Stockade's own: a bin/build stopped by a resource limit (memory, pids).
        public static let buildLimitReached: Int32 = 53
        /// Platform API: analyze 30-39, restore 40-49, export 60-69, rebase 70-79.
        public static let analyzeFailed: Int32 = 32
        public static let restoreFailed: Int32 = 42
        public static let exportFailed: Int32 = 62
        public static let rebaseFailed: Int32 = 72
        /// The disk budget (`--disk`) stopped a buildpack, an export, an image's extraction.
        public static let buildOverBudget: Int32 = 52
        public static let exportOverBudget: Int32 = 63
        public static let extractOverBudget: Int32 = 79
        /// The platform's own failures, from sysexits.h: a bad argument, a missing input, the
        /// input's content, an output that cannot be made, an I/O or system error.
        public static let usage: Int32 = 64
        public static let dataError: Int32 = 65
        public static let missingPath: Int32 = 66
        public static let system: Int32 = 71
        public static let cannotCreate: Int32 = 73
        public static let ioError: Int32 = 74
    }

    /// A spec error as the phase's error: unsupported APIs keep their own code.
    public static func from(_ error: SpecError, phaseCode: Int32) -> LifecycleError {
        let code = error.kind == .unsupportedBuildpackAPI ? Code.unsupportedBuildpackAPI : phaseCode
        return LifecycleError(error.description, exitCode: code)
    }
}

/// One buildpack process of one phase, for the terminal summary and the report.
public struct BuildpackRun: Sendable, Equatable {
    public enum Outcome: String, Sendable {
        case pass, fail, skip, error, timeout
    }

    public var phase: Invocation.Phase
    public var id: String
    public var version: String
    public var outcome: Outcome
    public var exitCode: Int32?
    public var message: String?
    public var wallMicroseconds: Int64
    public var cpuMicroseconds: Int64
    public var maxResidentKiB: Int64
    public var audit: AuditCounts? = nil

    public var buildpack: String { "\(id)@\(version)" }
}

/// Lines for a person, as the phases go.
public protocol ProgressReporter: Sendable {
    func line(_ text: String)
}
