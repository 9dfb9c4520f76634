import BuildpackSpec
import Glibc

/// Replaces the launcher with the process: no fork, so the process gets the launcher's pid, signals and
/// exit status.
enum ProcessImage {
    /// `chdir(workingDirectory)`, look `argv[0]` up on the environment's PATH unless it has a `/`, then
    /// `execve`. Returns only by throwing.
    static func replace(_ argv: [String], environment: Environment, workingDirectory: String,
                        missing: String? = nil) throws(LaunchError) -> Never
    {
        guard let name = argv.first, !name.isEmpty else { throw LaunchError("the command is empty") }
        guard chdir(workingDirectory) == 0 else {
            throw LaunchError("cannot change to the working directory \(workingDirectory): \(LaunchError.reason(errno))")
        }
        guard let path = lookUp(name, path: environment["PATH"] ?? "") else {
            throw LaunchError(missing ?? "cannot run \(name): not found on PATH")
        }
        let err = CStrings(argv).withPointers { argv in
            CStrings(environment.envp).withPointers { envp in
                _ = execve(path, argv, envp)
                return errno
            }
        }
        throw LaunchError("cannot run \(name): \(LaunchError.reason(err))")
    }

    /// `name` itself if it contains a `/`; otherwise the first executable regular file `<dir>/<name>` on
    /// PATH, an empty entry meaning the working directory (as in `execvp`).
    static func lookUp(_ name: String, path: String) -> String? {
        if name.contains("/") { return name }
        for entry in path.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (entry.isEmpty ? "." : String(entry)) + "/" + name
            var st = stat()
            if stat(candidate, &st) == 0, st.st_mode & S_IFMT == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }
}

/// Strings as a NULL-terminated `char *[]` for `execve` and `posix_spawn`.
struct CStrings {
    let strings: [String]
    init(_ strings: [String]) { self.strings = strings }

    func withPointers<R>(_ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        // strdup never fails short of memory exhaustion, where the launcher cannot go on anyway.
        let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
