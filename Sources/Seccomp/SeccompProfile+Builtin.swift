import Glibc
import JSON
import SystemCalls
import SystemPackage

extension SeccompProfile {
    /// The profiles compiled into the binary, by name, from `profiles/*.json`.
    public static var builtinNames: [String] { BuiltinProfiles.sources.map(\.name) }

    /// A built-in profile (`default` for builds, `strict` for detection), or nil for another name.
    public static func builtin(_ name: String) -> SeccompProfile? {
        guard let source = BuiltinProfiles.sources.first(where: { $0.name == name }) else { return nil }
        do {
            return try parse(Array(source.json.utf8), origin: "builtin:\(name)")
        } catch {
            // The tests parse every built-in profile; reaching this is a build defect.
            fatalError("\(error)")
        }
    }

    /// Resolves the argument of `--profile`: a name without `/` that does not end in `.json`
    /// is a built-in profile; anything else is a file path. (`unconfined` is the caller's to
    /// handle: it means no filter at all, not a profile.)
    public static func resolve(_ argument: String) throws(SeccompProfileError) -> SeccompProfile {
        let source = try ProfileSource.resolve(argument)
        return try parse(source.bytes, origin: source.origin)
    }

    /// Reads and parses a profile file. Files over 1 MiB are refused before parsing.
    public static func load(path: String) throws(SeccompProfileError) -> SeccompProfile {
        let source = try ProfileSource.file(path)
        return try parse(source.bytes, origin: source.origin)
    }
}

/// A profile's exact text and where it came from: what a compiled filter is cached under.
public struct ProfileSource: Sendable, Equatable {
    /// The file path, or `builtin:NAME`.
    public let origin: String
    public let bytes: [UInt8]

    /// The rule of `--profile`: a name without `/` that does not end in `.json` is built in.
    public static func resolve(_ argument: String) throws(SeccompProfileError) -> ProfileSource {
        guard !argument.contains("/") && !argument.hasSuffix(".json") else { return try file(argument) }
        guard let source = BuiltinProfiles.sources.first(where: { $0.name == argument }) else {
            throw SeccompProfileError(
                origin: argument, location: .file,
                reason: "no built-in profile of that name (built-in: \(SeccompProfile.builtinNames.joined(separator: ", ")); "
                    + "write ./\(argument) for a file)")
        }
        return ProfileSource(origin: "builtin:\(argument)", bytes: Array(source.json.utf8))
    }

    /// A profile file, read whole; over 1 MiB is refused without reading it all.
    public static func file(_ path: String) throws(SeccompProfileError) -> ProfileSource {
        func failure(_ what: String, _ error: Errno) -> SeccompProfileError {
            SeccompProfileError(origin: path, location: .file, reason: "cannot \(what): \(error)")
        }
        let fd: FileDescriptor
        switch systemCall({ open(path, O_RDONLY | O_CLOEXEC) }) {
        case .success(let raw): fd = FileDescriptor(rawValue: raw)
        case .failure(let error): throw failure("open", error)
        }
        defer { try? fd.close() }
        var st = stat()
        if case .failure(let error) = systemCall({ fstat(fd.rawValue, &st) }) { throw failure("stat", error) }
        let limit = JSONParser.maxInputBytes
        func tooLarge() -> SeccompProfileError {
            SeccompProfileError(origin: path, location: .file, reason: "larger than \(limit) bytes; not a seccomp profile")
        }
        guard Int(st.st_size) <= limit else { throw tooLarge() }
        // Sized by fstat (a regular file) or in chunks (a pipe), never by the limit.
        let read: (bytes: [UInt8], exceeded: Bool)
        do {
            read = try fd.readAll(limit: limit, chunk: max(Int(st.st_size) + 1, 4096))
        } catch {
            throw failure("read", error)
        }
        guard !read.exceeded else { throw tooLarge() }
        return ProfileSource(origin: path, bytes: read.bytes)
    }

    /// Whether `argument` names a file that does not exist (as opposed to a bad one).
    public static func isMissingFile(_ argument: String) -> Bool {
        (argument.contains("/") || argument.hasSuffix(".json")) && access(argument, F_OK) != 0
    }
}
