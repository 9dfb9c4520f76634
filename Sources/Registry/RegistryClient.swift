import Glibc
import JSON
import OCI

/// How registries are reached: which hosts may be plain HTTP or unverified TLS, the CA file,
/// where credentials come from, upload chunking and retries.
public struct RegistryOptions: Sendable {
    /// Hosts (`host[:port]`) spoken to over plain HTTP, or TLS without verification.
    public var insecureHosts: Set<String>
    public var credentials: CredentialStore
    /// A CA bundle to verify with instead of the system's (`SSL_CERT_FILE`).
    public var caFile: String?
    /// Blobs larger than this are uploaded in PATCH chunks of this size, smaller ones in one PUT.
    public var chunkSize: Int64 = 128 << 20
    /// Retries after a 429, a 5xx or a dropped connection, with doubling waits from `backoff` seconds.
    public var retries = 3
    public var backoff = 0.25

    public init(insecureHosts: Set<String> = [], credentials: CredentialStore, caFile: String? = nil) {
        self.insecureHosts = insecureHosts
        self.credentials = credentials
        self.caFile = caFile
    }

    /// From the process's environment: credentials, and `SSL_CERT_FILE` as the CA bundle.
    public static func fromEnvironment(insecureHosts: Set<String>) -> RegistryOptions {
        let credentials = CredentialStore.fromEnvironment()
        return RegistryOptions(insecureHosts: insecureHosts, credentials: credentials,
                               caFile: credentials.environment["SSL_CERT_FILE"])
    }
}

/// A client of one registry host (OCI distribution spec v1.1): manifests and blobs, pulled into
/// and pushed from OCI layouts. Every blob and manifest read is checked against its digest, every
/// answer is bounded, and credentials stay in this process.
public final class RegistryClient {
    public let host: String
    let options: RegistryOptions
    private var session: CurlSession?
    private var baseURL = ""
    /// `Authorization` values by scope (`repository:NAME:pull[,push]`).
    private var authorizations: [String: String] = [:]
    private var credential: Credential??
    public var progress: TransferProgress?

    /// The most entries an index may list: real ones list a few platforms and attestations.
    public static let indexEntryLimit = 1000
    /// The most layers a manifest may list (Docker builds at most 127).
    public static let layerLimit = 1000

    public init(host: String, options: RegistryOptions) {
        self.host = host
        self.options = options
    }

    // MARK: - manifests

    /// The accept list of a manifest GET: OCI and Docker schema 2, images and indexes.
    static let manifestTypes = [MediaType.manifest, MediaType.index, MediaType.dockerManifest, MediaType.dockerManifestList]

    /// A manifest or index as the registry holds it, checked against the digest it was asked by
    /// or the one the registry announced.
    public func manifest(_ reference: RegistryReference) throws(RegistryError) -> (bytes: [UInt8], mediaType: String, digest: Digest) {
        let what = reference.description
        let response = try send(HTTPRequest(method: "GET", url: url(reference.repository, "manifests/" + reference.reference),
                                            headers: ["Accept: " + Self.manifestTypes.joined(separator: ", ")]),
                                repository: reference.repository, push: false,
                                sink: { ResponseSink(limit: Int64(ImageLayout.documentLimit)) }, what: what)
        try expectSuccess(response, what: what)
        let digest = Digest.of(response.body)
        if let wanted = reference.digest, wanted != digest {
            throw RegistryError(.digestMismatch, "\(what): the manifest hashes to \(digest), not \(wanted)")
        }
        if reference.digest == nil, let announced = response.header("docker-content-digest"), Digest(announced) != nil,
           announced != digest.description {
            throw RegistryError(.digestMismatch, "\(what): the manifest hashes to \(digest), not the \(announced) the registry announced")
        }
        let json: JSONValue
        do {
            json = try JSONParser.parse(response.body, maxBytes: ImageLayout.documentLimit)
        } catch {
            throw RegistryError(.protocolViolation, "\(what): the manifest is not JSON (\(error))")
        }
        var mediaType = json["mediaType"]?.stringValue ?? ""
        if mediaType.isEmpty {
            let contentType = response.header("content-type").map { String($0.prefix { $0 != ";" }) } ?? ""
            mediaType = contentType.isEmpty && json["manifests"] != nil ? MediaType.index : contentType
        }
        guard Self.manifestTypes.contains(mediaType) else {
            throw RegistryError(.unsupportedMediaType, "\(what) is a \(mediaType.isEmpty ? "document without a media type" : mediaType), not an OCI or Docker v2 image manifest or index")
        }
        return (response.body, mediaType, digest)
    }

