import JSON

/// An image manifest (image-spec `manifest.md`): one config and the layers, in order.
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
