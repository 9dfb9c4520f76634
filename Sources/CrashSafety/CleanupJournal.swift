import Glibc
import Synchronization
import SystemCalls
import SystemPackage

/// A write-ahead journal of what a run creates that must not outlive it, kept by a janitor
/// process (`stockade janitor`) that survives a SIGKILL of the run. Every path is recorded before
/// it is created; when the run ends with `finished()`, the janitor does nothing; when the socket
/// closes without it (the run died), the janitor waits for the run's sandboxes to die and
/// removes what is recorded. Without a janitor (`stockade exec`, `export`) every call is a no-op.
///
/// One record per `send` on a SOCK_SEQPACKET socket: records keep their boundaries, arrive
/// whole from any thread, and a dead janitor gives EPIPE without a SIGPIPE.
public enum CleanupJournal {
    public enum Kind: UInt8, Sendable {
        /// A directory tree, possibly holding the stack user's files.
        case tree = 0x54  // T
        /// One file.
        case file = 0x46  // F
        /// A cgroup directory: removed with rmdir once its processes are gone.
        case cgroup = 0x43  // C
        /// An image layout this run created: removed if no tag was written into it.
        case layout = 0x4C  // L
        /// A sandbox's pid 1 (decimal): waited for before anything is removed.
        case sandbox = 0x53  // S
        /// The sandbox has been reaped.
        case sandboxEnded = 0x45  // E
        /// The path is dealt with (removed, or complete and kept).
        case forget = 0x2D  // -
        /// The run ends normally and has cleaned up itself.
        case finished = 0x44  // D
    }

    private static let socket = Mutex<Int32>(-1)

    /// Starts the janitor: `executable` with `argv`, its stdin the journal's socket, in a
    /// session of its own (a kill of the run's process group does not reach it).
    public static func startJanitor(executable: String, argv: [String]) throws(JournalError) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw JournalError("socketpair", errno: errno)
        }
        defer { close(fds[1]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDIN_FILENO)
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0)
        closeInheritedDescriptors(&actions)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        // glibc's POSIX_SPAWN_SETSID, which Swift's Glibc module hides behind _GNU_SOURCE.
        let setsid: Int32 = 0x80
        posix_spawnattr_setflags(&attributes, Int16(setsid | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let cArgv = argv.map { strdup($0) } + [nil]
        defer { cArgv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, cArgv, environ)
        guard rc == 0 else {
            close(fds[0])
            throw JournalError("cannot start \(executable) janitor", errno: rc)
        }
        socket.withLock { $0 = fds[0] }
    }

    /// Records that `path` is about to be created (or, for `.forget`, is dealt with).
    public static func record(_ kind: Kind, _ path: String) {
        send(kind, absolutePath(path))
    }

    public static func sandboxStarted(_ pid: pid_t) { send(.sandbox, String(pid)) }
    public static func sandboxEnded(_ pid: pid_t) { send(.sandboxEnded, String(pid)) }

    /// The run cleaned up after itself: the janitor exits without touching anything.
    public static func finished() {
        send(.finished, "")
        socket.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    /// A new private directory `<base>/stockade-<random>`, recorded before it exists.
    public static func makeTemporaryDirectory(in base: String) throws(JournalError) -> String {
        while true {
            let random = UInt64.random(in: .min ... .max)
            let hex = String(random, radix: 16)
            let path = base + "/stockade-" + String(repeating: "0", count: 16 - hex.count) + hex
            record(.tree, path)
            if mkdir(path, 0o700) == 0 { return path }
            let err = errno
            record(.forget, path)
            guard err == EEXIST else { throw JournalError("cannot create a temporary directory in \(base)", errno: err) }
        }
    }

    private static func send(_ kind: Kind, _ text: String) {
        socket.withLock { fd in
            guard fd >= 0 else { return }
            let bytes = [kind.rawValue] + Array(text.utf8)
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
    }
}

public struct JournalError: Error, CustomStringConvertible {
    public let message: String
    public let errno: Int32
    init(_ message: String, errno: Int32) {
        self.message = message
        self.errno = errno
    }
    public var description: String { "\(message): \(Errno(rawValue: errno))" }
}
