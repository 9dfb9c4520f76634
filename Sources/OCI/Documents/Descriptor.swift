import JSON

/// A content descriptor (image-spec `descriptor.md`): what a blob is, its digest and size.
public struct Descriptor: Sendable, Equatable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var annotations: [String: String]
    public var platform: Platform?

    public init(mediaType: String, digest: Digest, size: Int64, annotations: [String: String] = [:],
                platform: Platform? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.annotations = annotations
        self.platform = platform
    }

    var json: JSONValue {
        var members: [JSONObject.Member] = [
            .init(key: "mediaType", value: .string(mediaType)),
            .init(key: "digest", value: .string(digest.description)),
            .init(key: "size", value: .number(JSONNumber(String(size)))),
        ]
        if let platform {
            var p: [JSONObject.Member] = [.init(key: "architecture", value: .string(platform.architecture)),
                                          .init(key: "os", value: .string(platform.os))]
            if let v = platform.variant { p.append(.init(key: "variant", value: .string(v))) }
            members.append(.init(key: "platform", value: .object(JSONObject(p))))
        }
        if !annotations.isEmpty { members.append(.init(key: "annotations", value: .sortedStrings(annotations))) }
        return .object(JSONObject(members))
    }

    init(json: JSONValue, in document: String) throws(OCIError) {
        guard let mediaType = json["mediaType"]?.stringValue else { throw Self.bad(document, "a descriptor has no mediaType") }
        guard let text = json["digest"]?.stringValue, let digest = Digest(text) else {
            throw Self.bad(document, "a descriptor's digest is missing or not sha256:<64 lowercase hex>")
        }
        guard let size = json["size"]?.int64Value, size >= 0 else { throw Self.bad(document, "a descriptor's size is missing") }
        var annotations: [String: String] = [:]
        for member in json["annotations"]?.objectValue?.members ?? [] {
            if let value = member.value.stringValue { annotations[member.key] = value }
        }
        var platform: Platform?
        if let p = json["platform"], let os = p["os"]?.stringValue, let arch = p["architecture"]?.stringValue {
            platform = Platform(os: os, architecture: arch, variant: p["variant"]?.stringValue)
        }
        self.init(mediaType: mediaType, digest: digest, size: size, annotations: annotations, platform: platform)
    }

    static func bad(_ document: String, _ reason: String) -> OCIError { OCIError(.malformed, "\(document): \(reason)") }
}
