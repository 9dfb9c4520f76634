import BuildpackSpec
import JSON
import OCI

/// Buildpack layers as pack writes them: one uncompressed layer per buildpack, holding
/// `/cnb/buildpacks/<escaped id>/<version>/` owned by root, and the labels that describe them.
public enum BuildpackImageLayers {
    /// Archives `entry`'s directory as its buildpack layer into `layout`.
    public static func write(_ entry: BuildpackStore.Entry, to layout: ImageLayout) throws(OCIError) -> Descriptor {
        let info = entry.descriptor.info
        let escaped = BuildpackID.escape(info.id)
        let writer = try LayerWriter(layout: layout)
        try writer.addDirectory("cnb", owner: .root)
        try writer.addDirectory("cnb/buildpacks", owner: .root)
        try writer.addDirectory("cnb/buildpacks/" + escaped, owner: .root)
        try writer.addTree(entry.directory, as: "cnb/buildpacks/\(escaped)/\(info.version)", owner: .root)
        return try writer.finish()
    }

    /// `io.buildpacks.buildpack.layers`: id → version → `{api, stacks, targets, order, layerDiffID, homepage, name}`.
    public static func label(_ layers: [(BuildpackTOML, Digest)]) -> JSONValue {
        var byID: [String: [(String, JSONValue)]] = [:]
        for (descriptor, diffID) in layers {
            var members: [JSONObject.Member] = [.init(key: "api", value: .string(descriptor.api.description))]
            if !descriptor.stacks.isEmpty {
                members.append(.init(key: "stacks", value: .array(descriptor.stacks.map(stackJSON))))
            }
            if !descriptor.targets.isEmpty {
                members.append(.init(key: "targets", value: .array(descriptor.targets.map(targetJSON))))
            }
            if !descriptor.order.isEmpty { members.append(.init(key: "order", value: orderJSON(descriptor.order))) }
            members.append(.init(key: "layerDiffID", value: .string(diffID.description)))
            if let homepage = descriptor.info.homepage, !homepage.isEmpty {
                members.append(.init(key: "homepage", value: .string(homepage)))
            }
            if let name = descriptor.info.name, !name.isEmpty { members.append(.init(key: "name", value: .string(name))) }
            byID[descriptor.info.id, default: []].append((descriptor.info.version, .object(JSONObject(members))))
        }
        return .object(JSONObject(byID.keys.sorted().map { id in
            JSONObject.Member(key: id, value: .object(JSONObject(byID[id]!.sorted { $0.0 < $1.0 }.map {
                JSONObject.Member(key: $0.0, value: $0.1)
            })))
        }))
    }

    /// `{"id", "name", "version", "homepage"}` without the empty ones (pack's `ModuleInfo`).
    static func moduleInfo(_ info: BuildpackTOML.Info) -> JSONValue {
        var members: [JSONObject.Member] = [.init(key: "id", value: .string(info.id))]
        if let name = info.name, !name.isEmpty { members.append(.init(key: "name", value: .string(name))) }
        members.append(.init(key: "version", value: .string(info.version)))
        if let homepage = info.homepage, !homepage.isEmpty { members.append(.init(key: "homepage", value: .string(homepage))) }
        return .object(JSONObject(members))
    }

    static func stackJSON(_ stack: BuildpackTOML.Stack) -> JSONValue {
        var members: [JSONObject.Member] = [.init(key: "id", value: .string(stack.id))]
        if !stack.mixins.isEmpty { members.append(.init(key: "mixins", value: .array(stack.mixins.map(JSONValue.string)))) }
        return .object(JSONObject(members))
    }

    static func targetJSON(_ target: Target) -> JSONValue {
        var members: [JSONObject.Member] = [.init(key: "os", value: .string(target.os)),
                                            .init(key: "arch", value: .string(target.arch))]
        if !target.variant.isEmpty { members.append(.init(key: "variant", value: .string(target.variant))) }
        if !target.distros.isEmpty {
            members.append(.init(key: "distros", value: .array(target.distros.map {
                .object(["name": .string($0.name), "version": .string($0.version)])
            })))
        }
        return .object(JSONObject(members))
    }

