import Glibc

/// Why a shared library or one of its symbols could not be had: `dlerror()`'s text, which names both.
public struct LibraryError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// A shared library opened at run time rather than linked, for what only some commands need:
/// linking would load it, and all it pulls in, into every process. dlopen(3) and dlsym(3) are
/// thread-safe and `dlerror()` is per thread; loading once is the caller's `static let`, which
/// Swift initialises exactly once whichever thread comes first.
public struct SharedLibrary: @unchecked Sendable {
    private let handle: UnsafeMutableRawPointer

    /// Opens `name` (a soname such as `libcurl.so.4`) with every symbol bound now, kept to itself.
    public init(_ name: String) throws(LibraryError) {
        guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else { throw Self.lastError(name) }
        self.handle = handle
    }

    /// The function `name`, as the C function type `Function` the caller declares it to be.
    public func symbol<Function>(_ name: String, as _: Function.Type = Function.self) throws(LibraryError) -> Function {
        guard let address = dlsym(handle, name) else { throw Self.lastError(name) }
        return unsafeBitCast(address, to: Function.self)
    }

    private static func lastError(_ name: String) -> LibraryError {
        LibraryError(dlerror().map { String(cString: $0) } ?? "\(name) cannot be loaded")
    }
}
