import CLinux
import Glibc
import SystemPackage

extension FileDescriptor {
    /// `openat2(2)` from this directory: `resolve` confines the walk (`RESOLVE_IN_ROOT`,
    /// `RESOLVE_BENEATH`, `RESOLVE_NO_SYMLINKS`, ...), which swift-system has no call for.
    public func openat2(_ path: String, flags: Int32, mode: mode_t = 0, resolve: Int32) throws(Errno) -> FileDescriptor {
        var how = open_how()
        how.flags = UInt64(UInt32(bitPattern: flags))
        how.mode = UInt64(mode)
        how.resolve = UInt64(resolve)
        // A confined walk that meets `..` while a rename or mount happened anywhere on the system
        // fails with EAGAIN: the kernel cannot prove the `..` stayed inside, and openat2(2) says to
        // retry. Bounded, so a machine renaming without pause still gets an answer. Under
        // RESOLVE_CACHED, EAGAIN means "not cached", which no retry changes.
        var retries = 0
        while true {
            switch systemCall({ clinux_openat2(rawValue, path, &how) }) {
            case .success(let opened): return FileDescriptor(rawValue: opened)
            case .failure(.resourceTemporarilyUnavailable) where retries < Self.openat2Retries && resolve & RESOLVE_CACHED == 0:
                retries += 1
            case .failure(let error): throw error
            }
        }
    }

    /// How often a raced openat2 is tried again before its EAGAIN is reported.
    static let openat2Retries = 64

    /// Gives this `O_TMPFILE` file the name `name` in `directory`: it appears whole or not at all.
    public func linkTemporaryFile(as name: String, in directory: FileDescriptor) throws(Errno) {
        _ = try systemCall {
            linkat(AT_FDCWD, "/proc/self/fd/\(rawValue)", directory.rawValue, name, AT_SYMLINK_FOLLOW)
        }.get()
    }
}
