import ArgumentParser
import Glibc
import OCI
import Sandbox
import Seccomp

/// The options every sandboxed run takes; shared by exec and, later, the lifecycle.
struct SandboxOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A root filesystem to run in, read-only (default: the host's /usr, /bin, /lib* and a few /etc files).", valueName: "dir"))
    var rootfs: String?

    @Option(name: .customLong("bind"), help: ArgumentHelp("Bind a host path read-write (nosuid, nodev).", valueName: "src:dst"))
    var binds: [String] = []

    @Option(name: .customLong("ro-bind"), help: ArgumentHelp("Bind a host path read-only, recursively.", valueName: "src:dst"))
    var readOnlyBinds: [String] = []

    @Option(name: .customLong("tmpfs"), help: ArgumentHelp("Mount a private tmpfs, owned by the stack user.", valueName: "dst"))
    var tmpfs: [String] = []

    @Option(help: ArgumentHelp("Working directory inside the sandbox.", valueName: "dir"))
    var chdir: String = "/"

    @Option(help: ArgumentHelp("Stack user and group the command runs as.", valueName: "uid:gid"))
    var user: String = "1000:1000"

    @Option(help: ArgumentHelp("none: only loopback (default); host: the host's network, unless the configuration forbids it.", valueName: "none|host"))
    var network: String?

    @Option(help: "Hostname inside the sandbox.")
    var hostname: String = "stockade"

    @Option(name: .customLong("env"), help: ArgumentHelp("Set an environment variable.", valueName: "key=value"))
    var environment: [String] = []

    @Flag(help: "Start from an empty environment instead of stockade's own.")
    var clearEnv = false

    @Option(help: ArgumentHelp("Seccomp profile: a built-in name (default, strict, unconfined) or an OCI JSON file (default: the configured, else default).", valueName: "name|file"))
    var profile: String?

    @Option(help: ArgumentHelp("Record what the command executes, connects to, opens for writing and is denied, as JSON Lines.", valueName: "file"))
    var audit: String?

    @Option(help: ArgumentHelp("Kill the whole sandbox after this many seconds.", valueName: "seconds"))
    var timeout: Double?

    @OptionGroup var limits: LimitOptions

    @OptionGroup var namespaces: NamespaceOption

    @Option(help: "RLIMIT_NPROC: processes of the stack user's host id.")
    var maxProcesses: UInt64?

    @Option(help: ArgumentHelp("RLIMIT_FSIZE, in bytes (suffixes K, M, G).", valueName: "size"))
    var maxFileSize: String?

    @Option(help: "RLIMIT_NOFILE.")
    var maxOpenFiles: UInt64?

    @Option(help: "RLIMIT_CPU, in seconds.")
    var cpuSeconds: UInt64?

    @Option(help: ArgumentHelp("RLIMIT_AS, in bytes (suffixes K, M, G).", valueName: "size"))
    var maxMemory: String?

    /// The values parsed, which everything else works on.
    var request: SandboxRequest {
        SandboxRequest(rootfs: rootfs, binds: binds, readOnlyBinds: readOnlyBinds, tmpfs: tmpfs, chdir: chdir,
                       user: user, network: network, hostname: hostname, environment: environment,
                       clearEnv: clearEnv, profile: profile, audit: audit, timeout: timeout,
                       limits: limits.request, requireNamespaces: namespaces.requireNamespaces,
                       maxProcesses: maxProcesses, maxFileSize: maxFileSize, maxOpenFiles: maxOpenFiles,
                       cpuSeconds: cpuSeconds, maxMemory: maxMemory)
    }

    func validate() throws { try request.validate() }

    static func split(_ spec: String) throws -> (String, String) {
        guard let colon = spec.lastIndex(of: ":"), colon != spec.startIndex, spec.index(after: colon) != spec.endIndex else {
            throw ValidationError("bind takes SRC:DST, not \(spec).")
        }
        return (String(spec[..<colon]), String(spec[spec.index(after: colon)...]))
    }

    static func byteSize(_ text: String) throws -> UInt64 {
        let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = Substring(text)
        var factor: UInt64 = 1
        if let last = digits.last?.uppercased().first, let unit = units[last] { factor = unit; digits = digits.dropLast() }
        guard let value = UInt64(digits), value.multipliedReportingOverflow(by: factor).overflow == false else {
            throw ValidationError("\(text) is not a size in bytes (e.g. 512M).")
        }
        return value * factor
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int64(seconds)) : String(seconds)
    }
}