    /// Resolves `reference` to the image for `platform` (through an index when it names one) and
    /// stores its manifest and config in `layout`, and its layers unless `layers` is false (a
    /// rebase needs only where the layers are). Blobs the layout holds are not fetched again.
    public func pull(_ reference: RegistryReference, into layout: ImageLayout,
                     platform: Platform = Platform(os: "linux", architecture: ImageLayout.hostArchitecture),
                     layers: Bool = true) throws(RegistryError) -> Image {
        var (bytes, mediaType, digest) = try manifest(reference)
        if mediaType == MediaType.index || mediaType == MediaType.dockerManifestList {
            let index = try parse(bytes, as: "index", of: reference) { (json) throws(OCIError) in try ImageIndex(json: json, in: reference.description) }
            guard index.manifests.count <= Self.indexEntryLimit else {
                throw RegistryError(.tooLarge, "\(reference): the index lists \(index.manifests.count) manifests; at most \(Self.indexEntryLimit) are read")
            }
            guard let entry = index.manifests.first(where: {
                $0.platform?.os == platform.os && $0.platform?.architecture == platform.architecture
            }) else {
                throw RegistryError(.notFound, "\(reference) has no image for \(platform.description)")
            }
            guard entry.digest != digest else {
                throw RegistryError(.protocolViolation, "\(reference): the index names itself as the \(platform.description) image")
            }
            guard entry.mediaType == MediaType.manifest || entry.mediaType == MediaType.dockerManifest else {
                throw RegistryError(.unsupportedMediaType, "\(reference): the \(platform.description) entry is a \(entry.mediaType), not an image manifest (nested indexes are not followed)")
            }
            (bytes, mediaType, digest) = try manifest(reference.with(digest: entry.digest))
            guard mediaType == MediaType.manifest || mediaType == MediaType.dockerManifest else {
                throw RegistryError(.unsupportedMediaType, "\(reference)@\(entry.digest) is a \(mediaType), not an image manifest")
            }
        }
        let what = reference.description
        let json = try parseJSON(bytes, what: what)
        for item in json["layers"]?.arrayValue ?? [] {
            if let type = item["mediaType"]?.stringValue, !MediaType.isLayer(type) {
                throw RegistryError(.unsupportedMediaType, "\(what): a layer has media type \(type), which Stockade does not read")
            }
        }
        if let count = json["layers"]?.arrayValue?.count, count > Self.layerLimit {
            throw RegistryError(.tooLarge, "\(what): the manifest lists \(count) layers; at most \(Self.layerLimit) are read")
        }
        let manifest = try parse(bytes, as: "manifest", of: reference) { (json) throws(OCIError) in try ImageManifest(json: json, in: what) }
        guard manifest.config.mediaType == MediaType.config || manifest.config.mediaType == MediaType.dockerConfig else {
            throw RegistryError(.unsupportedMediaType, "\(what): the config is a \(manifest.config.mediaType), not an image config")
        }
        guard !([manifest.config] + manifest.layers).contains(where: { $0.digest == digest }) else {
            throw RegistryError(.protocolViolation, "\(what): the manifest names itself as its config or a layer")
        }
        let descriptor = Descriptor(mediaType: mediaType, digest: digest, size: Int64(bytes.count))
        try local { () throws(OCIError) in _ = try layout.writeBlob(bytes, mediaType: mediaType) }
        guard manifest.config.size <= Int64(ImageLayout.documentLimit) else {
            throw RegistryError(.tooLarge, "\(what): the config is \(manifest.config.size) bytes; at most \(ImageLayout.documentLimit) are read")
        }
        try pullBlob(manifest.config, repository: reference.repository, into: layout, what: what)
        let configBytes = try local { () throws(OCIError) in try layout.readBlob(manifest.config, limit: ImageLayout.documentLimit) }
        let config = try parse(configBytes, as: "config", of: reference) { (json) throws(OCIError) in try ImageConfig(json: json, in: what + " config") }
        guard config.diffIDs.count == manifest.layers.count else {
            throw RegistryError(.protocolViolation, "\(what): the config lists \(config.diffIDs.count) diff_ids for \(manifest.layers.count) layers")
        }
        if layers {
            for layer in manifest.layers { try pullBlob(layer, repository: reference.repository, into: layout, what: what) }
        }
        return Image(descriptor: descriptor, manifest: manifest, config: config)
    }

