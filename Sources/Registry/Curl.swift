import Glibc
import SystemCalls

/// libcurl (Debian's libcurl4, the OpenSSL flavour), loaded the first time a registry is
/// contacted. Linking it would load it, OpenSSL's libssl, nghttp2, libssh2, Kerberos and LDAP
/// into every process, `stockade exec` and each sandbox's supervisor included, and only the
/// registry commands speak HTTP.
///
/// `curl_easy_setopt` and `curl_easy_getinfo` are C variadics, which Swift cannot call. They are
/// called through non-variadic function pointer types, one per argument kind (long, pointer,
/// function pointer, curl_off_t). That is sound on the two ABIs Stockade runs on: x86-64 SysV
/// passes a variadic integer or pointer argument in the same register a named one of the same
/// position would use (the callee's `va_arg` reads it from the register save area; %al, the
/// count of vector registers a variadic caller sets, only decides whether the callee also
/// saves xmm registers), and AArch64 Linux (AAPCS64, unlike Apple's arm64) passes variadic
/// arguments exactly as named ones. No floating-point argument is ever passed this way.
struct Curl: @unchecked Sendable {
    typealias Handle = OpaquePointer
    typealias SetLong = @convention(c) (Handle, Int32, Int) -> Int32
    typealias SetOffset = @convention(c) (Handle, Int32, Int64) -> Int32
    typealias SetPointer = @convention(c) (Handle, Int32, UnsafeRawPointer?) -> Int32
    typealias SetFunction = @convention(c) (Handle, Int32, DataCallback) -> Int32
    typealias GetLong = @convention(c) (Handle, Int32, UnsafeMutablePointer<Int>) -> Int32
    /// size_t (*)(char *, size_t, size_t, void *): the write, read and header callbacks.
    typealias DataCallback = @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int
    typealias SlistAppend = @convention(c) (OpaquePointer?, UnsafePointer<CChar>) -> OpaquePointer?

    let globalInit: @convention(c) (Int) -> Int32
    let easyInit: @convention(c) () -> Handle?
    let easyCleanup: @convention(c) (Handle) -> Void
    let easyReset: @convention(c) (Handle) -> Void
    let easyPerform: @convention(c) (Handle) -> Int32
    let easyStrerror: @convention(c) (Int32) -> UnsafePointer<CChar>
    let setLong: SetLong
    let setOffset: SetOffset
    let setPointer: SetPointer
    let setFunction: SetFunction
    let getLong: GetLong
    let slistAppend: SlistAppend
    let slistFree: @convention(c) (OpaquePointer?) -> Void

    /// libcurl, loaded and initialised on first use.
    static let loaded = Result { () throws(LibraryError) in try Curl(SharedLibrary("libcurl.so.4")) }

    private init(_ library: SharedLibrary) throws(LibraryError) {
        globalInit = try library.symbol("curl_global_init")
        easyInit = try library.symbol("curl_easy_init")
        easyCleanup = try library.symbol("curl_easy_cleanup")
        easyReset = try library.symbol("curl_easy_reset")
        easyPerform = try library.symbol("curl_easy_perform")
        easyStrerror = try library.symbol("curl_easy_strerror")
        setLong = try library.symbol("curl_easy_setopt")
        setOffset = try library.symbol("curl_easy_setopt")
        setPointer = try library.symbol("curl_easy_setopt")
        setFunction = try library.symbol("curl_easy_setopt")
        getLong = try library.symbol("curl_easy_getinfo")
        slistAppend = try library.symbol("curl_slist_append")
        slistFree = try library.symbol("curl_slist_free_all")
        // CURL_GLOBAL_DEFAULT (SSL | WIN32); once, before any thread uses a handle.
        guard globalInit(3) == 0 else { throw LibraryError("curl_global_init failed") }
    }

    /// The options used here (curl.h: LONG 0, OBJECTPOINT 10000, FUNCTIONPOINT 20000, OFF_T 30000).
    enum Option {
        static let writeData: Int32 = 10001
        static let url: Int32 = 10002
        static let readData: Int32 = 10009
        static let errorBuffer: Int32 = 10010
        static let userAgent: Int32 = 10018
        static let httpHeader: Int32 = 10023
        static let headerData: Int32 = 10029
        static let customRequest: Int32 = 10036
        static let caInfo: Int32 = 10065
        static let protocols: Int32 = 10318
        static let redirectProtocols: Int32 = 10319
        static let writeFunction: Int32 = 20011
        static let readFunction: Int32 = 20012
        static let headerFunction: Int32 = 20079
        static let lowSpeedLimit: Int32 = 19
        static let lowSpeedTime: Int32 = 20
        static let noBody: Int32 = 44
        static let upload: Int32 = 46
        static let followLocation: Int32 = 52
        static let verifyPeer: Int32 = 64
        static let maxRedirects: Int32 = 68
        static let connectTimeout: Int32 = 78
        static let verifyHost: Int32 = 81
        static let noSignal: Int32 = 99
        static let inFileSize: Int32 = 30115
    }

    enum Info {
        /// CURLINFO_LONG + 2
        static let responseCode: Int32 = 0x200002
    }

    enum Code {
        static let couldNotResolveHost: Int32 = 6
        static let couldNotConnect: Int32 = 7
        static let writeError: Int32 = 23
        static let readError: Int32 = 26
        static let timedOut: Int32 = 28
        static let sslConnect: Int32 = 35
        static let abortedByCallback: Int32 = 42
        static let peerFailedVerification: Int32 = 60
    }
}