/// `SandboxOptions` as plain values: what `exec` runs on, whichever parser filled it
/// (`ExecFastPath` builds one without instantiating ArgumentParser's property wrappers).
struct SandboxRequest: Equatable {
    var rootfs: String?
    var binds: [String] = []
    var readOnlyBinds: [String] = []
    var tmpfs: [String] = []
    var chdir = "/"
    var user = "1000:1000"
    var network: String?
    var hostname = "stockade"
    var environment: [String] = []
    var clearEnv = false
    var profile: String?
    var audit: String?
    var timeout: Double?
    var limits = LimitRequest()
    var requireNamespaces = false
    var maxProcesses: UInt64?
    var maxFileSize: String?
    var maxOpenFiles: UInt64?
    var cpuSeconds: UInt64?
    var maxMemory: String?

    func validate() throws {
        _ = try stackUser()
        if let network, NetworkMode(rawValue: network) == nil { throw ValidationError("--network must be none or host, not \(network).") }
        if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be a positive number of seconds.") }
        for spec in binds + readOnlyBinds { _ = try SandboxOptions.split(spec) }
        for entry in environment where !entry.contains("=") || entry.hasPrefix("=") {
            throw ValidationError("--env takes KEY=VALUE, not \(entry).")
        }
        _ = try maxFileSize.map(SandboxOptions.byteSize)
        _ = try maxMemory.map(SandboxOptions.byteSize)
    }

    func stackUser() throws -> StackUser { try StackUser.option(user) }

    /// The profile the command runs under.
    func profileName(_ configuration: Configuration) -> String {
        configuration.profile(profile, for: "exec", default: "default")
    }

    /// Turns the options into a plan; reports a bad profile, a refused limit
    /// or network on stderr itself.
    func plan(command: [String], configuration: Configuration) throws -> SandboxPlan {
        let user = try stackUser()
        var mounts: [MountRequest] = []
        for spec in binds { let (s, d) = try SandboxOptions.split(spec); mounts.append(.bind(source: s, destination: d, readOnly: false)) }
        for spec in readOnlyBinds { let (s, d) = try SandboxOptions.split(spec); mounts.append(.bind(source: s, destination: d, readOnly: true)) }
        mounts += tmpfs.map { .tmpfs(destination: $0) }
        let network = try configuration.network(network, default: .none)
        let filter = try ProfileSelection.filter(named: profileName(configuration))
        var (limits, enforcement) = try self.limits.resolve(configuration)
        limits.maxProcesses = maxProcesses
        limits.maxFileSize = try maxFileSize.map(SandboxOptions.byteSize)
        limits.maxOpenFiles = maxOpenFiles
        limits.cpuSeconds = cpuSeconds
        limits.maxMemory = try maxMemory.map(SandboxOptions.byteSize)
        return SandboxPlan(command: command, environment: environmentFor(user), user: user,
                           network: network, hostname: hostname, rootfs: rootfs,
                           mounts: mounts, workingDirectory: chdir, limits: limits, syscallFilter: filter,
                           timeoutSeconds: timeout, enforcement: enforcement,
                           requireNamespaces: requireNamespaces || configuration.requireNamespaces)
    }

    /// stockade's environment (or none), the stack user's HOME, USER and
    /// LOGNAME, a PATH if there is none, then every --env in order.
    func environmentFor(_ user: StackUser) -> [String] {
        var keys: [String] = []
        var entries: [String: String] = [:]
        entries.reserveCapacity(64)
        func set(_ entry: String) {
            // The UTF-8 view: searching Characters cost every start ~0.5M instructions.
            guard let eq = entry.utf8.firstIndex(of: UInt8(ascii: "=")) else { return }
            let key = String(entry[..<eq])
            if entries.updateValue(entry, forKey: key) == nil { keys.append(key) }
        }
        if !clearEnv {
            var p = environ
            while let entry = p.pointee { set(String(cString: entry)); p += 1 }
        }
        set("HOME=\(user.home)")
        set("USER=\(user.name)")
        set("LOGNAME=\(user.name)")
        if entries["PATH"] == nil { set("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") }
        environment.forEach(set)
        return keys.map { entries[$0]! }
    }

}

