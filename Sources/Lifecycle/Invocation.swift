import SystemCalls

/// One run of a buildpack executable as the lifecycle wants it: what it sees
/// where, with which environment, under which confinement. How that is
/// enforced is the executor's business; the lifecycle knows no namespaces.
public struct Invocation: Sendable, Equatable {
    public enum Phase: String, Sendable, Equatable {
        case detect
        case build
    }

    /// A host directory or file made visible to the buildpack at `path`.
    public struct View: Sendable, Equatable {
        public var hostPath: String
        public var path: String
        public var writable: Bool

        public init(hostPath: String, path: String, writable: Bool) {
            self.hostPath = hostPath
            self.path = path
            self.writable = writable
        }
    }

    public enum Output: Sendable, Equatable {
        /// Keep stdout and stderr, interleaved, up to `limit` bytes (for detect).
        case capture(limit: Int)
        /// Pass every line to the user as it comes, after `prefix` (for build).
        case stream(prefix: String)
    }

    public var phase: Phase
    /// `id@version`, for messages.
    public var buildpack: String
    /// The executable's path as the buildpack sees it.
    public var executable: String
    public var arguments: [String]
    /// KEY=VALUE, exactly the buildpack's environment.
    public var environment: [String]
    public var workingDirectory: String
    /// Applied in order; a view beneath another comes after it.
    public var views: [View]
    /// Private, empty, writable directories (for example the tree that holds
    /// the layers views).
    public var scratch: [String]
    public var network: Bool
    public var timeoutSeconds: Double?
    public var output: Output
    /// What the process may add to the host's disk.
    public var disk: DiskGuard?

    public init(phase: Phase, buildpack: String, executable: String, arguments: [String], environment: [String],
                workingDirectory: String, views: [View], scratch: [String] = [], network: Bool,
                timeoutSeconds: Double?, output: Output, disk: DiskGuard? = nil) {
        self.phase = phase
        self.buildpack = buildpack
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.views = views
        self.scratch = scratch
        self.network = network
        self.timeoutSeconds = timeoutSeconds
        self.output = output
        self.disk = disk
    }
}

/// A bound on what one buildpack process writes to the host: no single file larger than
/// `maxFileSize` (the executor's hard limit, which `truncate` meets too), and `exceeded`, when
/// given, asked every `pollMicroseconds` while it runs; once it says yes the executor kills it.
public final class DiskGuard: Sendable, Equatable {
    public let maxFileSize: UInt64
    public let pollMicroseconds: Int64
    public let exceeded: (@Sendable () -> Bool)?

    public init(maxFileSize: UInt64, pollMicroseconds: Int64 = 0, exceeded: (@Sendable () -> Bool)? = nil) {
        self.maxFileSize = maxFileSize
        self.pollMicroseconds = pollMicroseconds
        self.exceeded = exceeded
    }

    public static func == (a: DiskGuard, b: DiskGuard) -> Bool { a === b }
}

/// How an invocation ended, and what it cost.
public struct InvocationResult: Sendable, Equatable {
    public enum Ending: Sendable, Equatable {
        case exited(Int32)
        case signaled(Int32)
        case timedOut
        /// The executable was missing or not executable inside.
        case notRunnable(String)
    }

    public var ending: Ending
    /// With `.capture`: stdout and stderr, interleaved, cut at the limit.
    public var output: [UInt8]
    public var wallMicroseconds: Int64
    public var cpuMicroseconds: Int64
    public var maxResidentKiB: Int64
    /// When the executor audits syscalls.
    public var audit: AuditCounts?
    /// A resource limit the process ran into, as words ("memory limit 64 MiB reached").
    public var limitReached: String?

    public init(ending: Ending, output: [UInt8] = [], wallMicroseconds: Int64 = 0, cpuMicroseconds: Int64 = 0,
                maxResidentKiB: Int64 = 0, audit: AuditCounts? = nil, limitReached: String? = nil) {
        self.limitReached = limitReached
        self.ending = ending
        self.output = output
        self.wallMicroseconds = wallMicroseconds
        self.cpuMicroseconds = cpuMicroseconds
        self.maxResidentKiB = maxResidentKiB
        self.audit = audit
    }
}

/// What one buildpack process did, as the audit counted it.
public struct AuditCounts: Sendable, Equatable {
    /// Events per syscall.
    public var events: [String: Int]
    public var programs: [String]
    public var destinations: [String]
    /// Denials per syscall.
    public var denials: [String: Int]
    /// Events counted here but left out of the log by its size or rate cap.
    public var dropped: Int

    public init(events: [String: Int], programs: [String], destinations: [String], denials: [String: Int],
                dropped: Int = 0) {
        self.events = events
        self.programs = programs
        self.destinations = destinations
        self.denials = denials
        self.dropped = dropped
    }
}

/// The executor could not run the invocation at all (not a buildpack failing).
public struct ExecutionError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    /// The exit code stockade should end with when this stops a phase.
    public let exitCode: Int32

    public init(_ message: String, exitCode: Int32) {
        self.message = message
        self.exitCode = exitCode
    }

    public var description: String { message }
}

/// Runs buildpack executables; the real one puts each in its own sandbox.
public protocol BuildpackExecutor: Sendable {
    /// A `Result`, not a typed throw: see `Sandbox.run(_:stdio:) async`.
    func run(_ invocation: Invocation) async -> Result<InvocationResult, ExecutionError>
    /// Lets the buildpack processes write beneath `hostPath`, a directory the
    /// lifecycle made (they may run as another host user).
    func makeWritable(_ hostPath: String) throws(ExecutionError)
    /// Lets the lifecycle read everything the buildpack processes wrote beneath `hostPaths`.
    func makeReadable(_ hostPaths: [String]) throws(ExecutionError)
    /// Removes a tree the lifecycle made and the buildpack processes wrote into.
    func remove(_ hostPath: String) throws(ExecutionError)
    /// Lets the buildpack processes pass through `hostPath`, the run's private scratch
    /// directory, to what they are handed beneath it (needed where they reach it by name).
    func makeReachable(_ hostPath: String) throws(ExecutionError)
}

extension BuildpackExecutor {
    /// Default: nothing to do (an executor whose processes run as the caller).
    public func makeWritable(_ hostPath: String) throws(ExecutionError) {}
    public func makeReadable(_ hostPaths: [String]) throws(ExecutionError) {}
    public func makeReachable(_ hostPath: String) throws(ExecutionError) {}
    /// Default: the caller owns everything beneath `hostPath`; links are removed, never followed.
    public func remove(_ hostPath: String) throws(ExecutionError) {
        try? removeTree(atPath: hostPath)
    }
}
