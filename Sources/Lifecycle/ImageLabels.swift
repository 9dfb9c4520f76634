import BuildpackSpec
import JSON
import OCI

/// The labels an exported image carries (Platform API §7), and the conversions between the TOML
/// that buildpacks write and the JSON those labels hold.
public enum ImageLabel {
    public static let lifecycleMetadata = "io.buildpacks.lifecycle.metadata"
    public static let buildMetadata = "io.buildpacks.build.metadata"
    public static let projectMetadata = "io.buildpacks.project.metadata"
}

/// `io.buildpacks.lifecycle.metadata`: which layer is which, so that a later build, a cache and a
/// rebase can find them again.
public struct LifecycleMetadata: Sendable, Equatable {
    public struct Layer: Sendable, Equatable {
        public var digest: Digest
        public var data: TOMLTable
        public var build: Bool
        public var launch: Bool
        public var cache: Bool

        public init(digest: Digest, data: TOMLTable, build: Bool, launch: Bool, cache: Bool) {
            self.digest = digest
            self.data = data
            self.build = build
            self.launch = launch
            self.cache = cache
        }
    }

    public struct Buildpack: Sendable, Equatable {
        public var id: String
        public var version: String
        /// By layer name.
        public var layers: [String: Layer]
        public var store: TOMLTable?

        public init(id: String, version: String, layers: [String: Layer] = [:], store: TOMLTable? = nil) {
            self.id = id
            self.version = version
            self.layers = layers
            self.store = store
        }
    }

    public var app: [Digest] = []
    /// The layer of `<layers>/sbom/launch`, when buildpacks wrote SBOMs.
    public var sbom: Digest?
    public var config: Digest?
    public var launcher: Digest?
    public var processTypes: Digest?
    public var buildpacks: [Buildpack] = []
    public var runImageTopLayer: Digest?
    public var runImageReference: String?
    public var runImage: String?

    public init() {}

    public func buildpack(_ id: String) -> Buildpack? { buildpacks.first { $0.id == id } }

    public var json: JSONValue {
        func sha(_ d: Digest?) -> JSONValue { .object(["sha": .string(d?.description ?? "")]) }
        var members: [JSONObject.Member] = [
            .init(key: "app", value: .array(app.map { .object(["sha": .string($0.description)]) })),
        ]
        if let sbom { members.append(.init(key: "sbom", value: sha(sbom))) }
        members += [
            .init(key: "config", value: sha(config)),
            .init(key: "launcher", value: sha(launcher)),
        ]
        if let processTypes { members.append(.init(key: "process-types", value: sha(processTypes))) }
        members.append(.init(key: "buildpacks", value: .array(buildpacks.map { bp in
            var m: [JSONObject.Member] = [
                .init(key: "key", value: .string(bp.id)),
                .init(key: "version", value: .string(bp.version)),
                .init(key: "layers", value: .object(JSONObject(bp.layers.keys.sorted(by: utf8Less).map { name in
                    let l = bp.layers[name]!
                    return JSONObject.Member(key: name, value: .object([
                        "sha": .string(l.digest.description), "data": TOMLJSON.json(l.data),
                        "build": .bool(l.build), "launch": .bool(l.launch), "cache": .bool(l.cache),
                    ]))
                }))),
            ]
            if let store = bp.store { m.append(.init(key: "store", value: .object(["metadata": TOMLJSON.json(store)]))) }
            return .object(JSONObject(m))
        })))
        var run: [JSONObject.Member] = []
        if let top = runImageTopLayer { run.append(.init(key: "topLayer", value: .string(top.description))) }
        if let ref = runImageReference { run.append(.init(key: "reference", value: .string(ref))) }
        if let image = runImage { run.append(.init(key: "image", value: .string(image))) }
        members.append(.init(key: "runImage", value: .object(JSONObject(run))))
        members.append(.init(key: "stack", value: .object(["runImage": .object(["image": .string(runImage ?? "")])])))
        return .object(JSONObject(members))
    }