extension StackUser {
    /// `UID:GID`; with `bareUID`, also `UID` alone (the group is then the same number).
    init?(parsing text: String, bareUID: Bool = false) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || (bareUID && parts.count == 1), let uid = UInt32(parts[0]),
              let gid = parts.count == 2 ? UInt32(parts[1]) : uid else { return nil }
        self.init(uid: uid, gid: gid)
    }

    /// The value of a `--user` option.
    static func option(_ text: String) throws -> StackUser {
        guard let user = StackUser(parsing: text) else {
            throw ValidationError("--user takes UID:GID, e.g. 1000:1000, not \(text).")
        }
        return user
    }
}

/// `--require-namespaces`: where the kernel will not create a user namespace, refuse (exit 69)
/// instead of running in the fallback without namespaces.
struct NamespaceOption: ParsableArguments {
    @Flag(help: "Refuse (exit 69) rather than run without namespaces where the kernel will not create a user namespace.")
    var requireNamespaces = false

    func required(_ configuration: Configuration) -> Bool { requireNamespaces || configuration.requireNamespaces }
}

/// `--disk SIZE`: the disk budget of one build, export or run (see `DiskBudget`).
struct DiskOption: ParsableArguments {
    @Option(name: .customLong("disk"),
            help: ArgumentHelp("The most this may write to disk, all told (suffixes K, M, G, T; default 20G, or half the free space when that is less).", valueName: "size"))
    var size: String?

    /// The values parsed, which everything else works on.
    var request: DiskRequest { DiskRequest(size: size) }

    func validate() throws { try request.validate() }

    func account(writingTo directories: [String], configuration: Configuration) throws -> DiskAccount {
        try request.account(writingTo: directories, configuration: configuration)
    }
}

/// `DiskOption` as plain values (see `SandboxRequest`).
struct DiskRequest: Equatable {
    var size: String?

    func validate() throws {
        if let size, try SandboxOptions.byteSize(size) == 0 { throw ValidationError("--disk must be more than 0.") }
    }

    /// The account for a run writing beneath `directories`: the flag, else the configured
    /// default, else the standard budget (which looks at their free space), never above the
    /// configured maximum (a flag or configured default beyond it is refused, exit 64).
    func account(writingTo directories: [String], configuration: Configuration) throws -> DiskAccount {
        let asked = try size.map(SandboxOptions.byteSize) ?? configuration.defaults.disk
        let maximum = configuration.maximum.disk
        if let asked {
            if let maximum, asked > maximum {
                let what = size.map { "--disk \($0)" } ?? "the configured disk \(ByteCount.describe(asked))"
                let (system, user) = Configuration.paths()
                complain("\(what) is above the maximum \(ByteCount.describe(maximum)) set in \(configuration.maximumSource["disk"] ?? user ?? system)")
                throw Failure(code: ExitStatus.usage)
            }
            return DiskAccount(DiskBudget(limit: asked))
        }
        let budgets = directories.map { DiskBudget.standard(for: Self.existingAncestor(of: $0)) }
        let standard = budgets.min { $0.limit < $1.limit } ?? DiskBudget(limit: 20 << 30)
        return DiskAccount(maximum.map { DiskBudget(limit: min($0, standard.limit)) } ?? standard)
    }

    /// `path`, or its nearest parent that exists (an output not yet made).
    static func existingAncestor(of path: String) -> String {
        var candidate = path
        while access(candidate, F_OK) != 0, let slash = candidate.lastIndex(of: "/") {
            candidate = slash == candidate.startIndex ? "/" : String(candidate[..<slash])
        }
        return candidate.isEmpty ? "." : candidate
    }
}