    /// Fetches a blob into `layout` unless it is there, hashing it on the way; bytes beyond its
    /// size stop the transfer, and a blob that does not hash to its digest is not kept.
    public func pullBlob(_ descriptor: Descriptor, repository: String, into layout: ImageLayout, what: String) throws(RegistryError) {
        if layout.hasBlob(descriptor) { return }
        if let budget = layout.budget, UInt64(descriptor.size) > budget.remaining {
            throw RegistryError(.io, budget.overdrawn(UInt64(descriptor.size), for: "\(what): blob \(descriptor.digest)").message)
        }
        var writer: BlobWriter?
        let progress = self.progress
        progress?.started(descriptor.digest, size: descriptor.size, pushing: false)
        let response = try send(HTTPRequest(method: "GET", url: url(repository, "blobs/" + descriptor.digest.description)),
                                repository: repository, push: false, sink: {
            writer = nil
            return ResponseSink(limit: descriptor.size) { (bytes) throws in
                if writer == nil { writer = try BlobWriter(layout: layout, background: descriptor.size > 1 << 20) }
                try writer!.write(bytes)
                progress?.advanced(bytes.count)
            }
        }, what: what)
        try expectSuccess(response, what: "\(what): blob \(descriptor.digest)")
        let written = try local { () throws(OCIError) -> Descriptor in
            if let writer { return try writer.commit(mediaType: descriptor.mediaType) }
            return try BlobWriter(layout: layout).commit(mediaType: descriptor.mediaType)
        }
        guard written.digest == descriptor.digest, written.size == descriptor.size else {
            // Stored under the digest it has, which nothing names: removed again.
            layout.removeBlob(written.digest)
            throw RegistryError(.digestMismatch, "\(host)/\(repository): blob \(descriptor.digest) arrived as \(written.size) bytes hashing to \(written.digest)")
        }
        progress?.finished(descriptor.digest)
    }

    // MARK: - push

    /// Pushes `image` from `layout` as `reference` (its tag, else by digest): blobs the repository
    /// has are skipped (HEAD), blobs another repository of this registry has are mounted from
    /// there, the rest uploaded. The manifest goes last. Returns the manifest's digest.
    @discardableResult
    public func push(_ image: Image, from layout: ImageLayout, to reference: RegistryReference,
                     mountFrom: [String] = []) throws(RegistryError) -> Digest {
        let what = reference.description
        let sources = mountFrom.filter { $0 != reference.repository }
        for blob in [image.manifest.config] + image.manifest.layers {
            try pushBlob(blob, from: layout, repository: reference.repository, mountFrom: sources, what: what)
        }
        let bytes = try local { () throws(OCIError) in try layout.readBlob(image.descriptor, limit: ImageLayout.documentLimit) }
        let tag = reference.tag ?? image.descriptor.digest.description
        let response = try send(HTTPRequest(method: "PUT", url: url(reference.repository, "manifests/" + tag),
                                            headers: ["Content-Type: " + image.descriptor.mediaType], body: .bytes(bytes)),
                                repository: reference.repository, push: true, sink: { ResponseSink(limit: 1 << 16) }, what: what)
        try expectSuccess(response, what: "\(what): manifest")
        if let announced = response.header("docker-content-digest"), announced != image.descriptor.digest.description {
            throw RegistryError(.digestMismatch, "\(what): the registry stored the manifest as \(announced), not \(image.descriptor.digest)")
        }
        return image.descriptor.digest
    }

    /// Whether the repository holds the blob (HEAD).
    public func hasBlob(_ digest: Digest, repository: String, push: Bool = false) throws(RegistryError) -> Bool {
        let response = try send(HTTPRequest(method: "HEAD", url: url(repository, "blobs/" + digest.description)),
                                repository: repository, push: push, sink: { ResponseSink(limit: 1 << 16) }, what: "\(host)/\(repository)")
        if response.status == 404 { return false }
        try expectSuccess(response, what: "\(host)/\(repository): blob \(digest)")
        return true
    }

