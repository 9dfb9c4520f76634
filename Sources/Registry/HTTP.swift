import OCI
import Glibc
import SystemPackage

/// One HTTP exchange with a registry, through libcurl.
struct HTTPRequest {
    var method: String
    var url: String
    var headers: [String] = []
    var body: Body = .none

    enum Body {
        case none
        case bytes([UInt8])
        /// `length` bytes of the file `fd` from `offset` (a blob or a chunk of one).
        case file(fd: Int32, offset: Int64, length: Int64)
    }
}

struct HTTPResponse {
    var status: Int
    /// Names lower-cased; the last response's headers only (after redirects).
    var headers: [(name: String, value: String)]
    /// What was kept of the body (nothing when it was streamed to a sink).
    var body: [UInt8]

    func header(_ name: String) -> String? { headers.last { $0.name == name }?.value }
}

/// Where a response body goes: kept in memory up to `limit` bytes, or handed to `consume` as it
/// arrives. Exceeding the limit or a failing consumer stops the transfer.
final class ResponseSink {
    let limit: Int64
    let consume: ((UnsafeRawBufferPointer) throws -> Void)?
    var body: [UInt8] = []
    var received: Int64 = 0
    var overLimit = false
    var failure: (any Error)?
    var headers: [(name: String, value: String)] = []
    /// Only error statuses' bodies are kept when streaming; decided at the first body byte.
    var status: () -> Int = { 0 }

    init(limit: Int64, consume: ((UnsafeRawBufferPointer) throws -> Void)? = nil) {
        self.limit = limit
        self.consume = consume
    }

    func accept(_ bytes: UnsafeRawBufferPointer) -> Bool {
        received += Int64(bytes.count)
        let code = status()
        if let consume, code >= 200 && code < 300 {
            guard received <= limit else { overLimit = true; return false }
            do { try consume(bytes) } catch { failure = error; return false }
            return true
        }
        if code >= 200 && code < 300 {
            guard received <= limit else { overLimit = true; return false }
            body.append(contentsOf: bytes)
            return true
        }
        // An error's body: only its start is read, and an endless one is cut off.
        guard received <= 1 << 20 else { overLimit = true; return false }
        if body.count < 1 << 16 { body.append(contentsOf: bytes.prefix(1 << 16 - body.count)) }
        return true
    }
}

/// A libcurl easy handle, reused for one registry (connections and TLS sessions are kept).
final class CurlSession {
    private let curl: Curl
    private let handle: Curl.Handle
    let transport: Transport

    /// How one host is spoken to.
    struct Transport: Sendable {
        /// https unless the host was named with `--insecure-registry` and does not speak TLS.
        var scheme: String
        /// False only for `--insecure-registry` hosts.
        var verifyTLS: Bool
        /// `SSL_CERT_FILE`, else the system store libcurl was built with.
        var caFile: String?
    }

    init(transport: Transport) throws(RegistryError) {
        let curl: Curl
        switch Curl.loaded {
        case .success(let loaded): curl = loaded
        case .failure(let error):
            throw RegistryError(.unavailable, "libcurl.so.4 (Debian's libcurl4) is needed to reach a registry and cannot be loaded: \(error)")
        }
        guard let handle = curl.easyInit() else { throw RegistryError(.unavailable, "curl_easy_init failed") }
        self.curl = curl
        self.handle = handle
        self.transport = transport
    }

    deinit { curl.easyCleanup(handle) }

    /// Performs `request`; transport failures throw, every HTTP status returns.
    func perform(_ request: HTTPRequest, into sink: ResponseSink, host: String) throws(RegistryError) -> HTTPResponse {
        let curl = self.curl
        let handle = self.handle
        curl.easyReset(handle)
        var strings: [UnsafeMutablePointer<CChar>] = []
        defer { strings.forEach { free($0) } }
        func string(_ option: Int32, _ value: String) {
            let copy = strdup(value)!
            strings.append(copy)
            _ = curl.setPointer(handle, option, copy)
        }
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: 256)
        errorBuffer.initialize(repeating: 0, count: 256)
        defer { errorBuffer.deallocate() }
        _ = curl.setPointer(handle, Curl.Option.errorBuffer, errorBuffer)
        string(Curl.Option.url, request.url)
        string(Curl.Option.userAgent, "stockade")
        // Only http(s), also after a redirect (blob storage redirects); https redirects only,
        // unless this host is insecure by request. A custom Authorization header is not sent
        // to another host on a redirect (libcurl's default since 7.58).
        string(Curl.Option.protocols, "http,https")
        string(Curl.Option.redirectProtocols, transport.verifyTLS ? "https" : "http,https")
        _ = curl.setLong(handle, Curl.Option.followLocation, 1)
        _ = curl.setLong(handle, Curl.Option.maxRedirects, 5)
        _ = curl.setLong(handle, Curl.Option.noSignal, 1)
        _ = curl.setLong(handle, Curl.Option.connectTimeout, 30)
        // A transfer slower than 1 KiB/s for 60 s is a dead one.
        _ = curl.setLong(handle, Curl.Option.lowSpeedLimit, 1024)
        _ = curl.setLong(handle, Curl.Option.lowSpeedTime, 60)
        if !transport.verifyTLS {
            _ = curl.setLong(handle, Curl.Option.verifyPeer, 0)
            _ = curl.setLong(handle, Curl.Option.verifyHost, 0)
        } else if let caFile = transport.caFile {
            string(Curl.Option.caInfo, caFile)
        }
        switch request.method {
        case "GET": break
        case "HEAD": _ = curl.setLong(handle, Curl.Option.noBody, 1)
        default: string(Curl.Option.customRequest, request.method)
        }
        var list: OpaquePointer?
        for header in request.headers + ["Expect:"] { list = curl.slistAppend(list, header) }
        defer { curl.slistFree(list) }
        _ = curl.setPointer(handle, Curl.Option.httpHeader, UnsafeRawPointer(list))

