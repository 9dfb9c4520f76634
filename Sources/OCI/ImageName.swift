/// Where an image is named to live: an OCI layout on disk or a repository in a registry.
///
/// `oci:DIR[:TAG]` is always a layout, `docker://REF` always a registry. Otherwise a name starting
/// with `/`, `.` or `~` is a layout path; a name with a `/` whose first part looks like a host
/// (has a `.` or a `:`, or is `localhost`, as Docker's grammar decides) is a registry reference,
/// any other name with a `/` a layout path (as before registries were known); a name without a
/// `/` is a Docker Hub image (`busybox` → `docker.io/library/busybox:latest`).
public enum ImageName: Sendable, Hashable, CustomStringConvertible {
    case layout(directory: String, tag: String)
    case registry(RegistryReference)

    public init(parsing text: String) throws(ImageNameError) {
        guard !text.isEmpty else { throw ImageNameError("an empty image name") }
        guard text.utf8.count <= 4096, !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) else {
            throw ImageNameError("an image name holds a control character or is longer than 4096 bytes")
        }
        if text.hasPrefix("oci:") {
            self = try Self.layout(String(text.dropFirst(4)), as: text)
        } else if text.hasPrefix("docker://") {
            self = .registry(try RegistryReference(parsing: String(text.dropFirst(9))))
        } else if text.hasPrefix("/") || text.hasPrefix(".") || text.hasPrefix("~") {
            self = try Self.layout(text, as: text)
        } else if let slash = text.firstIndex(of: "/") {
            self = RegistryReference.looksLikeHost(text[..<slash])
                ? .registry(try RegistryReference(parsing: text)) : try Self.layout(text, as: text)
        } else {
            self = .registry(try RegistryReference(parsing: text))
        }
    }

    /// `DIR[:TAG]`: the tag is what follows the last `:` when no `/` follows it.
    private static func layout(_ text: String, as given: String) throws(ImageNameError) -> ImageName {
        var directory = text
        var tag = "latest"
        if let colon = text.lastIndex(of: ":"), !text[text.index(after: colon)...].contains("/") {
            directory = String(text[..<colon])
            tag = String(text[text.index(after: colon)...])
        }
        guard !directory.isEmpty else { throw ImageNameError("\(given) names no directory; give oci:DIR[:TAG]") }
        guard isLayoutTag(tag) else {
            throw ImageNameError("\(tag) in \(given) is not a valid tag: use letters, digits, '.', '_' and '-'")
        }
        return .layout(directory: directory, tag: tag)
    }

    static func isLayoutTag(_ tag: String) -> Bool {
        !tag.isEmpty && tag.utf8.count <= 128 && tag.utf8.allSatisfy { isWord($0) || $0 == 0x2e || $0 == 0x2d }
    }

    public var description: String {
        switch self {
        case .layout(let directory, let tag): directory + ":" + tag
        case .registry(let reference): reference.description
        }
    }
}

/// A reference into a registry, normalised as Docker, pack and skopeo do: `busybox` is
/// `docker.io/library/busybox:latest`. Parsed strictly to the distribution grammar.
public struct RegistryReference: Sendable, Hashable, CustomStringConvertible {
    /// `docker.io`, `ghcr.io`, `localhost:5000`: the name credentials are looked up by.
    public var host: String
    /// `library/busybox`: lower-case path components.
    public var repository: String
    /// nil when the reference is by digest only.
    public var tag: String?
    public var digest: Digest?