    /// `[{"group": [{"id", "version", "optional"?}]}]` (pack's `dist.Order`).
    static func orderJSON(_ order: [OrderGroup]) -> JSONValue {
        .array(order.map { group in
            .object(["group": .array(group.group.map { element in
                var members: [JSONObject.Member] = [.init(key: "id", value: .string(element.id))]
                if !element.version.isEmpty { members.append(.init(key: "version", value: .string(element.version))) }
                if element.optional { members.append(.init(key: "optional", value: .bool(true))) }
                return .object(JSONObject(members))
            })])
        })
    }
}

/// `stockade builder create`: a build image with the lifecycle, buildpacks, order and run
/// images added as pack adds them, so pack, kpack and Tekton take it for one of pack's builders.
public struct BuilderCreation {
    public var description: String
    public var buildImage: (layout: ImageLayout, image: Image)
    /// Every buildpack the builder holds, each one layer.
    public var buildpacks: [BuildpackStore.Entry]
    public var order: [OrderGroup]
    public var runImages: [RunImageReference]
    public var stackID: String?
    public var buildConfigEnv: [BuildConfigVariable]
    /// This stockade binary, the multi-call lifecycle, and the launcher images get.
    public var lifecycle: String
    public var launcher: String
    public var created = "1980-01-01T00:00:01Z"
    public var creatorVersion = "0.1.0"

    /// The phase names pack's lifecycle layer links to the lifecycle binary.
    public static let phases = ["detector", "analyzer", "restorer", "builder", "exporter", "rebaser", "creator", "extender"]

    public init(description: String, buildImage: (layout: ImageLayout, image: Image), buildpacks: [BuildpackStore.Entry],
                order: [OrderGroup], runImages: [RunImageReference], stackID: String?,
                buildConfigEnv: [BuildConfigVariable], lifecycle: String, launcher: String) {
        self.description = description
        self.buildImage = buildImage
        self.buildpacks = buildpacks
        self.order = order
        self.runImages = runImages
        self.stackID = stackID
        self.buildConfigEnv = buildConfigEnv
        self.lifecycle = lifecycle
        self.launcher = launcher
    }

    /// The order with every version filled in from the buildpacks present (pack's `processOrder`).
    public static func resolve(_ order: [OrderGroup], buildpacks: [BuildpackStore.Entry]) throws(LifecycleError) -> [OrderGroup] {
        var resolved: [OrderGroup] = []
        for group in order {
            var elements: [GroupElement] = []
            for var element in group.group {
                let versions = buildpacks.filter { $0.descriptor.info.id == element.id }.map(\.descriptor.info.version)
                if element.version.isEmpty {
                    guard versions.count == 1 else {
                        throw LifecycleError("the order names \(element.id) without a version, and the builder holds "
                                             + (versions.isEmpty ? "no such buildpack" : "versions \(versions.joined(separator: ", "))"),
                                             exitCode: LifecycleError.Code.invalidArguments)
                    }
                    element.version = versions[0]
                } else if !versions.contains(element.version) {
                    throw LifecycleError("the order names \(element.id)@\(element.version), which the builder does not hold",
                                         exitCode: LifecycleError.Code.invalidArguments)
                }
                elements.append(element)
            }
            resolved.append(OrderGroup(elements))
        }
        return resolved
    }

