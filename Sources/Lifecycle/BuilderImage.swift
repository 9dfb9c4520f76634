import BuildpackSpec
import JSON
import OCI

/// The labels pack puts on builders and buildpackages, which pack, kpack and Tekton read.
public enum BuilderLabel {
    public static let metadata = "io.buildpacks.builder.metadata"
    public static let buildpackLayers = "io.buildpacks.buildpack.layers"
    public static let buildpackOrder = "io.buildpacks.buildpack.order"
    public static let stackID = "io.buildpacks.stack.id"
    public static let buildpackageMetadata = "io.buildpacks.buildpackage.metadata"
    public static let lifecycleVersion = "io.buildpacks.lifecycle.version"
    public static let lifecycleAPIs = "io.buildpacks.lifecycle.apis"

    /// A label's JSON, at most 1 MiB: a malformed or huge label is the image's error.
    public static func json(_ labels: [String: String], _ key: String, in image: String) throws(LifecycleError) -> JSONValue? {
        guard let text = labels[key] else { return nil }
        do {
            return try JSONParser.parse(Array(text.utf8))
        } catch {
            var failure = LifecycleError("\(image): label \(key) is not valid JSON of at most 1 MiB (\(error))",
                                         exitCode: LifecycleError.Code.invalidArguments)
            failure.cause = OCIError(.malformed, failure.message)
            throw failure
        }
    }
}

/// A builder image as the lifecycle uses it, read from its config and its unpacked root
/// filesystem (the build image): the order and buildpacks under `/cnb`, the run images, the
/// stack user. The unpacked tree is the image's, so its files are read as hostile input
/// (`ConfinedDirectory`: no symbolic link followed, bounded sizes).
public struct BuilderImage: Sendable {
    public var root: String
    public var buildpacksDirectory: String { root + "/cnb/buildpacks" }
    public var order: [OrderGroup]
    /// `/cnb/run.toml`, else `/cnb/stack.toml`, else the metadata label's `stack.runImage`.
    public var runImages: [RunImageReference]
    public var stackID: String?
    /// `CNB_USER_ID` and `CNB_GROUP_ID` of its config, when it sets them.
    public var user: (uid: UInt32, gid: UInt32)?

    static func bad(_ name: String, _ message: String) -> LifecycleError {
        var failure = LifecycleError("\(name): \(message)", exitCode: LifecycleError.Code.invalidArguments)
        failure.cause = OCIError(.malformed, failure.message)
        return failure
    }

    /// The builder's labels, checked before anything of the image is unpacked; returns its metadata.
    @discardableResult
    public static func checkLabels(of config: ImageConfig, name: String) throws(LifecycleError) -> JSONValue {
        func bad(_ message: String) -> LifecycleError { Self.bad(name, message) }
        guard let metadata = try BuilderLabel.json(config.labels, BuilderLabel.metadata, in: name) else {
            throw bad("not a builder image: it has no \(BuilderLabel.metadata) label")
        }
        guard metadata.objectValue != nil else { throw bad("label \(BuilderLabel.metadata) is not a JSON object") }
        if let layers = try BuilderLabel.json(config.labels, BuilderLabel.buildpackLayers, in: name), layers.objectValue == nil {
            throw bad("label \(BuilderLabel.buildpackLayers) is not a JSON object")
        }
        if let order = try BuilderLabel.json(config.labels, BuilderLabel.buildpackOrder, in: name), order.arrayValue == nil {
            throw bad("label \(BuilderLabel.buildpackOrder) is not a JSON array")
        }
        return metadata
    }

    public init(config: ImageConfig, root: String, name: String) throws(LifecycleError) {
        self.root = root
        func bad(_ message: String) -> LifecycleError { Self.bad(name, message) }
        let metadata = try Self.checkLabels(of: config, name: name)
        stackID = config.labels[BuilderLabel.stackID]
        let uid = config.environmentValue("CNB_USER_ID")
        let gid = config.environmentValue("CNB_GROUP_ID")
        if uid != nil || gid != nil {
            guard let u = uid.flatMap(UInt32.init), let g = gid.flatMap(UInt32.init), u != 0 else {
                throw bad("CNB_USER_ID=\(uid ?? "") and CNB_GROUP_ID=\(gid ?? "") are not a non-root user and group")
            }
            user = (u, g)
        }
        let dir: ConfinedDirectory
        do { dir = try ConfinedDirectory(path: root) } catch { throw bad("\(error)") }
        do {
            order = try OrderTOML.read(from: dir, at: "cnb/" + OrderTOML.defaultFileName).order
            if let run = try RunTOML.readIfPresent(from: dir, at: "cnb/" + RunTOML.defaultFileName), !run.images.isEmpty {
                runImages = run.images
            } else if let stack = try StackTOML.readIfPresent(from: dir, at: "cnb/" + StackTOML.defaultFileName),
                      let image = stack.runImage {
                runImages = [image]
            } else if let image = metadata["stack"]?["runImage"]?["image"]?.stringValue, !image.isEmpty {
                let mirrors = metadata["stack"]?["runImage"]?["mirrors"]?.arrayValue?.compactMap(\.stringValue) ?? []
                runImages = [RunImageReference(image: image, mirrors: mirrors)]
            } else {
                runImages = []
            }
        } catch {
            throw bad("\(error)")
        }
    }
}
