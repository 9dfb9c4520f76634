import Glibc
import SystemPackage

/// The entries of an open directory, without `.` and `..`: the one readdir loop.
public struct DirectoryEntry: Sendable, Equatable {
    /// The name as the file system has it: any bytes but `/` and NUL, not necessarily UTF-8.
    public var bytes: [UInt8]
    /// `d_type` (`DT_REG`, `DT_DIR`, ...; `DT_UNKNOWN` where the file system does not say).
    public var type: UInt8
    /// The name, with any bytes that are not UTF-8 replaced (for paths and messages).
    public var name: String { String(decoding: bytes, as: UTF8.self) }

    public init(bytes: [UInt8], type: UInt8) {
        self.bytes = bytes
        self.type = type
    }
}

extension FileDescriptor {
    /// The entries of the directory open here (this descriptor stays open and is not moved), in
    /// byte order of name, so whatever walks them is deterministic. At most `limit` entries: past
    /// it, `Errno.fileTooLarge` (EFBIG), since a directory that large is someone's attack.
    public func directoryEntries(limit: Int = .max) throws(Errno) -> [DirectoryEntry] {
        let copy = try systemCall { Glibc.dup(rawValue) }.get()
        guard let stream = fdopendir(copy) else {
            let error = Errno.current
            _ = Glibc.close(copy)
            throw error
        }
        defer { closedir(stream) }
        // Reading from the start, whatever an earlier reader of this descriptor left.
        rewinddir(stream)
        let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        var entries: [DirectoryEntry] = []
        while true {
            Glibc.errno = 0
            guard let entry = readdir(stream) else {
                if Glibc.errno != 0 { throw Errno.current }
                break
            }
            // d_name through a pointer: the record may be shorter than `sizeof(struct dirent)`.
            let name = (UnsafeRawPointer(entry) + nameOffset).assumingMemoryBound(to: CChar.self)
            let bytes = Array(UnsafeRawBufferPointer(start: name, count: strlen(name)))
            if bytes == [0x2E] || bytes == [0x2E, 0x2E] { continue }
            guard entries.count < limit else { throw Errno.fileTooLarge }
            entries.append(DirectoryEntry(bytes: bytes, type: entry.pointee.d_type))
        }
        entries.sort { $0.bytes.lexicographicallyPrecedes($1.bytes) }
        return entries
    }
}
