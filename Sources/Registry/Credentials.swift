import Glibc
import JSON
import SystemCalls
import SystemPackage

/// A registry credential and where it was found (named in refusals, never its secret).
public struct Credential: Sendable, Equatable {
    public enum Secret: Sendable, Equatable {
        case basic(user: String, password: String)
        /// A ready `Authorization` value from CNB_REGISTRY_AUTH (`Basic …` or `Bearer …`).
        case header(String)
    }

    public var secret: Secret
    public var source: String

    public init(_ secret: Secret, source: String) {
        self.secret = secret
        self.source = source
    }
}

/// Finds credentials as the buildpacks and containers tools do, first match wins:
/// `CNB_REGISTRY_AUTH` (the Platform API's `{"host": "Basic …"}`), then `REGISTRY_AUTH_FILE`
/// (containers-auth.json), then Docker's `config.json` (`$DOCKER_CONFIG`, else `~/.docker`):
/// `credHelpers[host]`, `auths[host]`, then `credsStore`. Helpers are `docker-credential-NAME`
/// programs on PATH, asked with `get`.
public struct CredentialStore: Sendable {
    var environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    /// The process's own environment.
    public static func fromEnvironment() -> CredentialStore {
        var values: [String: String] = [:]
        var entry = Glibc.environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "=") { values[String(text[..<equals])] = String(text[text.index(after: equals)...]) }
            entry += 1
        }
        return CredentialStore(environment: values)
    }

    /// Where credentials were looked for, for a refusal's message.
    public func sources() -> [String] {
        var names: [String] = []
        if environment["CNB_REGISTRY_AUTH"] != nil { names.append("CNB_REGISTRY_AUTH") }
        if let file = environment["REGISTRY_AUTH_FILE"] { names.append("REGISTRY_AUTH_FILE (\(file))") }
        names.append(dockerConfigPath() ?? "~/.docker/config.json")
        return names
    }

    public func credential(for host: String) throws(RegistryError) -> Credential? {
        let keys = Self.keys(for: host)
        if let text = environment["CNB_REGISTRY_AUTH"] {
            guard let json = try? JSONParser.parse(Array(text.utf8), maxBytes: 1 << 20), let object = json.objectValue else {
                throw RegistryError(.authRefused, "CNB_REGISTRY_AUTH is not a JSON object of registry to Authorization value")
            }
            for member in object.members where keys.contains(Self.normalise(member.key)) {
                guard let value = member.value.stringValue, value.hasPrefix("Basic ") || value.hasPrefix("Bearer ") else {
                    throw RegistryError(.authRefused, "CNB_REGISTRY_AUTH: the value for \(member.key) is not \"Basic …\" or \"Bearer …\"")
                }
                return Credential(.header(value), source: "CNB_REGISTRY_AUTH")
            }
        }
        if let file = environment["REGISTRY_AUTH_FILE"] {
            if let found = try lookUp(file: file, keys: keys, host: host, source: "REGISTRY_AUTH_FILE (\(file))") { return found }
        }
        if let file = dockerConfigPath() {
            if let found = try lookUp(file: file, keys: keys, host: host, source: file) { return found }
        }
        return nil
    }

    func dockerConfigPath() -> String? {
        if let directory = environment["DOCKER_CONFIG"] { return directory + "/config.json" }
        if let home = environment["HOME"] { return home + "/.docker/config.json" }
        return nil
    }

    private func lookUp(file: String, keys: Set<String>, host: String, source: String) throws(RegistryError) -> Credential? {
        guard let bytes = Self.read(file) else { return nil }
        guard let json = try? JSONParser.parse(bytes, maxBytes: 1 << 20), json.objectValue != nil else {
            throw RegistryError(.authRefused, "\(source) is not a JSON object")
        }
        for member in json["credHelpers"]?.objectValue?.members ?? [] where keys.contains(Self.normalise(member.key)) {
            if let helper = member.value.stringValue {
                return try Self.askHelper(helper, host: host, source: "\(source) credHelpers (docker-credential-\(helper))")
            }
        }
        for member in json["auths"]?.objectValue?.members ?? [] where keys.contains(Self.normalise(member.key)) {
            if let auth = member.value["auth"]?.stringValue, !auth.isEmpty {
                guard let decoded = Base64.decode(auth), let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else {
                    throw RegistryError(.authRefused, "\(source): the auth for \(member.key) is not base64 of user:password")
                }
                return Credential(.basic(user: String(decoding: decoded[..<colon], as: UTF8.self),
                                         password: String(decoding: decoded[(colon + 1)...], as: UTF8.self)), source: source)
            }
            if let user = member.value["username"]?.stringValue, let password = member.value["password"]?.stringValue {
                return Credential(.basic(user: user, password: password), source: source)
            }
        }
        if let store = json["credsStore"]?.stringValue, !store.isEmpty {
            return try Self.askHelper(store, host: host, source: "\(source) credsStore (docker-credential-\(store))")
        }
        return nil
    }

    /// The names a host's credentials may be stored under: Docker Hub's several, and any with a
    /// scheme or path, compared without them.
    static func keys(for host: String) -> Set<String> {
        host == "docker.io" ? ["docker.io", "index.docker.io", "registry-1.docker.io"] : [host]
    }

    static func normalise(_ key: String) -> String {
        var text = Substring(key)
        if let scheme = text.firstRange(of: "://") { text = text[scheme.upperBound...] }
        if let slash = text.firstIndex(of: "/") { text = text[..<slash] }
        return String(text)
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let fd = try? systemCall({ open(path, O_RDONLY | O_CLOEXEC) }).get() else { return nil }
        defer { close(fd) }
        // Over 1 MiB is refused by the caller's parser, as a truncated document.
        return try? FileDescriptor(rawValue: fd).readAll(limit: 1 << 20).bytes
    }

    /// `docker-credential-NAME get`, the server on stdin, `{"Username","Secret"}` on stdout.
    /// "Not found" (a failure) means no credential.
    static func askHelper(_ name: String, host: String, source: String) throws(RegistryError) -> Credential? {
        guard !name.isEmpty, !name.contains("/") else { throw RegistryError(.authRefused, "\(source): \(name) is not a helper name") }
        let server = host == "docker.io" ? "https://index.docker.io/v1/" : host
        let limit = try helperLimitSeconds()
        let output: [UInt8]
        switch HelperProcess.run("docker-credential-" + name, ["get"], input: Array(server.utf8), limitSeconds: limit) {
        case .answered(let bytes): output = bytes
        case .failed: return nil
        case .timedOut:
            throw RegistryError(.authRefused, "\(source) gave no answer for \(host) within \(limit) s and was stopped (STOCKADE_CREDENTIAL_HELPER_TIMEOUT sets the limit)")
        }
        guard let json = try? JSONParser.parse(output, maxBytes: 1 << 16),
              let user = json["Username"]?.stringValue, let secret = json["Secret"]?.stringValue else {
            throw RegistryError(.authRefused, "\(source) answered something that is not {\"Username\",\"Secret\"} for \(host)")
        }
        return Credential(.basic(user: user, password: secret), source: source)
    }
}

