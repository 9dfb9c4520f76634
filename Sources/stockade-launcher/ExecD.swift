import BuildpackSpec
import Glibc
import SystemCalls
import SystemPackage

/// Runs the layers' `exec.d` programs (§8): per buildpack and layer, the files of `exec.d/`, then of
/// `exec.d/<type>/`, by name. Each runs with the current environment, the app directory as working
/// directory, stdin `/dev/null` and fd 3 the write end of a pipe; what it writes there is TOML whose
/// top-level `NAME = "value"` pairs override the environment before the next program runs.
struct ExecD {
    /// The most a program may write on fd 3.
    static let outputLimit = 1 << 20

    let root: ConfinedDirectory
    let appDirectory: String

    func run(_ buildpacks: [BuildpackLaunchLayers], processType: String?,
             environment: inout Environment) throws
    {
        for buildpack in buildpacks {
            for layer in buildpack.layers {
                var directories = [layer + "/exec.d"]
                if let processType { directories.append(layer + "/exec.d/" + processType) }
                for directory in directories {
                    for program in try programs(in: directory, buildpack: buildpack.buildpack) {
                        for (name, value) in try execute(program, environment: environment) {
                            environment[name] = value
                        }
                    }
                }
            }
        }
    }

    /// The regular files of an exec.d directory (relative paths), by name; subdirectories are skipped.
    /// Anything else (a symbolic link, a FIFO) is an error rather than something run or silently skipped.
    private func programs(in directory: String, buildpack: String) throws(SpecError) -> [String] {
        guard try root.kind(of: directory) != nil else { return [] }
        var out: [String] = []
        for entry in try root.entries(directory) {
            let path = directory + "/" + entry.name
            guard entry.hasValidName else {
                throw SpecError(.invalidValue, "an exec.d file name is not valid UTF-8",
                                file: root.displayPath(path), buildpack: buildpack)
            }
            switch entry.kind {
            case .directory: continue
            case .regular: out.append(path)
            case .symlink:
                throw SpecError(.notRegularFile, "is a symbolic link, which is not followed",
                                file: root.displayPath(path), buildpack: buildpack)
            default:
                throw SpecError(.notRegularFile, "is not a regular file (\(entry.kind.rawValue)); exec.d runs only regular files",
                                file: root.displayPath(path), buildpack: buildpack)
            }
        }
        return out
    }

    /// Runs one program and returns the variables it set.
    ///
    /// It is run by path: the image is read-only at launch and the launcher is its first process, so the
    /// entry checked above is the one executed.
    private func execute(_ relative: String, environment: Environment) throws -> [(String, String)] {
        let path = root.displayPath(relative)
        guard chdir(appDirectory) == 0 else {
            throw LaunchError("cannot change to the app directory \(appDirectory) for \(path): \(LaunchError.reason(errno))")
        }
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else {
            throw LaunchError("cannot create a pipe for \(path): \(LaunchError.reason(errno))")
        }
        // Both ends move above the standard descriptors, close-on-exec (the launcher has one thread, so no
        // other spawn can inherit them meanwhile; Glibc hides pipe2), so that dup2(write end, 3) below is
        // never dup2(3, 3), which would leave fd 3 close-on-exec.
        let readEnd = fcntl(pipeEnds[0], F_DUPFD_CLOEXEC, 10)
        let writeEnd = fcntl(pipeEnds[1], F_DUPFD_CLOEXEC, 10)
        close(pipeEnds[0])
        close(pipeEnds[1])
        guard readEnd >= 0, writeEnd >= 0 else {
            let err = errno
            if readEnd >= 0 { close(readEnd) }
            if writeEnd >= 0 { close(writeEnd) }
            throw LaunchError("cannot create a pipe for \(path): \(LaunchError.reason(err))")
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 3)

        var pid: pid_t = 0
        let spawned = CStrings([path]).withPointers { argv in
            CStrings(environment.envp).withPointers { envp in
                posix_spawn(&pid, path, &actions, nil, argv, envp)
            }
        }
        close(writeEnd)
        guard spawned == 0 else {
            close(readEnd)
            throw LaunchError("cannot run \(path): \(LaunchError.reason(spawned))")
        }
        // Read to end of file before waiting, so a program that fills the pipe cannot block forever;
        // past the limit, closing the read end turns its further writes into EPIPE.
        let read = Result { () throws(Errno) in try FileDescriptor(rawValue: readEnd).readAll(limit: Self.outputLimit) }
        close(readEnd)
        // A read error (a pipe has none to give in practice) counts as no output.
        let (output, tooLarge) = (try? read.get()) ?? ([], false)
        let status = try Self.wait(for: pid, path: path)
        // Too much output first: it is the cause when the program then dies of SIGPIPE.
        if tooLarge { throw LaunchError("\(path) wrote more than \(Self.outputLimit) bytes on fd 3") }
        if status.signal != 0 { throw LaunchError("\(path) was killed by signal \(status.signal)") }
        if status.code != 0 { throw LaunchError("\(path) exited with \(status.code)") }

        let table = try TOML.parse(output, file: "the output of \(path) on fd 3")
        var variables: [(String, String)] = []
        for (name, value) in table.sortedEntries {
            guard EnvironmentVariableName.isUsable(name) else {
                throw LaunchError("\(path) set \"\(name)\" on fd 3, which cannot be an environment variable name")
            }
            guard case .string(let text) = value else {
                throw LaunchError("\(path) set \(name) to \(value.typeDescription) on fd 3; values must be strings")
            }
            variables.append((name, text))
        }
        return variables
    }

    /// Waits for `pid`; its exit code, or the signal that killed it.
    private static func wait(for pid: pid_t, path: String) throws(LaunchError) -> (code: Int32, signal: Int32) {
        var status: Int32 = 0
        if case .failure(let error) = systemCall({ waitpid(pid, &status, 0) }) {
            throw LaunchError("cannot wait for \(path): \(error)")
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which are macros Swift does not import.
        let signal = status & 0x7F
        return signal == 0 ? ((status >> 8) & 0xFF, 0) : (0, signal)
    }
}