    /// Writes the builder into `layout` and tags it; returns its manifest.
    public func write(to layout: ImageLayout, tag: String) throws(OCIError) -> Descriptor {
        let base = buildImage.image
        var config = base.config
        config.created = created
        config.history = []
        var layers = base.manifest.layers
        for layer in layers { try layout.importBlob(layer, from: buildImage.layout) }
        var diffIDs = config.diffIDs
        func add(_ descriptor: Descriptor) {
            layers.append(descriptor)
            diffIDs.append(descriptor.digest)  // uncompressed: the blob is its own diff
        }
        let uid = config.environmentValue("CNB_USER_ID").flatMap(UInt32.init) ?? 1000
        let gid = config.environmentValue("CNB_GROUP_ID").flatMap(UInt32.init) ?? 1000
        if config.environmentValue("CNB_USER_ID") == nil { config.environment.append("CNB_USER_ID=\(uid)") }
        if config.environmentValue("CNB_GROUP_ID") == nil { config.environment.append("CNB_GROUP_ID=\(gid)") }

        let dirs = try LayerWriter(layout: layout)
        let user = EntryOwner(uid: uid, gid: gid)
        try dirs.addDirectory("workspace", owner: user)
        try dirs.addDirectory("layers", owner: user)
        for path in ["cnb", "cnb/buildpacks", "cnb/extensions", "platform", "platform/env", "cnb/build-config", "cnb/build-config/env"] {
            try dirs.addDirectory(path, owner: .root)
        }
        add(try dirs.finish())

        let lifecycleLayer = try LayerWriter(layout: layout)
        try lifecycleLayer.addDirectory("cnb", owner: .root)
        try lifecycleLayer.addDirectory("cnb/lifecycle", owner: .root)
        try lifecycleLayer.addHostFile(lifecycle, as: "cnb/lifecycle/lifecycle", mode: 0o755, owner: .root)
        try lifecycleLayer.addHostFile(launcher, as: "cnb/lifecycle/launcher", mode: 0o755, owner: .root)
        for phase in Self.phases { try lifecycleLayer.addSymlink("cnb/lifecycle/" + phase, target: "lifecycle", owner: .root) }
        try lifecycleLayer.addSymlink("lifecycle", target: "/cnb/lifecycle", owner: .root)
        add(try lifecycleLayer.finish())

        var described: [(BuildpackTOML, Digest)] = []
        for entry in buildpacks.sorted(by: { ($0.descriptor.info.id, $0.descriptor.info.version) < ($1.descriptor.info.id, $1.descriptor.info.version) }) {
            let layer = try BuildpackImageLayers.write(entry, to: layout)
            add(layer)
            described.append((entry.descriptor, layer.digest))
        }

        func fileLayer(_ path: String, _ text: String) throws(OCIError) -> Descriptor {
            let writer = try LayerWriter(layout: layout)
            try writer.addDirectory("cnb", owner: .root)
            try writer.addFile(path, contents: Array(text.utf8), owner: .root)
            return try writer.finish()
        }
        add(try fileLayer("cnb/order.toml", OrderTOML(order: order).rendered()))
        add(try fileLayer("cnb/stack.toml", StackTOML(runImage: runImages.first).rendered()))
        add(try fileLayer("cnb/run.toml", RunTOML(images: runImages).rendered()))
        if !buildConfigEnv.isEmpty {
            let writer = try LayerWriter(layout: layout)
            for path in ["cnb", "cnb/build-config", "cnb/build-config/env"] { try writer.addDirectory(path, owner: .root) }
            for variable in buildConfigEnv {
                try writer.addFile("cnb/build-config/env/" + variable.fileName, contents: Array(variable.value.utf8), owner: .root)
                if let delimiter = variable.delimiter, let name = variable.delimiterFileName {
                    try writer.addFile("cnb/build-config/env/" + name, contents: Array(delimiter.utf8), owner: .root)
                }
            }
            add(try writer.finish())
        }
        let env = try LayerWriter(layout: layout)
        try env.addDirectory("platform", owner: .root)
        try env.addDirectory("platform/env", owner: .root)
        add(try env.finish())

        config.diffIDs = diffIDs
        config.workingDirectory = "/layers"
        config.labels[BuilderLabel.metadata] = metadata().text
        config.labels[BuilderLabel.buildpackLayers] = BuildpackImageLayers.label(described).text
        config.labels[BuilderLabel.buildpackOrder] = BuildpackImageLayers.orderJSON(order).text
        if let stackID { config.labels[BuilderLabel.stackID] = stackID }
        config.labels[BuilderLabel.lifecycleVersion] = creatorVersion
        config.labels[BuilderLabel.lifecycleAPIs] = apis.text
        let configDescriptor = try layout.writeJSON(config.json, mediaType: MediaType.config)
        let manifest = try layout.writeJSON(ImageManifest(config: configDescriptor, layers: layers).json,
                                            mediaType: MediaType.manifest)
        try layout.setTag(tag, to: manifest)
        return manifest
    }