    func pushBlob(_ descriptor: Descriptor, from layout: ImageLayout, repository: String, mountFrom: [String],
                  what: String) throws(RegistryError) {
        if try hasBlob(descriptor.digest, repository: repository, push: true) {
            progress?.skipped(descriptor.digest, size: descriptor.size, reason: "already there")
            return
        }
        var location: String?
        for source in mountFrom {
            let response = try send(HTTPRequest(method: "POST", url: url(repository, "blobs/uploads/?mount=\(descriptor.digest)&from=\(source)")),
                                    repository: repository, push: true, mountFrom: source,
                                    sink: { ResponseSink(limit: 1 << 16) }, what: what)
            if response.status == 201 {
                progress?.skipped(descriptor.digest, size: descriptor.size, reason: "mounted from \(source)")
                return
            }
            try expectSuccess(response, what: "\(what): mount of \(descriptor.digest)")
            location = try uploadLocation(response, what: what)
            break
        }
        if location == nil {
            let response = try send(HTTPRequest(method: "POST", url: url(repository, "blobs/uploads/")),
                                    repository: repository, push: true, sink: { ResponseSink(limit: 1 << 16) }, what: what)
            try expectSuccess(response, what: "\(what): upload of \(descriptor.digest)")
            location = try uploadLocation(response, what: what)
        }
        let fd = try local { () throws(OCIError) in try layout.openBlob(descriptor) }
        defer { close(fd) }
        progress?.started(descriptor.digest, size: descriptor.size, pushing: true)
        var offset: Int64 = 0
        if descriptor.size > options.chunkSize {
            while offset < descriptor.size {
                let length = min(options.chunkSize, descriptor.size - offset)
                let response = try send(HTTPRequest(method: "PATCH", url: location!,
                                                    headers: ["Content-Type: application/octet-stream",
                                                              "Content-Range: \(offset)-\(offset + length - 1)"],
                                                    body: .file(fd: fd, offset: offset, length: length)),
                                        repository: repository, push: true, sink: { ResponseSink(limit: 1 << 16) }, what: what)
                try expectSuccess(response, what: "\(what): chunk of \(descriptor.digest)")
                location = try uploadLocation(response, what: what)
                offset += length
                progress?.advanced(Int(length))
            }
        }
        let remaining = descriptor.size - offset
        let put = location! + (location!.contains("?") ? "&" : "?") + "digest=" + descriptor.digest.description
        let response = try send(HTTPRequest(method: "PUT", url: put, headers: ["Content-Type: application/octet-stream"],
                                            body: remaining > 0 ? .file(fd: fd, offset: offset, length: remaining) : .none),
                                repository: repository, push: true, sink: { ResponseSink(limit: 1 << 16) }, what: what)
        try expectSuccess(response, what: "\(what): blob \(descriptor.digest)")
        if remaining > 0 { progress?.advanced(Int(remaining)) }
        progress?.finished(descriptor.digest)
    }

    private func uploadLocation(_ response: HTTPResponse, what: String) throws(RegistryError) -> String {
        guard let location = response.header("location"), !location.isEmpty else {
            throw RegistryError(.protocolViolation, "\(what): the registry started an upload without a Location")
        }
        if location.hasPrefix("/") { return baseURL + location }
        guard location.hasPrefix(baseURL + "/") else {
            // Credentials go only to this registry: an upload elsewhere would carry them there.
            throw RegistryError(.protocolViolation, "\(what): the registry sent the upload to another place (\(location))")
        }
        return location
    }

    // MARK: - requests

    private func url(_ repository: String, _ path: String) -> String { "\(baseURL)/v2/\(repository)/\(path)" }

    /// Connects on first use: https, or for an insecure host whichever of https (unverified) and
    /// http answers `/v2/`.
    private func connect() throws(RegistryError) -> CurlSession {
        if let session { return session }
        let insecure = options.insecureHosts.contains(host)
        var session = try CurlSession(transport: .init(scheme: "https", verifyTLS: !insecure, caFile: options.caFile))
        baseURL = "https://" + host
        if insecure {
            do {
                _ = try session.perform(HTTPRequest(method: "GET", url: baseURL + "/v2/"), into: ResponseSink(limit: 1 << 16), host: host)
            } catch where error.kind == .tls || error.kind == .unreachable {
                session = try CurlSession(transport: .init(scheme: "http", verifyTLS: false, caFile: nil))
                baseURL = "http://" + host
            }
        }
        self.session = session
        return session
    }

