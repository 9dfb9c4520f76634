import JSON

public enum MediaType {
    public static let index = "application/vnd.oci.image.index.v1+json"
    public static let manifest = "application/vnd.oci.image.manifest.v1+json"
    public static let config = "application/vnd.oci.image.config.v1+json"
    public static let layer = "application/vnd.oci.image.layer.v1.tar"
    public static let layerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let layerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    // Docker's schema 2, which skopeo keeps when copying some images into a layout.
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    static let dockerLayer = "application/vnd.docker.image.rootfs.diff.tar"

    public static func isLayer(_ type: String) -> Bool {
        [layer, layerGzip, layerZstd, dockerLayer, dockerLayerGzip,
         "application/vnd.oci.image.layer.nondistributable.v1.tar",
         "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"].contains(type)
    }
}

/// The annotation that names a manifest in a layout's `index.json`.
public let refNameAnnotation = "org.opencontainers.image.ref.name"

public struct Platform: Sendable, Equatable {
    public var os: String
    public var architecture: String
    public var variant: String?

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    public var description: String { os + "/" + architecture + (variant.map { "/" + $0 } ?? "") }
}

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

public struct ImageIndex: Sendable, Equatable {
    public var manifests: [Descriptor]

    public init(manifests: [Descriptor] = []) { self.manifests = manifests }

    public var json: JSONValue {
        .object(["schemaVersion": .number(2), "mediaType": .string(MediaType.index),
                 "manifests": .array(manifests.map(\.json))])
    }

    public init(json: JSONValue, in document: String) throws(OCIError) {
        guard json["schemaVersion"]?.int64Value == 2 else { throw Descriptor.bad(document, "schemaVersion is not 2") }
        guard let list = json["manifests"]?.arrayValue else { throw Descriptor.bad(document, "has no manifests array") }
        var manifests: [Descriptor] = []
        for item in list { manifests.append(try Descriptor(json: item, in: document)) }
        self.manifests = manifests
    }
}

public struct ImageManifest: Sendable, Equatable {
    public var config: Descriptor
    public var layers: [Descriptor]
    public var annotations: [String: String]

    public init(config: Descriptor, layers: [Descriptor], annotations: [String: String] = [:]) {
        self.config = config
        self.layers = layers
        self.annotations = annotations
    }

    public var json: JSONValue {
        var members: [JSONObject.Member] = [
            .init(key: "schemaVersion", value: .number(2)),
            .init(key: "mediaType", value: .string(MediaType.manifest)),
            .init(key: "config", value: config.json),
            .init(key: "layers", value: .array(layers.map(\.json))),
        ]
        if !annotations.isEmpty { members.append(.init(key: "annotations", value: .sortedStrings(annotations))) }
        return .object(JSONObject(members))
    }

    public init(json: JSONValue, in document: String) throws(OCIError) {
        guard json["schemaVersion"]?.int64Value == 2 else { throw Descriptor.bad(document, "schemaVersion is not 2") }
        guard let config = json["config"] else { throw Descriptor.bad(document, "has no config") }
        self.config = try Descriptor(json: config, in: document)
        var layers: [Descriptor] = []
        for item in json["layers"]?.arrayValue ?? [] {
            let layer = try Descriptor(json: item, in: document)
            guard MediaType.isLayer(layer.mediaType) else {
                throw OCIError(.malformed, "\(document): layer \(layer.digest) has media type \(layer.mediaType), which is not a layer")
            }
            layers.append(layer)
        }
        self.layers = layers
        var annotations: [String: String] = [:]
        for member in json["annotations"]?.objectValue?.members ?? [] {
            if let value = member.value.stringValue { annotations[member.key] = value }
        }
        self.annotations = annotations
    }
}

/// The parts of an image config (image-spec `config.md`) that running and rebuilding an image use.
/// Fields outside them are not carried over.
public struct ImageConfig: Sendable, Equatable {
    public var created: String?
    public var platform: Platform
    public var osVersion: String?
    public var user: String?
    public var environment: [String]
    public var entrypoint: [String]?
    public var command: [String]?
    public var workingDirectory: String?
    public var labels: [String: String]
    public var exposedPorts: [String]
    public var stopSignal: String?
    public var diffIDs: [Digest]
    public var history: [History]

    public struct History: Sendable, Equatable {
        public var created: String?
        public var createdBy: String?
        public var comment: String?
        public var emptyLayer: Bool

        public init(created: String? = nil, createdBy: String? = nil, comment: String? = nil, emptyLayer: Bool = false) {
            self.created = created
            self.createdBy = createdBy
            self.comment = comment
            self.emptyLayer = emptyLayer
        }
    }

