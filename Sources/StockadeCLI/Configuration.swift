import BuildpackSpec
import Glibc
import Lifecycle
import SystemPackage

/// The operator's file (`/etc/stockade/config.toml`, or `$STOCKADE_CONFIG`),
/// then the user's (`$XDG_CONFIG_HOME/stockade/config.toml`), then flags.
/// The user's file may change defaults and lower maximums, never raise one.
struct Configuration: Equatable {
    /// Sizes and counts of a sandbox; nil: not set here.
    struct Limits: Equatable {
        var memory: UInt64?
        var pids: UInt64?
        var cpus: Double?
        var disk: UInt64?
    }

    var defaults = Limits()
    var maximum = Limits()
    /// Which file set each maximum, for the refusal line.
    var maximumSource: [String: String] = [:]
    /// Default seccomp profiles by command: exec, run, detect, build.
    var profiles: [String: String] = [:]
    var auditMaxBytes: UInt64?
    /// Audit events per second.
    var auditMaxRate: UInt64?
    var allowHostNetwork = true
    var networkSource: String?
    /// Refuse rather than run without namespaces; either file may ask for it.
    var requireNamespaces = false

    static let systemPath = "/etc/stockade/config.toml"
    static let profileCommands: Set<String> = ["exec", "run", "detect", "build"]

    /// The files that apply, system first.
    static func paths() -> (system: String, user: String?) {
        let system = getenv("STOCKADE_CONFIG").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? systemPath
        var base = getenv("XDG_CONFIG_HOME").map { String(cString: $0) } ?? ""
        if base.isEmpty, let home = getenv("HOME").map({ String(cString: $0) }), !home.isEmpty { base = home + "/.config" }
        return (system, base.isEmpty ? nil : base + "/stockade/config.toml")
    }

    /// Both files merged; a file that cannot be read or parsed is one line on
    /// stderr and exit 78.
    static func load() throws -> Configuration {
        let (system, user) = paths()
        var configuration = Configuration()
        do {
            if let text = try read(system, ownedByUser: false) {
                try configuration.apply(try TOML.parse(text, file: system), text: text, file: system, system: true)
            }
            if let user, let text = try read(user, ownedByUser: true) {
                try configuration.apply(try TOML.parse(text, file: user), text: text, file: user, system: false)
            }
        } catch let error as ConfigError {
            complain(error.message)
            throw Failure(code: ExitStatus.config)
        } catch let error as SpecError {
            complain("configuration: \(error.description)")
            throw Failure(code: ExitStatus.config)
        }
        return configuration
    }

    struct ConfigError: Error { let message: String }

