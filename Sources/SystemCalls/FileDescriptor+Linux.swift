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
        return FileDescriptor(rawValue: try systemCall { clinux_openat2(rawValue, path, &how) }.get())
    }

    /// Gives this `O_TMPFILE` file the name `name` in `directory`: it appears whole or not at all.
    public func linkTemporaryFile(as name: String, in directory: FileDescriptor) throws(Errno) {
        _ = try systemCall {
            linkat(AT_FDCWD, "/proc/self/fd/\(rawValue)", directory.rawValue, name, AT_SYMLINK_FOLLOW)
        }.get()
    }
}