    /// Reads the label of an earlier image. A label that does not parse yields nothing: the
    /// earlier image then only loses its layers' reuse, never the build.
    public init?(label: String?) {
        guard let label, let json = try? JSONParser.parse(Array(label.utf8), maxBytes: ImageLayout.documentLimit) else {
            return nil
        }
        app = json["app"]?.arrayValue?.compactMap { $0["sha"]?.stringValue.flatMap(Digest.init) } ?? []
        sbom = json["sbom"]?["sha"]?.stringValue.flatMap(Digest.init)
        config = json["config"]?["sha"]?.stringValue.flatMap(Digest.init)
        launcher = json["launcher"]?["sha"]?.stringValue.flatMap(Digest.init)
        processTypes = json["process-types"]?["sha"]?.stringValue.flatMap(Digest.init)
        runImageTopLayer = json["runImage"]?["topLayer"]?.stringValue.flatMap(Digest.init)
        runImageReference = json["runImage"]?["reference"]?.stringValue
        runImage = json["runImage"]?["image"]?.stringValue
        for item in json["buildpacks"]?.arrayValue ?? [] {
            guard let id = item["key"]?.stringValue else { continue }
            var bp = Buildpack(id: id, version: item["version"]?.stringValue ?? "")
            for member in item["layers"]?.objectValue?.members ?? [] {
                guard let digest = member.value["sha"]?.stringValue.flatMap(Digest.init) else { continue }
                bp.layers[member.key] = Layer(digest: digest, data: TOMLJSON.table(member.value["data"]) ?? TOMLTable(),
                                              build: member.value["build"]?.boolValue ?? false,
                                              launch: member.value["launch"]?.boolValue ?? false,
                                              cache: member.value["cache"]?.boolValue ?? false)
            }
            if let store = item["store"]?["metadata"] { bp.store = TOMLJSON.table(store) }
            buildpacks.append(bp)
        }
    }
}

/// TOML tables as JSON objects and back: layer `[metadata]` lives in image labels as JSON.
/// Dates become strings (JSON has none), so they come back as strings.
public enum TOMLJSON {
    public static func json(_ table: TOMLTable) -> JSONValue {
        .object(JSONObject(table.keys.map { JSONObject.Member(key: $0, value: json(table[$0]!)) }))
    }

    static func json(_ value: TOMLValue) -> JSONValue {
        switch value {
        case .string(let s): .string(s)
        case .integer(let i): .number(JSONNumber(String(i)))
        case .float(let f): f.isFinite ? .number(JSONNumber(String(f))) : .string(String(f))
        case .boolean(let b): .bool(b)
        case .dateTime(let d): .string(d.description)
        case .array(let items): .array(items.map(json))
        case .table(let t): json(t)
        }
    }

    public static func table(_ value: JSONValue?) -> TOMLTable? {
        guard let object = value?.objectValue else { return nil }
        var table = TOMLTable()
        for member in object.members {
            if let v = toml(member.value) { table.storage[member.key] = v }
        }
        return table
    }

    static func toml(_ value: JSONValue) -> TOMLValue? {
        switch value {
        case .null: nil
        case .bool(let b): .boolean(b)
        case .string(let s): .string(s)
        case .number(let n): n.int64.map(TOMLValue.integer) ?? n.double.map(TOMLValue.float)
        case .array(let items): .array(items.compactMap(toml))
        case .object: table(value).map(TOMLValue.table)
        }
    }
}

/// What running an exported image means: its entrypoint, or `/cnb/process/<type>` for a process
/// type the image defines, with the user's arguments, in the image's environment and directory.
public struct ImageLaunch: Sendable, Equatable {
    public var command: [String]
    public var environment: [String]
    public var workingDirectory: String

    /// Why an image cannot be run as asked: "has no process type x (it defines web)".
    public struct Problem: Error, Sendable {
        public var message: String
    }

    /// `home` is the user's home when the image's environment names none.
    public init(_ config: ImageConfig, process: String?, arguments: [String], home: String) throws(Problem) {
        if let process {
            let types = Self.processTypes(config)
            guard types.contains(process) else {
                throw Problem(message: "has no process type \(process)"
                    + (types.isEmpty ? " (it defines none)" : " (it defines \(types.sorted().joined(separator: ", ")))"))
            }
            command = ["/cnb/process/" + process] + arguments
        } else {
            command = (config.entrypoint ?? []) + (arguments.isEmpty ? config.command ?? [] : arguments)
        }
        guard !command.isEmpty else {
            throw Problem(message: "has no entrypoint or command to run")
        }
        environment = config.environment
        if config.environmentValue("PATH") == nil { environment.append("PATH=/usr/local/bin:/usr/bin:/bin") }
        if config.environmentValue("HOME") == nil { environment.append("HOME=\(home)") }
        workingDirectory = config.workingDirectory ?? "/"
    }

    /// The process types `io.buildpacks.build.metadata` lists.
    static func processTypes(_ config: ImageConfig) -> [String] {
        let label = config.labels[ImageLabel.buildMetadata].flatMap { try? JSONParser.parse(Array($0.utf8)) }
        return label?["processes"]?.arrayValue?.compactMap { $0["type"]?.stringValue } ?? []
    }
}
