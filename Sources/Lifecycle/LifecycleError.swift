import OCI
import BuildpackSpec

/// Why a phase stopped, with the Platform API's exit code for it.
public struct LifecycleError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public let exitCode: Int32
    /// What ran before the phase stopped, for the report.
    public var runs: [BuildpackRun]

    /// The image error underneath, when an input image or the disk failed rather than a buildpack:
    /// the command line gives it that error's exit code.
    public var cause: OCIError?

    public init(_ message: String, exitCode: Int32, runs: [BuildpackRun] = []) {
        self.message = message
        self.exitCode = exitCode
        self.runs = runs
    }

    public var description: String { message }

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
    }

    /// A spec error as the phase's error: unsupported APIs keep their own code.
    public static func from(_ error: SpecError, phaseCode: Int32, runs: [BuildpackRun] = []) -> LifecycleError {
        let code = error.kind == .unsupportedBuildpackAPI ? Code.unsupportedBuildpackAPI : phaseCode
        return LifecycleError(error.description, exitCode: code, runs: runs)
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