    public init(platform: Platform) {
        self.platform = platform
        environment = []
        labels = [:]
        exposedPorts = []
        diffIDs = []
        history = []
    }

    public init(json: JSONValue, in document: String) throws(OCIError) {
        guard let os = json["os"]?.stringValue, let arch = json["architecture"]?.stringValue else {
            throw Descriptor.bad(document, "has no os or architecture")
        }
        self.init(platform: Platform(os: os, architecture: arch, variant: json["variant"]?.stringValue))
        created = json["created"]?.stringValue
        osVersion = json["os.version"]?.stringValue
        if let c = json["config"] {
            user = c["User"]?.stringValue
            environment = c["Env"]?.arrayValue?.compactMap(\.stringValue) ?? []
            entrypoint = c["Entrypoint"]?.arrayValue?.compactMap(\.stringValue)
            command = c["Cmd"]?.arrayValue?.compactMap(\.stringValue)
            workingDirectory = c["WorkingDir"]?.stringValue
            for member in c["Labels"]?.objectValue?.members ?? [] {
                if let value = member.value.stringValue { labels[member.key] = value }
            }
            exposedPorts = c["ExposedPorts"]?.objectValue?.members.map(\.key) ?? []
            stopSignal = c["StopSignal"]?.stringValue
        }
        guard json["rootfs"]?["type"]?.stringValue == "layers", let ids = json["rootfs"]?["diff_ids"]?.arrayValue else {
            throw Descriptor.bad(document, "rootfs is not {\"type\": \"layers\", \"diff_ids\": [...]}")
        }
        for id in ids {
            guard let text = id.stringValue, let digest = Digest(text) else {
                throw Descriptor.bad(document, "a diff_id is not a sha256 digest")
            }
            diffIDs.append(digest)
        }
        for item in json["history"]?.arrayValue ?? [] {
            history.append(History(created: item["created"]?.stringValue, createdBy: item["created_by"]?.stringValue,
                                   comment: item["comment"]?.stringValue, emptyLayer: item["empty_layer"]?.boolValue ?? false))
        }
    }

    public var json: JSONValue {
        var config: [JSONObject.Member] = []
        if let user { config.append(.init(key: "User", value: .string(user))) }
        if !exposedPorts.isEmpty {
            config.append(.init(key: "ExposedPorts", value: .object(JSONObject(exposedPorts.sorted().map {
                JSONObject.Member(key: $0, value: .object([:]))
            }))))
        }
        config.append(.init(key: "Env", value: .array(environment.map(JSONValue.string))))
        if let entrypoint { config.append(.init(key: "Entrypoint", value: .array(entrypoint.map(JSONValue.string)))) }
        if let command { config.append(.init(key: "Cmd", value: .array(command.map(JSONValue.string)))) }
        if let workingDirectory { config.append(.init(key: "WorkingDir", value: .string(workingDirectory))) }
        if !labels.isEmpty { config.append(.init(key: "Labels", value: .sortedStrings(labels))) }
        if let stopSignal { config.append(.init(key: "StopSignal", value: .string(stopSignal))) }
        var members: [JSONObject.Member] = []
        if let created { members.append(.init(key: "created", value: .string(created))) }
        members += [
            .init(key: "architecture", value: .string(platform.architecture)),
            .init(key: "os", value: .string(platform.os)),
        ]
        if let osVersion { members.append(.init(key: "os.version", value: .string(osVersion))) }
        if let variant = platform.variant { members.append(.init(key: "variant", value: .string(variant))) }
        members.append(.init(key: "config", value: .object(JSONObject(config))))
        members.append(.init(key: "rootfs", value: .object([
            "type": .string("layers"), "diff_ids": .array(diffIDs.map { .string($0.description) }),
        ])))
        if !history.isEmpty {
            members.append(.init(key: "history", value: .array(history.map { h in
                var m: [JSONObject.Member] = []
                if let c = h.created { m.append(.init(key: "created", value: .string(c))) }
                if let c = h.createdBy { m.append(.init(key: "created_by", value: .string(c))) }
                if let c = h.comment { m.append(.init(key: "comment", value: .string(c))) }
                if h.emptyLayer { m.append(.init(key: "empty_layer", value: .bool(true))) }
                return .object(JSONObject(m))
            })))
        }
        return .object(JSONObject(members))
    }

    /// The value of `NAME` in `Env`.
    public func environmentValue(_ name: String) -> String? {
        environment.last { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
    }
}
