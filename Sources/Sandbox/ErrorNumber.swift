import Glibc
import SystemPackage

/// The one place errno values become text: swift-system's `Errno` says what a value means,
/// this adds the symbol a user can search for.
enum ErrorNumber {
    static func describe(_ code: Int32) -> String {
        "\(Errno(rawValue: code)) (\(symbol(code)))"
    }

    static func symbol(_ code: Int32) -> String {
        switch code {
        case EPERM: "EPERM"
        case ENOENT: "ENOENT"
        case EACCES: "EACCES"
        case EEXIST: "EEXIST"
        case ENOTDIR: "ENOTDIR"
        case EISDIR: "EISDIR"
        case EINVAL: "EINVAL"
        case ENOSPC: "ENOSPC"
        case EROFS: "EROFS"
        case ELOOP: "ELOOP"
        case ENOSYS: "ENOSYS"
        case ENOEXEC: "ENOEXEC"
        case ESTALE: "ESTALE"
        case EBUSY: "EBUSY"
        case EXDEV: "EXDEV"
        case EOVERFLOW: "EOVERFLOW"
        case ENAMETOOLONG: "ENAMETOOLONG"
        case E2BIG: "E2BIG"
        case ENOMEM: "ENOMEM"
        default: "errno \(code)"
        }
    }

    /// `EPERM` and friends, or the number: for machine-read output.
    static func name(_ code: Int32) -> String {
        let symbol = symbol(code)
        return symbol.hasPrefix("E") ? symbol : String(code)
    }
}