    /// Sends with this registry's authorization for the scope, answering a 401 challenge once
    /// (basic or a bearer token), and retrying 429/5xx and dropped connections with backoff.
    private func send(_ request: HTTPRequest, repository: String, push: Bool, mountFrom: String? = nil,
                      sink makeSink: () -> ResponseSink, what: String) throws(RegistryError) -> HTTPResponse {
        let session = try connect()
        var request = request
        if request.url.hasPrefix("/") { request.url = baseURL + request.url }
        var scopes = ["repository:\(repository):\(push ? "pull,push" : "pull")"]
        if let mountFrom { scopes.append("repository:\(mountFrom):pull") }
        let scopeKey = scopes.joined(separator: " ")
        var challenged = false
        var attempt = 0
        while true {
            var sent = request
            if let authorization = authorizations[scopeKey] { sent.headers.append("Authorization: " + authorization) }
            let response: HTTPResponse
            do {
                response = try session.perform(sent, into: makeSink(), host: host)
            } catch where error.kind == .unreachable && attempt < options.retries {
                attempt += 1
                pause(attempt, retryAfter: nil)
                continue
            }
            if response.status == 401 && !challenged {
                challenged = true
                authorizations[scopeKey] = try answer(response, scopes: scopes, what: what)
                continue
            }
            if response.status == 401 || (response.status == 403 && authorizations[scopeKey] != nil) {
                throw refused(response, what: what)
            }
            if (response.status == 429 || (500...599).contains(response.status)) && attempt < options.retries {
                attempt += 1
                pause(attempt, retryAfter: response.header("retry-after").flatMap { Double($0) })
                continue
            }
            return response
        }
    }

    private func pause(_ attempt: Int, retryAfter: Double?) {
        let seconds = min(retryAfter ?? options.backoff * Double(1 << (attempt - 1)), 30)
        var wait = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
        var left = timespec()
        while nanosleep(&wait, &left) != 0 && errno == EINTR { wait = left }
    }

    private func lookUpCredential() throws(RegistryError) -> Credential? {
        if let credential { return credential }
        let found = try options.credentials.credential(for: host)
        credential = .some(found)
        return found
    }

    /// The Authorization value that answers a 401's `WWW-Authenticate`.
    private func answer(_ response: HTTPResponse, scopes: [String], what: String) throws(RegistryError) -> String {
        let challenge = response.header("www-authenticate") ?? ""
        let credential = try lookUpCredential()
        if challenge.lowercased().hasPrefix("basic") {
            switch credential?.secret {
            case .basic(let user, let password): return "Basic " + Base64.encode(Array((user + ":" + password).utf8))
            case .header(let value): return value
            case nil: throw refused(response, what: what)
            }
        }
        guard challenge.lowercased().hasPrefix("bearer") else {
            throw RegistryError(.authRefused, "\(host) asks for \(challenge.isEmpty ? "authentication without a WWW-Authenticate challenge" : "an unsupported authentication (\(challenge.prefix(40)))")")
        }
        if case .header(let value)? = credential?.secret, value.hasPrefix("Bearer ") { return value }
        let parameters = Self.challengeParameters(String(challenge.dropFirst(6)))
        guard let realm = parameters["realm"], realm.hasPrefix("https://") || realm.hasPrefix("http://") else {
            throw RegistryError(.protocolViolation, "\(host): the bearer challenge names no http(s) realm")
        }
        if realm.hasPrefix("http://") && !options.insecureHosts.contains(host) {
            throw RegistryError(.protocolViolation, "\(host): the token realm \(realm) is plain HTTP; credentials are not sent there")
        }
        var query: [String] = []
        if let service = parameters["service"] { query.append("service=" + Self.percentEncode(service)) }
        for scope in scopes { query.append("scope=" + Self.percentEncode(scope)) }
        var headers: [String] = []
        switch credential?.secret {
        case .basic(let user, let password): headers.append("Authorization: Basic " + Base64.encode(Array((user + ":" + password).utf8)))
        case .header(let value): headers.append("Authorization: " + value)
        case nil: break
        }
        let tokenSession = try CurlSession(transport: .init(scheme: "https", verifyTLS: !options.insecureHosts.contains(host),
                                                            caFile: options.caFile))
        let tokenURL = realm + (realm.contains("?") ? "&" : "?") + query.joined(separator: "&")
        let tokenResponse = try tokenSession.perform(HTTPRequest(method: "GET", url: tokenURL, headers: headers),
                                                     into: ResponseSink(limit: 1 << 20), host: host)
        guard tokenResponse.status == 200 else { throw refused(tokenResponse, what: what) }
        guard let json = try? JSONParser.parse(tokenResponse.body, maxBytes: 1 << 20),
              let token = json["token"]?.stringValue ?? json["access_token"]?.stringValue, !token.isEmpty else {
            throw RegistryError(.protocolViolation, "\(host): the token service answered no token")
        }
        return "Bearer " + token
    }

