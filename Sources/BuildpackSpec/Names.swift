/// Rules for buildpack IDs: what is valid, and how an ID becomes a directory name.
public enum BuildpackID {
    /// IDs that would collide with directories the platform owns in `<layers>`.
    public static let reserved: Set<String> = ["app", "config", "generated", "sbom"]

    /// Checks an ID: ASCII letters, digits, `.`, `/`, `-` and `_` only; not empty, not `.` or `..` (which would
    /// name a directory outside `<layers>` or `<buildpacks>`), and not a reserved ID. The spec forbids `_`, but
    /// the reference lifecycle and pack accept it (their own fixtures use it), so it is accepted here and
    /// `specViolation` says what to warn about.
    public static func validate(_ id: String, file: String? = nil, keyPath: String? = nil,
                                buildpack: String? = nil) throws(SpecError)
    {
        let invalid = try checkCharacters(id, "buildpack ID", punctuation: "./-_", file: file, keyPath: keyPath, buildpack: buildpack)
        if escape(id) == "." || escape(id) == ".." { throw invalid("it would name a parent or the same directory") }
        if reserved.contains(id) { throw invalid("it is reserved") }
    }

    /// What a valid ID does that the spec says it MUST NOT, for a warning; `nil` when it keeps to the spec.
    public static func specViolation(_ id: String) -> String? {
        id.contains("_") ? "buildpack ID \(quoted(id)) contains \"_\", which the spec forbids (it is accepted as the reference lifecycle does)" : nil
    }

    /// The directory name for an ID: every `/` becomes `_`. Because IDs may contain `_`, two IDs can share a
    /// directory name (`a/b` and `a_b`); `escapedCollision` finds such pairs, which cannot be used together.
    public static func escape(_ id: String) -> String {
        String(id.map { $0 == "/" ? "_" : $0 })
    }

    /// Whether two different IDs would share a directory under `<layers>` or `<buildpacks>`.
    public static func escapedCollision(_ a: String, _ b: String) -> Bool {
        a != b && escape(a) == escape(b)
    }

    /// Whether two IDs are the same ignoring ASCII case (the spec forbids such pairs in one builder).
    public static func collide(_ a: String, _ b: String) -> Bool {
        a.lowercased() == b.lowercased()
    }
}

/// Rules for buildpack versions as the platform uses them: a path component of
/// `<buildpacks>/<id>/<version>/`.
public enum BuildpackVersion {
    /// Checks that a version can name a directory: not empty, not `.` or `..`, no `/`, no NUL.
    /// (The spec asks for `X.Y.Z`, but the reference lifecycle accepts any string; see `isSemantic`.)
    public static func validate(_ version: String, file: String? = nil, keyPath: String? = nil,
                                buildpack: String? = nil) throws(SpecError)
    {
        if version.isEmpty || version == "." || version == ".." || version.contains("/") || version.utf8.contains(0) {
            throw SpecError(.invalidValue, "\(quoted(version)) is not a usable buildpack version",
                            file: file, keyPath: keyPath, buildpack: buildpack)
        }
    }

    /// Whether `version` has the spec's form `X.Y.Z` (non-negative integers without leading zeros).
    public static func isSemantic(_ version: String) -> Bool {
        let parts = version.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return false }
        return parts.allSatisfy { part in
            !part.isEmpty && part.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } && (part == "0" || part.first != "0")
        }
    }
}

/// Rules for layer names: the name of `<layers>/<buildpack>/<name>/` and `<name>.toml`.
public enum LayerName {
    /// Names that collide with the buildpack's own metadata files (`launch.toml`, `build.toml`, `store.toml`).
    public static let reserved: Set<String> = ["launch", "build", "store"]

    /// Checks a layer name: not empty, not `.` or `..`, no `/` or NUL, not reserved.
    public static func validate(_ name: String, file: String? = nil, buildpack: String? = nil) throws(SpecError) {
        func invalid(_ why: String) -> SpecError {
            SpecError(.invalidValue, "\(quoted(name)) is not a valid layer name: \(why)", file: file, buildpack: buildpack)
        }
        if name.isEmpty { throw invalid("it is empty") }
        if name == "." || name == ".." { throw invalid("it would name the buildpack directory or its parent") }
        if name.contains("/") { throw invalid("it contains \"/\"") }
        if name.utf8.contains(0) { throw invalid("it contains a NUL byte") }
        if reserved.contains(name) { throw invalid("it is reserved for \(name).toml") }
    }

    /// The layer a `<name>.toml` file describes, or `nil` if the file name does not end in `.toml`.
    /// The name is not validated (`..toml` gives `.`).
    public static func fromMetadataFileName(_ fileName: String) -> String? {
        guard fileName.hasSuffix(".toml") else { return nil }
        return String(decoding: fileName.utf8.dropLast(5), as: UTF8.self)
    }
}

/// Rules for process types (`[[processes]] type`), which name `/cnb/process/<type>`.
public enum ProcessType {
    /// Checks a process type: letters, digits, `.`, `_` and `-` only; not empty, not `.` or `..`.
    public static func validate(_ type: String, file: String? = nil, keyPath: String? = nil,
                                buildpack: String? = nil) throws(SpecError)
    {
        let invalid = try checkCharacters(type, "process type", punctuation: "._-", file: file, keyPath: keyPath, buildpack: buildpack)
        if type == "." || type == ".." { throw invalid("it would name a directory") }
    }
}

/// Throws unless `name` (a `kind`) is not empty and holds only ASCII letters, digits and
/// `punctuation`; returns how to say what else is wrong with it, where the caller found it.
private func checkCharacters(_ name: String, _ kind: String, punctuation: String, file: String?, keyPath: String?,
                             buildpack: String?) throws(SpecError) -> (String) -> SpecError {
    let invalid = { (why: String) in
        SpecError(.invalidValue, "\(quoted(name)) is not a valid \(kind): \(why)", file: file, keyPath: keyPath, buildpack: buildpack)
    }
    if name.isEmpty { throw invalid("it is empty") }
    for b in name.utf8 where !(isASCIILetterOrDigit(b) || punctuation.utf8.contains(b)) {
        let listed = punctuation.map { "\"\($0)\"" }
        throw invalid("only letters, digits, " + listed.dropLast().joined(separator: ", ") + " and " + listed.last! + " are allowed")
    }
    return invalid
}

func isASCIILetterOrDigit(_ b: UInt8) -> Bool {
    (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39)
}

/// A string quoted for a message, with control characters escaped and at most 200 characters.
func quoted(_ s: String) -> String { "\"" + printable(s) + "\"" }

/// A string for a message without its quotes: control characters escaped, at most 200 characters.
func printable(_ s: String) -> String {
    let escaped = String(TOMLWriter.renderString(s).dropFirst().dropLast())
    return escaped.count > 200 ? String(escaped.prefix(200)) + "…" : escaped
}
