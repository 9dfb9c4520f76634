import BuildpackSpec
import Glibc
import SystemCalls
import SystemPackage

/// A launcher failure: one sentence, printed as `stockade-launcher: <message>`, exit 82.
struct LaunchError: Error, CustomStringConvertible {
    /// The spec's exit code for every launcher error, including a command that cannot be executed:
    /// one code means "the launcher could not start the process", whatever the reason.
    static let exitCode: Int32 = 82

    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }

    /// Prints `error` as a single line (control characters escaped, since file names in the layers may
    /// hold newlines) and exits 82.
    static func exit(describing error: any Error) -> Never {
        let text: String
        switch error {
        case let error as LaunchError: text = error.message
        case let error as SpecError: text = error.description
        default: text = "\(error)"
        }
        var line = "stockade-launcher: "
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A: line += "\\n"
            case 0x0D: line += "\\r"
            case 0x09: line += "\\t"
            case 0..<0x20, 0x7F: line += "\\u{\(String(scalar.value, radix: 16))}"
            default: line.unicodeScalars.append(scalar)
            }
        }
        line += "\n"
        // Nothing is left to tell if stderr itself fails.
        _ = Result { () throws(Errno) in try FileDescriptor.standardError.writeAll(Array(line.utf8)) }
        Glibc.exit(exitCode)
    }

    /// What the error number means, as strerror says it.
    static func reason(_ err: Int32) -> String { Errno(rawValue: err).description }
}
