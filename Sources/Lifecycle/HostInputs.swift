import BuildpackSpec
import CrashSafety
import Glibc
import OCI
import SystemCalls
import SystemPackage

/// What the platform's user points at on the host (directories, documents, the process
/// environment), checked before any phase runs: a wrong path is one clear error.
public enum HostInputs {
    /// `path` resolved, when it is a directory.
    public static func directory(_ path: String, what: String) throws(LifecycleError) -> String {
        guard let resolved = realpath(path, nil) else {
            throw LifecycleError("\(what) \(path) does not exist", exitCode: LifecycleError.Code.missingPath)
        }
        defer { free(resolved) }
        var st = stat()
        guard stat(resolved, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            throw LifecycleError("\(what) \(path) is not a directory", exitCode: LifecycleError.Code.missingPath)
        }
        return String(cString: resolved)
    }

    /// An existing file's resolved directory and name.
    public static func file(_ path: String) throws(LifecycleError) -> (directory: String, name: String) {
        guard let resolved = realpath(path, nil) else {
            throw LifecycleError("\(path) does not exist", exitCode: LifecycleError.Code.missingPath)
        }
        defer { free(resolved) }
        let full = String(cString: resolved)
        let slash = full.lastIndex(of: "/")!
        return (full[..<slash].isEmpty ? "/" : String(full[..<slash]), String(full[full.index(after: slash)...]))
    }

    /// `path` relative to the directory `base`, when it lies inside it.
    public static func relative(_ path: String, to base: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        let full = String(cString: resolved)
        return full.hasPrefix(base + "/") ? String(full.dropFirst(base.count + 1)) : nil
    }

    /// A document in a trusted directory; a bad one is an invalid argument.
    public static func document<T: TOMLDecodable>(_ type: T.Type, in directory: String, name: String,
                                                  required: Bool = false) throws(LifecycleError) -> T? {
        do {
            let dir = try ConfinedDirectory(path: directory)
            return required ? try T.read(from: dir, at: name) : try T.readIfPresent(from: dir, at: name)
        } catch {
            throw LifecycleError.from(error, phaseCode: LifecycleError.Code.invalidArguments)
        }
    }

    /// Where scratch directories go: `$TMPDIR`, else /tmp.
    public static var scratchBase: String { getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp" }

    /// A private directory in `$TMPDIR`, in the cleanup journal before it exists.
    public static func makeScratch() throws(LifecycleError) -> String {
        do {
            return try CleanupJournal.makeTemporaryDirectory(in: scratchBase)
        } catch {
            throw LifecycleError("\(error)", exitCode: LifecycleError.Code.system)
        }
    }

    public static func processEnvironment() -> [String] {
        var entries: [String] = []
        var p = environ
        while let entry = p.pointee { entries.append(String(cString: entry)); p += 1 }
        return entries
    }

    /// linux/<arch> and the build image's distribution from its os-release.
    public static func target(rootfs: String?) -> TargetPlatform {
        var distro: Distro?
        let root = rootfs ?? ""
        for candidate in [root + "/etc/os-release", root + "/usr/lib/os-release"] {
            guard let text = HostText.read(candidate) else { continue }
            var fields: [String: String] = [:]
            for line in text.split(separator: "\n") {
                guard let eq = line.firstIndex(of: "=") else { continue }
                var value = line[line.index(after: eq)...]
                while value.first == "\"" { value = value.dropFirst() }
                while value.last == "\"" { value = value.dropLast() }
                fields[String(line[..<eq])] = String(value)
            }
            distro = Distro(name: fields["ID"] ?? "", version: fields["VERSION_ID"] ?? "")
            break
        }
        return TargetPlatform(os: "linux", arch: ImageLayout.hostArchitecture, distro: distro)
    }

    /// `SOURCE_DATE_EPOCH` as the image's creation time, when it is set.
    public static func sourceDateEpoch() throws(LifecycleError) -> String? {
        guard let value = getenv("SOURCE_DATE_EPOCH").map({ String(cString: $0) }), !value.isEmpty else { return nil }
        guard let created = Exporter.timestamp(sourceDateEpoch: value) else {
            throw LifecycleError("SOURCE_DATE_EPOCH=\(value) is not a number of seconds", exitCode: LifecycleError.Code.usage)
        }
        return created
    }

    /// The static launcher that goes into images: `$STOCKADE_LAUNCHER`, else `stockade-launcher` beside
    /// this binary, else `launcher` beside it as a builder image's `/cnb/lifecycle/` holds it (never
    /// this binary itself under that name, which would exec itself for ever).
    public static func launcherPath() throws(LifecycleError) -> String {
        if let given = getenv("STOCKADE_LAUNCHER") { return String(cString: given) }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { throw LifecycleError("cannot find the stockade binary", exitCode: LifecycleError.Code.system) }
        let exe = String(cString: buffer)
        let directory = String(exe[..<exe.lastIndex(of: "/")!])
        let path = directory + "/stockade-launcher"
        var own = stat(), other = stat()
        if access(path, X_OK) != 0, access(directory + "/launcher", X_OK) == 0,
           stat("/proc/self/exe", &own) == 0, stat(directory + "/launcher", &other) == 0,
           own.st_dev != other.st_dev || own.st_ino != other.st_ino {
            return directory + "/launcher"
        }
        guard access(path, X_OK) == 0 else {
            throw LifecycleError("the launcher \(path) is missing: build it with `swift build --product stockade-launcher`",
                                 exitCode: LifecycleError.Code.missingPath)
        }
        return path
    }
}

/// Small host text files the user points at (env files, os-release, the configuration).
public enum HostText {
    public static func read(_ path: String, limit: Int = 1 << 20) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard let read = try? FileDescriptor(rawValue: fd).readAll(limit: limit, chunk: 8192), !read.exceeded else { return nil }
        return String(decoding: read.bytes, as: UTF8.self)
    }
}
