import Glibc
import SystemPackage

/// What swift-system (`FileDescriptor`, `Errno`, `FilePath`) lacks and every module needs: one place
/// that turns `-1`/errno into a typed `Errno`, with retry on EINTR as an explicit choice, as
/// swift-system's own internals do. Modules call the kernel through this and swift-system only.
@inlinable
public func systemCall<Value: FixedWidthInteger>(retryOnInterrupt: Bool = true, _ call: () -> Value) -> Result<Value, Errno> {
    while true {
        let value = call()
        if value != -1 { return .success(value) }
        let error = Errno(rawValue: Glibc.errno)
        if retryOnInterrupt && error == .interrupted { continue }
        return .failure(error)
    }
}

extension Errno {
    /// The current thread's `errno`.
    public static var current: Errno { Errno(rawValue: Glibc.errno) }
}

/// Linux flag values the Glibc module does not export (they sit behind `_GNU_SOURCE`).
/// The same on every Linux architecture Swift supports (x86_64, aarch64).
public enum LinuxFlags {
    public static let O_PATH: Int32 = 0o10000000
    public static let O_TMPFILE: Int32 = 0o20200000
    public static let AT_EMPTY_PATH: Int32 = 0x1000
}

/// The search path a process gets when nothing sets one: the same list Docker, runc and the
/// reference lifecycle use.
public enum SearchPath {
    public static let `default` = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

/// The process's working directory, however long (getcwd(3) allocates what it needs).
public func currentDirectory() throws(Errno) -> String {
    guard let path = getcwd(nil, 0) else { throw Errno.current }
    defer { free(path) }
    return String(cString: path)
}

/// `path` made absolute against the working directory; as given when it is absolute already or
/// the working directory cannot be had (then it still names the same file, relative).
public func absolutePath(_ path: String) -> String {
    guard !path.hasPrefix("/"), let directory = try? currentDirectory() else { return path }
    return directory + "/" + path
}