    private func refused(_ response: HTTPResponse, what: String) -> RegistryError {
        let tried = (try? lookUpCredential()).flatMap { $0 }.map { "the credential from \($0.source) was refused" }
            ?? "no credential found (looked in \(options.credentials.sources().joined(separator: ", ")))"
        return RegistryError(.authRefused, "\(what): \(host) refused access (HTTP \(response.status)); \(tried)")
    }

    private func expectSuccess(_ response: HTTPResponse, what: String) throws(RegistryError) {
        guard !(200...299).contains(response.status) else { return }
        let code = Self.errorCode(response.body)
        switch response.status {
        case 404:
            throw RegistryError(.notFound, "\(what) does not exist in \(host)" + (code.map { " (\($0))" } ?? ""))
        case 401, 403:
            throw refused(response, what: what)
        case 429, 500...599:
            throw RegistryError(.unreachable, "\(what): \(host) answered HTTP \(response.status) \(options.retries + 1) times")
        default:
            throw RegistryError(.protocolViolation, "\(what): \(host) answered HTTP \(response.status)" + (code.map { " (\($0))" } ?? ""))
        }
    }

    /// The first `errors[].code` of a distribution error body, bounded and printable.
    static func errorCode(_ body: [UInt8]) -> String? {
        guard let json = try? JSONParser.parse(Array(body.prefix(1 << 16))),
              let code = json["errors"]?.arrayValue?.first?["code"]?.stringValue else { return nil }
        return String(code.prefix(64).filter { $0.isASCII && ($0.isLetter || $0 == "_") })
    }

    /// `realm="…",service="…",scope="…"`
    static func challengeParameters(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        var rest = Substring(text)
        while let equals = rest.firstIndex(of: "=") {
            let key = rest[..<equals].trimmingWhitespace().lowercased().trimmingCharacters(",")
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                let end = rest.firstIndex(of: "\"") ?? rest.endIndex
                value = String(rest[..<end])
                rest = end < rest.endIndex ? rest[rest.index(after: end)...] : rest[end...]
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = rest[..<end].trimmingWhitespace()
                rest = rest[end...]
            }
            if let comma = rest.firstIndex(of: ",") { rest = rest[rest.index(after: comma)...] } else { rest = rest[rest.endIndex...] }
            result[key] = value
        }
        return result
    }

    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || "-._~".utf8.contains(byte) {
                out.append(Character(Unicode.Scalar(byte)))
            } else {
                let digits = Array("0123456789ABCDEF")
                out += "%" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 15)])
            }
        }
        return out
    }

    // MARK: - local errors

    private func local<T>(_ body: () throws(OCIError) -> T) throws(RegistryError) -> T {
        do {
            return try body()
        } catch {
            throw RegistryError(error.kind == .digestMismatch ? .digestMismatch : .io, error.message)
        }
    }

    private func parseJSON(_ bytes: [UInt8], what: String) throws(RegistryError) -> JSONValue {
        do {
            return try JSONParser.parse(bytes, maxBytes: ImageLayout.documentLimit)
        } catch {
            throw RegistryError(.protocolViolation, "\(what): not JSON (\(error))")
        }
    }

    private func parse<T>(_ bytes: [UInt8], as kind: String, of reference: RegistryReference,
                          _ make: (JSONValue) throws(OCIError) -> T) throws(RegistryError) -> T {
        let json = try parseJSON(bytes, what: "\(reference) \(kind)")
        do {
            return try make(json)
        } catch {
            throw RegistryError(.protocolViolation, error.message)
        }
    }
}

extension String {
    fileprivate func trimmingCharacters(_ set: Character) -> String {
        String(drop { $0 == set || $0 == " " })
    }
}
