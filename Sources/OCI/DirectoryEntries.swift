import Glibc

/// The entries of an open directory (its descriptor stays open), without `.` and `..`, in byte
/// order of name: the one readdir loop of the module.
struct DirectoryEntries {
    struct Entry {
        var bytes: [UInt8]
        var type: UInt8
        /// The name, with any bytes that are not UTF-8 replaced (for paths and messages).
        var name: String { String(decoding: bytes, as: UTF8.self) }
    }

    static func read(_ directory: Int32, path: String) throws(OCIError) -> [Entry] {
        let copy = dup(directory)
        guard copy >= 0, let stream = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            throw OCIError.system("opendir", path)
        }
        defer { closedir(stream) }
        var entries: [Entry] = []
        while let entry = readdir(stream) {
            let bytes = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if bytes == [0x2E] || bytes == [0x2E, 0x2E] { continue }
            entries.append(Entry(bytes: bytes, type: entry.pointee.d_type))
        }
        entries.sort { $0.bytes.lexicographicallyPrecedes($1.bytes) }
        return entries
    }
}
