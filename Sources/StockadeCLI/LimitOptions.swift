import ArgumentParser
import CLinux
import Glibc
import Lifecycle
import Sandbox

/// `--memory`, `--pids`, `--cpus`: for every sandbox of exec, run, detect and build.
struct LimitOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Memory of the whole sandbox, tmpfs included (suffixes K, M, G; default: the configured, else half of RAM).", valueName: "size"))
    var memory: String?

    @Option(help: ArgumentHelp("Processes and threads in the sandbox (default: the configured, else 4096).", valueName: "n"))
    var pids: UInt64?

    @Option(help: ArgumentHelp("CPU time in cores, fractional, e.g. 0.5 (default: the configured, else no limit).", valueName: "n"))
    var cpus: Double?

    static let defaultPids: UInt64 = 4096

    /// The values parsed, which everything else works on.
    var request: LimitRequest { LimitRequest(memory: memory, pids: pids, cpus: cpus) }

    func validate() throws { try request.validate() }

    func resolve(_ configuration: Configuration) throws -> (ResourceLimits, LimitEnforcement) {
        try request.resolve(configuration)
    }

    /// One line for a limit a sandbox hit; the exit status stays the command's.
    static func report(_ limit: LimitReached, of subject: String) {
        // Only the memory cgroup kills (its OOM killer); the pids limit refuses forks.
        complain("\(subject) \(limit.memory != nil ? "was killed" : "ran into a limit"): \(limit)")
    }

    /// Half of MemTotal, the most a sandbox takes unless configured: sysinfo's
    /// total RAM is the figure /proc/meminfo prints, in one system call.
    static func halfOfRAM() -> UInt64? {
        var info = sysinfo()
        guard sysinfo(&info) == 0, info.totalram > 0 else { return nil }
        return UInt64(info.totalram) * UInt64(max(info.mem_unit, 1)) / 2
    }
}

/// `LimitOptions` as plain values (see `SandboxRequest`).
struct LimitRequest: Equatable {
    var memory: String?
    var pids: UInt64?
    var cpus: Double?

    func validate() throws {
        if let memory, Configuration.byteSize(memory).map({ $0 > 0 }) != true {
            throw ValidationError("--memory takes a size such as 512M, not \(memory).")
        }
        if let pids, pids < 1 { throw ValidationError("--pids must be at least 1.") }
        if let cpus, !(cpus > 0 && cpus.isFinite) { throw ValidationError("--cpus must be a positive number of cores, e.g. 0.5.") }
    }

    /// The limits every sandbox of this command gets, and how they hold. A
    /// value above a configured maximum is refused (exit 64). When a limit was
    /// asked for (a flag or a configured default), one line says what holds.
    func resolve(_ configuration: Configuration) throws -> (ResourceLimits, LimitEnforcement) {
        let (system, user) = Configuration.paths()
        func refuseAbove<T: Comparable>(_ value: T?, _ maximum: T?, key: String, flag: String?, shown: (T) -> String) throws {
            guard let value, let maximum, value > maximum else { return }
            let asked = flag.map { "--\(key) \($0)" }
                ?? "the configured \(key) \(shown(value))"
            complain("\(asked) is above the maximum \(shown(maximum)) set in \(configuration.maximumSource[key] ?? user ?? system)")
            throw Failure(code: ExitStatus.usage)
        }
        let defaults = configuration.defaults
        let maximum = configuration.maximum
        let memoryFlag = memory.flatMap(Configuration.byteSize)
        try refuseAbove(memoryFlag ?? defaults.memory, maximum.memory, key: "memory", flag: memory, shown: ByteCount.describe)
        try refuseAbove(pids ?? defaults.pids, maximum.pids, key: "pids", flag: pids.map { "\($0)" }, shown: { "\($0)" })
        try refuseAbove(cpus ?? defaults.cpus, maximum.cpus, key: "cpus", flag: cpus.map { "\($0)" }, shown: { "\($0)" })

        // Built-in defaults never exceed a maximum: they are lowered to it.
        var limits = ResourceLimits()
        limits.memory = memoryFlag ?? defaults.memory ?? [LimitOptions.halfOfRAM(), maximum.memory].compactMap { $0 }.min()
        limits.pids = pids ?? defaults.pids ?? min(LimitOptions.defaultPids, maximum.pids ?? .max)
        limits.cpus = cpus ?? defaults.cpus ?? maximum.cpus

        let enforcement = LimitEnforcement.detect()
        let asked = memory != nil || pids != nil || cpus != nil
            || defaults.memory != nil || defaults.pids != nil || defaults.cpus != nil
        if asked { complain(enforcement.summary, level: "limits") }
        return (limits, enforcement)
    }
}

extension Configuration {
    /// The network a command gets: `--network host` is refused (exit 64) when the operator forbids it.
    func network(_ asked: String?, default standard: NetworkMode) throws -> NetworkMode {
        guard let asked else { return allowHostNetwork ? standard : .none }
        let mode = NetworkMode(rawValue: asked) ?? .none
        if mode == .host && !allowHostNetwork {
            complain("--network host is not allowed by \(networkSource ?? Configuration.systemPath)")
            throw Failure(code: ExitStatus.usage)
        }
        return mode
    }

    /// The profile a command runs under: the flag, else the configured one, else the built-in default.
    func profile(_ asked: String?, for command: String, default standard: String) -> String {
        asked ?? profiles[command] ?? standard
    }
}
