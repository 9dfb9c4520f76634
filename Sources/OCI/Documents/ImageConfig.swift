import JSON

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
