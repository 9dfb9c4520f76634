import Glibc
import OCI

/// What a pull or push reports as blobs move.
public protocol TransferProgress: AnyObject {
    func started(_ digest: Digest, size: Int64, pushing: Bool)
    func advanced(_ bytes: Int)
    func finished(_ digest: Digest)
    func skipped(_ digest: Digest, size: Int64, reason: String)
}

/// Progress on a file descriptor: on a terminal one line rewritten in place with bytes and rate
/// (at most ten times a second); otherwise a plain line per blob started, finished or skipped.
public final class ConsoleTransferProgress: TransferProgress {
    private let fd: Int32
    private let terminal: Bool
    private var current: (digest: Digest, size: Int64, pushing: Bool, done: Int64, start: Double)?
    private var lastDraw = 0.0

    public init(fd: Int32) {
        self.fd = fd
        terminal = isatty(fd) == 1
    }

    public func started(_ digest: Digest, size: Int64, pushing: Bool) {
        current = (digest, size, pushing, 0, Self.now())
        if !terminal { emit("\(pushing ? "Pushing" : "Pulling") \(Self.short(digest)) (\(Self.bytes(size)))\n") }
    }

    public func advanced(_ bytes: Int) {
        guard var state = current else { return }
        state.done += Int64(bytes)
        current = state
        let now = Self.now()
        guard terminal, now - lastDraw >= 0.1 else { return }
        lastDraw = now
        let rate = Double(state.done) / max(now - state.start, 0.001)
        emit("\r\u{1b}[K\(state.pushing ? "Pushing" : "Pulling") \(Self.short(state.digest)) \(Self.bytes(state.done))/\(Self.bytes(state.size)) \(Self.bytes(Int64(rate)))/s")
    }

    public func finished(_ digest: Digest) {
        guard let state = current else { return }
        let seconds = max(Self.now() - state.start, 0.001)
        let line = "\(state.pushing ? "Pushed" : "Pulled") \(Self.short(digest)) \(Self.bytes(state.size)) in \(Self.seconds(seconds)) (\(Self.bytes(Int64(Double(state.size) / seconds)))/s)\n"
        emit(terminal ? "\r\u{1b}[K" + line : line)
        current = nil
    }

    public func skipped(_ digest: Digest, size: Int64, reason: String) {
        emit("Skipped \(Self.short(digest)) (\(Self.bytes(size))): \(reason)\n")
    }

    private func emit(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    static func short(_ digest: Digest) -> String { "sha256:" + digest.hex.prefix(12) }

    static func bytes(_ count: Int64) -> String {
        let value = Double(count)
        for (unit, scale) in [("GB", 1e9), ("MB", 1e6), ("kB", 1e3)] where value >= scale {
            return String(Double(Int(value / scale * 10)) / 10) + " " + unit
        }
        return "\(count) B"
    }

    static func seconds(_ value: Double) -> String { String(Double(Int(value * 100)) / 100) + " s" }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