    public init(host: String, repository: String, tag: String? = nil, digest: Digest? = nil) {
        self.host = host
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    public init(parsing text: String) throws(ImageNameError) {
        guard !text.isEmpty else { throw ImageNameError("an empty image reference") }
        var rest = Substring(text)
        if let at = rest.firstIndex(of: "@") {
            let digestText = String(rest[rest.index(after: at)...])
            guard let digest = Digest(digestText) else {
                throw ImageNameError("\(text): the digest must be sha256: and 64 lower-case hex digits")
            }
            self.digest = digest
            rest = rest[..<at]
        } else {
            digest = nil
        }
        var tag: String?
        if let colon = rest.lastIndex(of: ":"), !rest[rest.index(after: colon)...].contains("/") {
            let candidate = String(rest[rest.index(after: colon)...])
            guard Self.isTag(candidate) else {
                throw ImageNameError("\(text): \(candidate.isEmpty ? "an empty tag" : "the tag \(candidate)") is not valid "
                                     + "(letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-')")
            }
            tag = candidate
            rest = rest[..<colon]
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false)
        var host = "docker.io"
        if components.count > 1, Self.looksLikeHost(components[0]) {
            host = String(components.removeFirst())
            guard Self.isHost(host) else { throw ImageNameError("\(text): \(host) is not a valid registry host[:port]") }
        }
        if host == "index.docker.io" || host == "registry-1.docker.io" { host = "docker.io" }
        if host == "docker.io" && components.count == 1 { components.insert("library", at: 0) }
        for component in components where !Self.isPathComponent(component) {
            let why = component.isEmpty ? "an empty path component"
                : component.contains(where: \.isUppercase) ? "\(component) has upper-case letters"
                : "\(component) is not a valid path component (lower-case letters and digits, joined by '.', '_', '__' or '-')"
            throw ImageNameError("\(text): \(why)")
        }
        let repository = components.joined(separator: "/")
        guard host.utf8.count + 1 + repository.utf8.count <= 255 else {
            throw ImageNameError("\(text): the name is longer than 255 characters")
        }
        self.host = host
        self.repository = repository
        self.tag = tag ?? (digest == nil ? "latest" : nil)
    }

    /// What the registry API is asked for: the digest when there is one, else the tag.
    public var reference: String { digest?.description ?? tag ?? "latest" }

    public var description: String {
        host + "/" + repository + (tag.map { ":" + $0 } ?? "") + (digest.map { "@" + $0.description } ?? "")
    }

    /// The same repository at another tag or digest.
    public func with(tag: String? = nil, digest: Digest? = nil) -> RegistryReference {
        RegistryReference(host: host, repository: repository, tag: tag, digest: digest)
    }

    /// Whether `text` is a registry's `host[:port]` (for `--insecure-registry`).
    public static func isValidHost(_ text: String) -> Bool { isHost(text) }

    static func looksLikeHost(_ component: Substring) -> Bool {
        component == "localhost" || component.contains(".") || component.contains(":")
    }

    /// `name(.name)*[:port]`, names of letters, digits and inner hyphens.
    static func isHost(_ text: String) -> Bool {
        var name = Substring(text)
        if let colon = text.lastIndex(of: ":") {
            let port = text[text.index(after: colon)...]
            guard !port.isEmpty, port.count <= 5, port.utf8.allSatisfy(isDigit), let number = Int(port),
                  number > 0, number < 65536 else { return false }
            name = text[..<colon]
        }
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            guard let first = label.utf8.first, let last = label.utf8.last, label.utf8.count <= 63 else { return false }
            return isAlnum(first) && isAlnum(last) && label.utf8.allSatisfy { isAlnum($0) || $0 == 0x2d }
        }
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    static func isPathComponent(_ text: Substring) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, let last = bytes.last, isLowerAlnum(first), isLowerAlnum(last) else { return false }
        var i = 0
        while i < bytes.count {
            if isLowerAlnum(bytes[i]) { i += 1; continue }
            var j = i
            while j < bytes.count && !isLowerAlnum(bytes[j]) { j += 1 }
            let separator = bytes[i..<j]
            let valid = separator.elementsEqual([0x2e]) || separator.elementsEqual([0x5f])
                || separator.elementsEqual([0x5f, 0x5f]) || separator.allSatisfy { $0 == 0x2d }
            guard valid else { return false }
            i = j
        }
        return true
    }

    /// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
    static func isTag(_ text: String) -> Bool {
        guard let first = text.utf8.first, isWord(first), text.utf8.count <= 128 else { return false }
        return text.utf8.allSatisfy { isWord($0) || $0 == 0x2e || $0 == 0x2d }
    }
}

public struct ImageNameError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

private func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
private func isLowerAlnum(_ byte: UInt8) -> Bool { isDigit(byte) || (byte >= 0x61 && byte <= 0x7a) }
private func isAlnum(_ byte: UInt8) -> Bool { isLowerAlnum(byte) || (byte >= 0x41 && byte <= 0x5a) }
private func isWord(_ byte: UInt8) -> Bool { isAlnum(byte) || byte == 0x5f }