/// How long a credential helper may take: `STOCKADE_CREDENTIAL_HELPER_TIMEOUT` seconds, else 30.
func helperLimitSeconds() throws(RegistryError) -> Int {
    guard let text = getenv("STOCKADE_CREDENTIAL_HELPER_TIMEOUT").map({ String(cString: $0) }) else { return 30 }
    guard let seconds = Int(text), (1...3600).contains(seconds) else {
        throw RegistryError(.authRefused, "STOCKADE_CREDENTIAL_HELPER_TIMEOUT is \(text), not whole seconds from 1 to 3600")
    }
    return seconds
}

/// Runs a credential helper: stdin from bytes, stdout read up to 64 KiB, stderr discarded, in a
/// process group of its own. A helper that does not finish within `limitSeconds` (one waiting
/// for a desktop keyring, or one that left a daemon holding its stdout) is killed with its group.
enum HelperProcess {
    enum Outcome: Equatable {
        case answered([UInt8])
        case failed
        case timedOut
    }

    static func run(_ program: String, _ arguments: [String], input: [UInt8], limitSeconds: Int) -> Outcome {
        // stdin is a socket, so that writing to a helper that exits without reading fails with
        // EPIPE (MSG_NOSIGNAL) instead of killing this process with SIGPIPE.
        var toChild: [Int32] = [0, 0]
        var fromChild: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &toChild) == 0 else { return .failed }
        guard pipe(&fromChild) == 0 else { close(toChild[0]); close(toChild[1]); return .failed }
        for fd in fromChild { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        closeInheritedDescriptors(&actions)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, program, &actions, &attributes, argv, environ)
        close(toChild[0])
        close(fromChild[1])
        guard spawned == 0 else { close(toChild[1]); close(fromChild[0]); return .failed }
        // A few hundred bytes: the socket's buffer takes them whether or not the helper reads.
        _ = input.withUnsafeBytes { send(toChild[1], $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        close(toChild[1])
        let output = read(fromChild[0], limit: 1 << 16, until: monotonicMilliseconds() + Int64(limitSeconds) * 1000)
        close(fromChild[0])
        if output == .timedOut { _ = kill(-pid, SIGKILL) }
        var status: Int32 = 0
        guard (try? systemCall({ waitpid(pid, &status, 0) }).get()) != nil else { return .failed }
        guard status == 0 || output == .timedOut else { return .failed }
        return output
    }

    /// Everything up to end of file: `.failed` past `limit` bytes or on a read error,
    /// `.timedOut` when `deadline` (monotonic milliseconds) passed first.
    private static func read(_ fd: Int32, limit: Int, until deadline: Int64) -> Outcome {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let left = deadline - monotonicMilliseconds()
            guard left > 0 else { return .timedOut }
            var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let polled = poll(&ready, 1, Int32(min(left, Int64(Int32.max))))
            if polled < 0 && errno == EINTR { continue }
            guard polled > 0 else { return polled == 0 ? .timedOut : .failed }
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return .failed }
            if n == 0 { return .answered(bytes) }
            bytes += chunk[..<n]
            guard bytes.count <= limit else { return .failed }
        }
    }
}

enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i], b1 = i + 1 < bytes.count ? bytes[i + 1] : 0, b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 3) << 4 | b1 >> 4)])
            out.append(i + 1 < bytes.count ? alphabet[Int((b1 & 15) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? alphabet[Int(b2 & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        for byte in text.utf8 where byte != UInt8(ascii: "=") && byte != 10 && byte != 13 {
            guard let index = alphabet.firstIndex(of: byte) else { return nil }
            values.append(UInt8(index))
        }
        var out: [UInt8] = []
        var i = 0
        while i + 1 < values.count {
            out.append(values[i] << 2 | values[i + 1] >> 4)
            if i + 2 < values.count { out.append((values[i + 1] & 15) << 4 | values[i + 2] >> 2) }
            if i + 3 < values.count { out.append((values[i + 2] & 3) << 6 | values[i + 3]) }
            i += 4
        }
        return out
    }
}
