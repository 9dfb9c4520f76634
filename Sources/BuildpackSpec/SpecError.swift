/// The one error type of `BuildpackSpec`.
///
/// Every error names what it is about: the buildpack (when known), the file, the key path inside
/// the file and, in one sentence, what is wrong. `description` joins them:
///
///     buildpack example/node@1.0.0: launch.toml: processes[1].type: "we/b" is not a valid process type (letters, digits, ".", "_" and "-" only)
public struct SpecError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of problem this is. Callers branch on this, never on the message.
    public enum Kind: String, Sendable, Hashable {
        /// A system call failed (see `errno`).
        case io
        /// The path does not exist.
        case notFound
        /// The file is larger than the reader's limit.
        case tooLarge
        /// The path names a symbolic link, FIFO, socket, device or directory where a regular file was expected,
        /// or a non-directory where a directory was expected.
        case notRegularFile
        /// A relative path is malformed (empty, absolute, `.`/`..` or empty components, NUL) or would leave its root.
        case invalidPath
        /// The bytes are not valid UTF-8.
        case invalidUTF8
        /// The text is not valid TOML.
        case syntax
        /// The TOML nests deeper than the parser allows.
        case tooDeep
        /// A key is missing or has the wrong type.
        case schema
        /// A value has the right type but breaks a rule of the spec (an ID, a layer name, a process type, ...).
        case invalidValue
        /// The Buildpack API version is outside the supported range (the CLI exits 12).
        case unsupportedBuildpackAPI
        /// The Platform API version is outside the supported range (the CLI exits 11).
        case unsupportedPlatformAPI
        /// A rule could not be applied (a composite buildpack refers to itself, too many candidates, ...).
        case rule
    }

    public var kind: Kind
    /// The buildpack the problem is attributed to, as `id@version` (or just `id`).
    public var buildpack: String?
    /// The file, as the caller named it (usually relative to a root the reader knows).
    public var file: String?
    /// The key path inside the file, for example `order[0].group[1].id`.
    public var keyPath: String?
    /// The 1-based line and column for syntax errors.
    public var line: Int?
    public var column: Int?
    /// The system call that failed, for `.io` errors (e.g. `openat`).
    public var syscall: String?
    /// The errno value for `.io` errors.
    public var errno: Int32?
    /// One sentence saying what is wrong.
    public var message: String

    public init(_ kind: Kind, _ message: String, file: String? = nil, keyPath: String? = nil,
                buildpack: String? = nil, line: Int? = nil, column: Int? = nil,
                syscall: String? = nil, errno: Int32? = nil) {
        self.kind = kind
        self.message = message
        self.file = file
        self.keyPath = keyPath
        self.buildpack = buildpack
        self.line = line
        self.column = column
        self.syscall = syscall
        self.errno = errno
    }

    public var description: String {
        var parts: [String] = []
        if let buildpack { parts.append("buildpack \(buildpack)") }
        if let file {
            if let line, let column { parts.append("\(file):\(line):\(column)") } else { parts.append(file) }
        }
        if let keyPath, !keyPath.isEmpty { parts.append(keyPath) }
        parts.append(message)
        return parts.joined(separator: ": ")
    }

    /// The same error attributed to `buildpack` (kept if one is already set).
    public func attributed(to buildpack: String?) -> SpecError {
        var copy = self
        if copy.buildpack == nil { copy.buildpack = buildpack }
        return copy
    }
}
