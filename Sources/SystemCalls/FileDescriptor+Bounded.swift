import Glibc
import SystemPackage

extension FileDescriptor {
    /// Reads to end of file, or until more than `limit` bytes have arrived (then `exceeded` is true
    /// and `bytes` holds what arrived so far): hostile files and pipes never get an unbounded buffer.
    public func readAll(limit: Int, chunk: Int = 64 << 10) throws(Errno) -> (bytes: [UInt8], exceeded: Bool) {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let n = try buffer.withUnsafeMutableBytes { raw in
                systemCall { Glibc.read(rawValue, raw.baseAddress, raw.count) }
            }.get()
            if n == 0 { return (bytes, false) }
            bytes += buffer[0..<n]
            if bytes.count > limit { return (bytes, true) }
        }
    }

    /// Writes every byte, through short writes and EINTR.
    public func writeAll(_ bytes: UnsafeRawBufferPointer) throws(Errno) {
        var offset = 0
        while offset < bytes.count {
            offset += try systemCall { Glibc.write(rawValue, bytes.baseAddress! + offset, bytes.count - offset) }.get()
        }
    }

    /// Writes every byte, through short writes and EINTR.
    public func writeAll(_ bytes: [UInt8]) throws(Errno) {
        try bytes.withUnsafeBytes { raw in Result { () throws(Errno) in try writeAll(raw) } }.get()
    }

    /// Writes every byte at `position`, through short writes and EINTR.
    public func writeAll(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws(Errno) {
        var offset = 0
        while offset < bytes.count {
            offset += try systemCall {
                Glibc.pwrite(rawValue, bytes.baseAddress! + offset, bytes.count - offset, off_t(position) + off_t(offset))
            }.get()
        }
    }
}
