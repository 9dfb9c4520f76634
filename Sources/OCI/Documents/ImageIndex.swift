import JSON

/// An image index (image-spec `image-index.md`), as a layout's `index.json` holds it.
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