        let body = RequestBody(request.body)
        // Every method with a body slot sends a Content-Length, 0 when empty.
        if request.method != "GET" && request.method != "HEAD" {
            _ = curl.setLong(handle, Curl.Option.upload, 1)
            _ = curl.setOffset(handle, Curl.Option.inFileSize, body.length)
            _ = curl.setFunction(handle, Curl.Option.readFunction, { buffer, size, count, context in
                Unmanaged<RequestBody>.fromOpaque(context!).takeUnretainedValue().fill(buffer!, size * count)
            })
        }
        sink.status = {
            var code = 0
            _ = curl.getLong(handle, Curl.Info.responseCode, &code)
            return code
        }
        sink.headers = []
        _ = curl.setFunction(handle, Curl.Option.writeFunction, { buffer, size, count, context in
            let sink = Unmanaged<ResponseSink>.fromOpaque(context!).takeUnretainedValue()
            return sink.accept(UnsafeRawBufferPointer(start: buffer, count: size * count)) ? size * count : 0
        })
        _ = curl.setFunction(handle, Curl.Option.headerFunction, { buffer, size, count, context in
            let sink = Unmanaged<ResponseSink>.fromOpaque(context!).takeUnretainedValue()
            let line = String(decoding: UnsafeRawBufferPointer(start: buffer, count: size * count), as: UTF8.self)
            if line.hasPrefix("HTTP/") {
                sink.headers = []  // a new response: a redirect's or a 100's headers are dropped
            } else if let colon = line.firstIndex(of: ":"), sink.headers.count < 200 {
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingWhitespace()
                sink.headers.append((name, value))
            }
            return size * count
        })
        let code = withExtendedLifetime((sink, body)) { () -> Int32 in
            _ = curl.setPointer(handle, Curl.Option.writeData, Unmanaged.passUnretained(sink).toOpaque())
            _ = curl.setPointer(handle, Curl.Option.headerData, Unmanaged.passUnretained(sink).toOpaque())
            _ = curl.setPointer(handle, Curl.Option.readData, Unmanaged.passUnretained(body).toOpaque())
            return curl.easyPerform(handle)
        }
        if code != 0 {
            if sink.overLimit {
                throw RegistryError(.tooLarge, "\(host): \(request.method) \(Self.path(request.url)) answered more than \(sink.limit) bytes")
            }
            if let failure = sink.failure as? RegistryError { throw failure }
            if let failure = sink.failure as? OCIError { throw RegistryError(.io, failure.message) }
            if let failure = sink.failure { throw RegistryError(.io, "\(host): \(failure)") }
            let detail = errorBuffer.pointee != 0 ? String(cString: errorBuffer) : String(cString: curl.easyStrerror(code))
            switch code {
            case Curl.Code.couldNotResolveHost:
                throw RegistryError(.unknownHost, "\(host): unknown host (\(detail))")
            case Curl.Code.couldNotConnect:
                throw RegistryError(.unreachable, "\(host): cannot connect (\(detail))")
            case Curl.Code.peerFailedVerification, Curl.Code.sslConnect:
                throw RegistryError(.tls, "\(host): TLS failed (\(detail)); a registry with its own CA needs SSL_CERT_FILE, a test one --insecure-registry \(host)")
            case Curl.Code.readError:
                throw RegistryError(.io, "\(host): reading what is sent failed (\(body.error.map { Errno(rawValue: $0).description } ?? detail))")
            default:
                throw RegistryError(.unreachable, "\(host): \(request.method) \(Self.path(request.url)): \(detail)")
            }
        }
        var status = 0
        _ = curl.getLong(handle, Curl.Info.responseCode, &status)
        return HTTPResponse(status: status, headers: sink.headers, body: sink.body)
    }

    /// The URL without scheme and host, for messages.
    static func path(_ url: String) -> String {
        guard let scheme = url.firstRange(of: "://"), let slash = url[scheme.upperBound...].firstIndex(of: "/") else { return url }
        let path = url[slash...]
        return String(path.prefix { $0 != "?" })
    }
}

/// The bytes of a request, fed to libcurl's read callback.
final class RequestBody {
    private let bytes: [UInt8]
    private let fd: Int32
    private var offset: Int64
    let length: Int64
    private var sent: Int64 = 0
    var error: Int32?

    init(_ body: HTTPRequest.Body) {
        switch body {
        case .none: bytes = []; fd = -1; offset = 0; length = 0
        case .bytes(let b): bytes = b; fd = -1; offset = 0; length = Int64(b.count)
        case .file(let f, let o, let l): bytes = []; fd = f; offset = o; length = l
        }
    }

    func fill(_ buffer: UnsafeMutablePointer<CChar>, _ capacity: Int) -> Int {
        let wanted = Int(min(Int64(capacity), length - sent))
        guard wanted > 0 else { return 0 }
        if fd < 0 {
            bytes.withUnsafeBytes { UnsafeMutableRawPointer(buffer).copyMemory(from: $0.baseAddress! + Int(sent), byteCount: wanted) }
            sent += Int64(wanted)
            return wanted
        }
        while true {
            let n = pread(fd, buffer, wanted, off_t(offset + sent))
            if n < 0 && errno == EINTR { continue }
            // 0 before `length`: the file shrank under us; abort rather than send short.
            guard n > 0 else { error = n < 0 ? errno : EIO; return 0x1000_0000 }  // CURL_READFUNC_ABORT
            sent += Int64(n)
            return n
        }
    }
}

extension Substring {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