    /// `{"buildpack": {"deprecated": [], "supported": [...]}, "platform": {...}}`.
    var apis: JSONValue {
        func range(_ r: ClosedRange<APIVersion>) -> JSONValue {
            .object(["deprecated": .array([]),
                     "supported": .array((r.lowerBound.minor...r.upperBound.minor).map { .string("\(r.lowerBound.major).\($0)") })])
        }
        return .object(["buildpack": range(APIVersion.supportedBuildpackAPIs), "platform": range(APIVersion.supportedPlatformAPIs)])
    }

    /// `io.buildpacks.builder.metadata` in pack's shape.
    func metadata() -> JSONValue {
        func runImage(_ reference: RunImageReference) -> JSONValue {
            .object(["image": .string(reference.image), "mirrors": .array(reference.mirrors.map(JSONValue.string))])
        }
        let infos = buildpacks.map(\.descriptor.info).sorted { ($0.id, $0.version) < ($1.id, $1.version) }
        return .object([
            "description": .string(description),
            "buildpacks": .array(infos.map(BuildpackImageLayers.moduleInfo)),
            "extensions": .array([]),
            "stack": .object(["runImage": runImages.first.map(runImage) ?? .object(["image": .string(""), "mirrors": .array([])])]),
            "images": .array(runImages.map(runImage)),
            "lifecycle": .object([
                "version": .string(creatorVersion),
                "api": .object(["buildpack": .string(APIVersion.supportedBuildpackAPIs.upperBound.description),
                                "platform": .string(APIVersion.supportedPlatformAPIs.upperBound.description)]),
                "apis": apis,
            ]),
            "createdBy": .object(["name": .string("Stockade"), "version": .string(creatorVersion)]),
        ])
    }
}

/// `stockade buildpack package`: the buildpack and its dependencies, one layer each, and the
/// `io.buildpacks.buildpackage.metadata` label (distribution spec).
public struct BuildpackPackaging {
    public var main: BuildpackStore.Entry
    public var dependencies: [BuildpackStore.Entry]
    public var created = "1980-01-01T00:00:01Z"

    public init(main: BuildpackStore.Entry, dependencies: [BuildpackStore.Entry]) {
        self.main = main
        self.dependencies = dependencies
    }

    public func write(to layout: ImageLayout, tag: String) throws(OCIError) -> Descriptor {
        var config = ImageConfig(platform: Platform(os: "linux", architecture: ImageLayout.hostArchitecture))
        config.created = created
        var layers: [Descriptor] = []
        var described: [(BuildpackTOML, Digest)] = []
        var seen: Set<String> = []
        for entry in [main] + dependencies where seen.insert(entry.descriptor.reference).inserted {
            let layer = try BuildpackImageLayers.write(entry, to: layout)
            layers.append(layer)
            described.append((entry.descriptor, layer.digest))
        }
        config.diffIDs = layers.map(\.digest)
        let info = main.descriptor.info
        var metadata: [JSONObject.Member] = [.init(key: "id", value: .string(info.id))]
        if let name = info.name, !name.isEmpty { metadata.append(.init(key: "name", value: .string(name))) }
        metadata.append(.init(key: "version", value: .string(info.version)))
        if let homepage = info.homepage, !homepage.isEmpty { metadata.append(.init(key: "homepage", value: .string(homepage))) }
        metadata.append(.init(key: "stacks", value: .array(main.descriptor.stacks.map(BuildpackImageLayers.stackJSON))))
        config.labels[BuilderLabel.buildpackageMetadata] = JSONValue.object(JSONObject(metadata)).text
        config.labels[BuilderLabel.buildpackLayers] = BuildpackImageLayers.label(described).text
        let configDescriptor = try layout.writeJSON(config.json, mediaType: MediaType.config)
        let manifest = try layout.writeJSON(ImageManifest(config: configDescriptor, layers: layers).json,
                                            mediaType: MediaType.manifest)
        try layout.setTag(tag, to: manifest)
        return manifest
    }
}
