import Glibc

/// The one place errno values become text and typed errors.
enum Errno {
    static func describe(_ code: Int32) -> String {
        let name = symbol(code)
        guard let text = strerror(code) else { return name }
        return "\(String(cString: text)) (\(name))"
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

    static var current: Int32 { Glibc.errno }

    /// `EPERM` and friends, or the number: for machine-read output.
    static func name(_ code: Int32) -> String {
        let symbol = symbol(code)
        return symbol.hasPrefix("E") ? symbol : String(code)
    }
}
