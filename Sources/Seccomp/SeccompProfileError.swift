/// Why a profile could not be read: the file, where in it, and what is wrong, as one line.
///
/// `profiles/x.json: $.syscalls[3].action: unknown action "SCMP_ACT_FOO" (expected one of ...)`
public struct SeccompProfileError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Where in the origin the problem is.
    public enum Location: Sendable, Equatable {
        /// The file as a whole (cannot be read, too large, unknown built-in name).
        case file
        /// A JSON syntax error, 1-based; the column counts characters.
        case text(line: Int, column: Int)
        /// A well-formed value that is wrong, as a JSON path such as `$.syscalls[3].args[0].op`.
        case value(path: String)
    }

    /// The file path, or `builtin:NAME` for an embedded profile.
    public let origin: String
    public let location: Location
    public let reason: String

    public init(origin: String, location: Location, reason: String) {
        self.origin = origin
        self.location = location
        self.reason = reason
    }

    public var description: String {
        switch location {
        case .file: "\(origin): \(reason)"
        case .text(let line, let column): "\(origin):\(line):\(column): \(reason)"
        case .value(let path): "\(origin): \(path): \(reason)"
        }
    }
}