    /// nil when absent. The user's own file is also skipped when unreadable
    /// (`setpriv` keeps another user's HOME); the operator's must be read.
    static func read(_ path: String, ownedByUser: Bool) throws -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let code = errno
            if code == ENOENT || code == ENOTDIR || (ownedByUser && code == EACCES) { return nil }
            throw ConfigError(message: "configuration: cannot read \(path): \(Errno(rawValue: code).description)")
        }
        close(fd)
        guard let text = HostText.read(path, limit: 1 << 20) else {
            throw ConfigError(message: "configuration: \(path) is not a readable file of at most 1 MiB")
        }
        return text
    }

    private mutating func apply(_ table: TOMLTable, text: String, file: String, system: Bool) throws {
        func fail(_ table: String?, _ key: String, _ what: String) -> ConfigError {
            let line = Self.line(of: key, in: table, text: text).map { ":\($0)" } ?? ""
            return ConfigError(message: "configuration: \(file)\(line): \(table.map { "\($0)." } ?? "")\(key): \(what)")
        }
        for key in table.keys where !["limits", "maximum", "profiles", "audit", "network", "sandbox"].contains(key) {
            throw fail(nil, key, "unknown table (expected limits, maximum, profiles, audit, network, sandbox)")
        }
        func section(_ name: String) throws -> TOMLTable? {
            guard let value = table[name] else { return nil }
            guard let section = value.tableValue else { throw fail(nil, name, "must be a table") }
            return section
        }
        func limits(_ name: String) throws -> Limits {
            var result = Limits()
            guard let section = try section(name) else { return result }
            for (key, value) in section.sortedEntries {
                switch key {
                case "memory", "disk":
                    let bytes: UInt64?
                    if let text = value.stringValue { bytes = Self.byteSize(text) } else { bytes = value.integerValue.flatMap { $0 > 0 ? UInt64($0) : nil } }
                    guard let bytes, bytes > 0 else { throw fail(name, key, "must be a size such as \"4G\" or a number of bytes") }
                    if key == "memory" { result.memory = bytes } else { result.disk = bytes }
                case "pids":
                    guard let n = value.integerValue, n > 0 else { throw fail(name, key, "must be a positive integer") }
                    result.pids = UInt64(n)
                case "cpus":
                    guard let n = value.floatValue ?? value.integerValue.map(Double.init), n > 0, n.isFinite else {
                        throw fail(name, key, "must be a positive number of cores, e.g. 1.5")
                    }
                    result.cpus = n
                default:
                    throw fail(name, key, "unknown key (expected memory, pids, cpus, disk)")
                }
            }
            return result
        }
        let newDefaults = try limits("limits")
        defaults.memory = newDefaults.memory ?? defaults.memory
        defaults.pids = newDefaults.pids ?? defaults.pids
        defaults.cpus = newDefaults.cpus ?? defaults.cpus
        defaults.disk = newDefaults.disk ?? defaults.disk
        // A user's maximum only ever lowers the operator's.
        let newMaximum = try limits("maximum")
        func lower<T: Comparable>(_ current: inout T?, _ new: T?, _ key: String) {
            guard let new, current.map({ new < $0 }) ?? true else { return }
            current = new
            maximumSource[key] = file
        }
        lower(&maximum.memory, newMaximum.memory, "memory")
        lower(&maximum.pids, newMaximum.pids, "pids")
        lower(&maximum.cpus, newMaximum.cpus, "cpus")
        lower(&maximum.disk, newMaximum.disk, "disk")

        if let section = try section("profiles") {
            for (key, value) in section.sortedEntries {
                guard Self.profileCommands.contains(key) else { throw fail("profiles", key, "unknown key (expected exec, run, detect, build)") }
                guard let name = value.stringValue, !name.isEmpty else { throw fail("profiles", key, "must be a profile name or file") }
                profiles[key] = name
            }
        }
        if let section = try section("audit") {
            for (key, value) in section.sortedEntries {
                switch key {
                case "max-bytes":
                    let bytes = value.stringValue.flatMap(Self.byteSize) ?? value.integerValue.flatMap { $0 > 0 ? UInt64($0) : nil }
                    guard let bytes else { throw fail("audit", key, "must be a size such as \"100M\"") }
                    auditMaxBytes = bytes
                case "max-rate":
                    guard let n = value.integerValue, n > 0 else { throw fail("audit", key, "must be a positive number of events per second") }
                    auditMaxRate = UInt64(n)
                default:
                    throw fail("audit", key, "unknown key (expected max-bytes, max-rate)")
                }
            }
        }
        if let section = try section("network") {
            for (key, value) in section.sortedEntries {
                guard key == "allow-host" else { throw fail("network", key, "unknown key (expected allow-host)") }
                guard let allowed = value.booleanValue else { throw fail("network", key, "must be true or false") }
                // The user's file may forbid what the operator allows, not the reverse.
                if system || !allowed {
                    allowHostNetwork = allowed
                    networkSource = file
                }
            }
        }
        if let section = try section("sandbox") {
            for (key, value) in section.sortedEntries {
                guard key == "require-namespaces" else { throw fail("sandbox", key, "unknown key (expected require-namespaces)") }
                guard let required = value.booleanValue else { throw fail("sandbox", key, "must be true or false") }
                // Like the network: the user's file may tighten, never loosen.
                if system || required { requireNamespaces = required }
            }
        }
    }

    /// The 1-based line of `key` in `[table]` (or before any table), for messages.
    static func line(of key: String, in table: String?, text: String) -> Int? {
        var current: String?
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.drop(while: { $0 == " " || $0 == "\t" })
            if line.hasPrefix("[") {
                current = String(line.dropFirst().prefix(while: { $0 != "]" })).trimmingCharacters(in: " ")
                if table == nil && current == key { return index + 1 }
                continue
            }
            guard current == table, line.hasPrefix(key) else { continue }
            let rest = line.dropFirst(key.count).drop(while: { $0 == " " || $0 == "\t" })
            if rest.hasPrefix("=") { return index + 1 }
        }
        return nil
    }

    /// 512M, 4G, 4GiB, 1073741824.
    static func byteSize(_ text: String) -> UInt64? {
        var digits = Substring(text)
        for suffix in ["iB", "B"] where digits.hasSuffix(suffix) && digits.count > suffix.count {
            let head = digits.dropLast(suffix.count)
            if let last = head.last, "KMGTkmgt".contains(last) { digits = head; break }
        }
        return try? SandboxOptions.byteSize(String(digits))
    }
}

extension ExitStatus {
    /// EX_CONFIG: a configuration file is wrong.
    static let config: Int32 = 78
}
