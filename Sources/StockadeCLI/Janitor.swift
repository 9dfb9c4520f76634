import ArgumentParser
import CLinux
import CrashSafety
import Glibc
import OCI
import Sandbox
import SystemCalls

/// `stockade janitor`, hidden: a lifecycle run starts it with its cleanup journal as stdin.
/// It outlives a SIGKILL of the run; when the journal closes without `finished`, it waits for
/// the run's sandboxes to die and removes what the run recorded, newest first.
struct Janitor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "janitor", abstract: "Cleans up after a lifecycle run that died (started by the run).",
        shouldDisplay: false)

    @Option(help: ArgumentHelp("The run's stack user.", valueName: "uid:gid"))
    var user: String

    /// How long sandboxes get to die after their supervisor: PR_SET_PDEATHSIG kills them at
    /// once, so this only bounds a pid that was reused before the janitor opened it.
    static let sandboxGraceMilliseconds: Int32 = 30_000

    func run() throws {
        try Self.serve(user: user)
    }

    /// The line a run starts it with, `janitor --user UID:GID`, without the argument parser:
    /// every lifecycle run starts one, and building the command tree was most of its start.
    static func fastPath(_ arguments: ArraySlice<String>) -> String? {
        let words = Array(arguments)
        return words.count == 3 && words[0] == "janitor" && words[1] == "--user" ? words[2] : nil
    }

    static func serve(user text: String) throws {
        let user = try StackUser.option(text)
        var entries: [(kind: CleanupJournal.Kind, path: String)] = []
        var sandboxes: [pid_t: Int32] = [:]
        var finished = false
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = (try? systemCall({ buffer.withUnsafeMutableBytes { recv(STDIN_FILENO, $0.baseAddress, $0.count, 0) } }).get()) ?? -1
            if n <= 0 { break }
            guard let kind = CleanupJournal.Kind(rawValue: buffer[0]) else { continue }
            let text = String(decoding: buffer[1..<n], as: UTF8.self)
            switch kind {
            case .finished:
                finished = true
            case .sandbox:
                if let pid = pid_t(text) {
                    let fd = clinux_pidfd_open(pid)
                    if fd >= 0 { sandboxes[pid] = fd }
                }
            case .sandboxEnded:
                if let pid = pid_t(text), let fd = sandboxes.removeValue(forKey: pid) { close(fd) }
            case .forget:
                if let i = entries.lastIndex(where: { $0.path == text }) { entries.remove(at: i) }
            case .tree, .file, .cgroup, .layout:
                entries.append((kind, text))
            }
        }
        if finished { return }
        Self.waitForExit(Array(sandboxes.values))
        for entry in entries.reversed() {
            do {
                try Self.remove(entry.kind, entry.path, user: user)
            } catch {
                complain("after the run was killed, \(entry.path) remains: \(error)", level: "warning")
            }
        }
    }

    static func waitForExit(_ pidfds: [Int32]) {
        var fds = pidfds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        var remaining = sandboxGraceMilliseconds
        while !fds.isEmpty && remaining > 0 {
            let started = monotonicMilliseconds()
            let n = poll(&fds, nfds_t(fds.count), remaining)
            if n < 0 && errno != EINTR { return }
            fds.removeAll { $0.revents != 0 }
            remaining -= Int32(monotonicMilliseconds() - started)
        }
    }

    /// Only what this invoker owns, never through a link: a path another user made in its place
    /// (the journal records paths before they exist) is left alone.
    static func remove(_ kind: CleanupJournal.Kind, _ path: String, user: StackUser) throws {
        var st = stat()
        guard lstat(path, &st) == 0, st.st_uid == geteuid() else { return }
        let type = st.st_mode & S_IFMT
        switch kind {
        case .file where type == S_IFREG:
            if unlink(path) != 0 && errno != ENOENT { throw SandboxError(.system, "unlink \(path)", errno: errno) }
        case .tree where type == S_IFDIR:
            try StackUserFiles.removeTree(path, for: user)
        case .layout where type == S_IFDIR:
            // Complete once a tag is in: then it is the run's output, and stays.
            if let tags = try? ImageLayout.open(path).tags(), !tags.isEmpty { return }
            try StackUserFiles.removeTree(path, for: user)
        case .cgroup where type == S_IFDIR:
            try removeCgroup(path)
        default:
            return
        }
    }

    /// rmdir once the cgroup's last process is gone (the kernel empties it asynchronously).
    static func removeCgroup(_ path: String) throws {
        for _ in 0..<1000 {
            if rmdir(path) == 0 || errno == ENOENT { return }
            guard errno == EBUSY else { break }
            usleep(10_000)
        }
        throw SandboxError(.system, "rmdir \(path)", errno: errno)
    }
}

extension CleanupJournal {
    /// Starts `stockade janitor` for a lifecycle run whose stack user is `user`.
    static func startJanitor(for user: StackUser) throws(JournalError) {
        try startJanitor(executable: "/proc/self/exe", argv: ["stockade", "janitor", "--user", "\(user.uid):\(user.gid)"])
    }
}
