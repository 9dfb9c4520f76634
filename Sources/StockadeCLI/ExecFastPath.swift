import ArgumentParser

/// `stockade exec`'s usual command lines, parsed without ArgumentParser.
///
/// ArgumentParser reflects over `exec`'s option groups on every start, and each
/// generic `Option<T>` it instantiates has the Swift runtime scan every
/// conformance record of the binary: most of the user-space time of
/// `exec -- /bin/true`. Even creating those wrappers costs a scan per generic
/// type, so this parser fills the plain `ExecRequest` that `Exec` hands its
/// values over in, and runs the same validations. It takes only plain long
/// options (`--name VALUE`, `--name=VALUE`, each single-valued one at most
/// once) and the command; on anything else (`--help`, a short option, an
/// unknown or repeated option, a value that looks like an option or fails to
/// convert, a failed validation) it answers nil and ArgumentParser parses the
/// whole line, errors and exit codes its own. `ExecFastPathTests` holds the
/// two to the same result.
enum ExecFastPath {
    /// The request for `arguments` (without the program name), or nil when
    /// ArgumentParser must decide.
    static func parse(_ arguments: ArraySlice<String>) -> ExecRequest? {
        guard arguments.first == "exec" else { return nil }
        var values = Values()
        // `--` or the first word without a dash starts the command, as
        // `.captureForPassthrough` takes it (`--` included; `validate()` drops it).
        guard let command = LongOptions.scan(arguments.dropFirst(), isFlag: { $0 == "clear-env" || $0 == "require-namespaces" },
                                             take: { values.set($0, $1) }),
              !command.isEmpty else { return nil }
        return values.request(command: Array(command))
    }

    /// Every option `exec` takes; nil where it was not given.
    private struct Values {
        var rootfs, chdir, user, network, hostname, profile, audit: String?
        var binds: [String] = [], readOnlyBinds: [String] = [], tmpfs: [String] = [], environment: [String] = []
        var clearEnv, requireNamespaces: Bool?
        var timeout, cpus: Double?
        var memory, maxFileSize, maxMemory, auditMaxBytes: String?
        var pids, maxProcesses, maxOpenFiles, cpuSeconds, auditMaxRate: UInt64?

        /// False where ArgumentParser must decide: an unknown or repeated option, a failed conversion.
        mutating func set(_ name: Substring, _ value: String) -> Bool {
            func once<T>(_ field: inout T?, _ converted: T?) -> Bool {
                guard field == nil, let converted else { return false }
                field = converted
                return true
            }
            switch name {
            case "bind": binds.append(value)
            case "ro-bind": readOnlyBinds.append(value)
            case "tmpfs": tmpfs.append(value)
            case "env": environment.append(value)
            case "rootfs": return once(&rootfs, value)
            case "chdir": return once(&chdir, value)
            case "user": return once(&user, value)
            case "network": return once(&network, value)
            case "hostname": return once(&hostname, value)
            case "profile": return once(&profile, value)
            case "audit": return once(&audit, value)
            case "memory": return once(&memory, value)
            case "max-file-size": return once(&maxFileSize, value)
            case "max-memory": return once(&maxMemory, value)
            case "audit-max-bytes": return once(&auditMaxBytes, value)
            case "timeout": return once(&timeout, Double(argument: value))
            case "cpus": return once(&cpus, Double(argument: value))
            case "pids": return once(&pids, UInt64(argument: value))
            case "max-processes": return once(&maxProcesses, UInt64(argument: value))
            case "max-open-files": return once(&maxOpenFiles, UInt64(argument: value))
            case "cpu-seconds": return once(&cpuSeconds, UInt64(argument: value))
            case "audit-max-rate": return once(&auditMaxRate, UInt64(argument: value))
            case "clear-env": return once(&clearEnv, true)
            case "require-namespaces": return once(&requireNamespaces, true)
            default: return false
            }
            return true
        }

        /// The request, validated as ArgumentParser validates `Exec`; nil when a validation fails.
        func request(command captured: [String]) -> ExecRequest? {
            var sandbox = SandboxRequest()
            sandbox.rootfs = rootfs
            sandbox.binds = binds
            sandbox.readOnlyBinds = readOnlyBinds
            sandbox.tmpfs = tmpfs
            sandbox.chdir = chdir ?? sandbox.chdir
            sandbox.user = user ?? sandbox.user
            sandbox.network = network
            sandbox.hostname = hostname ?? sandbox.hostname
            sandbox.environment = environment
            sandbox.clearEnv = clearEnv ?? false
            sandbox.profile = profile
            sandbox.audit = audit
            sandbox.timeout = timeout
            sandbox.limits = LimitRequest(memory: memory, pids: pids, cpus: cpus)
            sandbox.requireNamespaces = requireNamespaces ?? false
            sandbox.maxProcesses = maxProcesses
            sandbox.maxFileSize = maxFileSize
            sandbox.maxOpenFiles = maxOpenFiles
            sandbox.cpuSeconds = cpuSeconds
            sandbox.maxMemory = maxMemory
            let auditCaps = AuditCaps(auditMaxBytes: auditMaxBytes, auditMaxRate: auditMaxRate)
            do {
                try sandbox.limits.validate()
                try sandbox.validate()
                try auditCaps.validate()
                return ExecRequest(sandbox: sandbox, auditCaps: auditCaps, command: try ExecRequest.command(captured: captured))
            } catch {
                return nil
            }
        }
    }
}

/// The plain long options the fast paths take.
enum LongOptions {
    /// Hands each option at the head of `arguments` (`--name VALUE`, `--name=VALUE`, a flag
    /// alone) to `take`, and returns what follows them: `--` or the first word without a dash
    /// onward. Nil where ArgumentParser must decide: a short option, a flag given a value, an
    /// option without a value or with an empty one, or one `take` refuses.
    static func scan(_ arguments: ArraySlice<String>, isFlag: (Substring) -> Bool,
                     take: (Substring, String) -> Bool) -> ArraySlice<String>? {
        var rest = arguments
        while let argument = rest.first {
            if argument == "--" || !argument.hasPrefix("-") { break }
            guard argument.hasPrefix("--") else { return nil }
            rest = rest.dropFirst()
            let name: Substring
            var value: String?
            if let equals = argument.firstIndex(of: "=") {
                name = argument[argument.index(argument.startIndex, offsetBy: 2)..<equals]
                value = String(argument[argument.index(after: equals)...])
            } else {
                name = argument.dropFirst(2)
            }
            if isFlag(name) {
                guard value == nil else { return nil }
            } else {
                if value == nil, let next = rest.first, !next.hasPrefix("-") {
                    value = next
                    rest = rest.dropFirst()
                }
                guard value?.isEmpty == false else { return nil }
            }
            guard take(name, value ?? "") else { return nil }
        }
        return rest
    }
}
