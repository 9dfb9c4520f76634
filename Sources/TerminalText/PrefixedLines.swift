/// Untrusted output as whole, safe lines, each after `prefix`: what a
/// console shows of a buildpack. Holds at most one line, which the filter
/// bounds.
public struct PrefixedLines: Sendable {
    private var filter: TerminalFilter
    private let prefix: [UInt8]
    private var line: [UInt8] = []

    public init(prefix: String, filter: TerminalFilter = TerminalFilter()) {
        self.prefix = Array(prefix.utf8)
        self.filter = filter
    }

    /// The lines `chunk` completes, prefixed and newline-terminated (maybe none).
    public mutating func feed(_ chunk: some Sequence<UInt8>) -> [UInt8] {
        var safe: [UInt8] = []
        filter.filter(chunk, into: &safe)
        return frame(safe)
    }

    /// The rest, once the input has ended.
    public mutating func finish() -> [UInt8] {
        var safe: [UInt8] = []
        filter.finish(into: &safe)
        return frame(safe)
    }

    private mutating func frame(_ safe: [UInt8]) -> [UInt8] {
        var lines: [UInt8] = []
        var start = safe.startIndex
        while let newline = safe[start...].firstIndex(of: 0x0A) {
            lines += prefix
            lines += line
            lines += safe[start...newline]
            line.removeAll(keepingCapacity: true)
            start = newline + 1
        }
        line += safe[start...]
        return lines
    }
}
