/// A run image and the mirrors that hold the same image elsewhere.
public struct RunImageReference: Sendable, Hashable {
    public var image: String
    public var mirrors: [String]
    public init(image: String, mirrors: [String] = []) { self.image = image; self.mirrors = mirrors }

    func table() -> TOMLTable {
        var b = TableBuilder()
        b.set("image", image)
        b.set("mirrors", strings: mirrors)
        return b.table
    }
}

/// `/cnb/run.toml` of a builder (Platform 0.12+): `[[images]] image, mirrors`, the first the default
/// run image. Read, a legacy `stack.toml`'s `[run-image]` counts as one more.
public struct RunTOML: TOMLDecodable, TOMLEncodable, Equatable {
    public static let defaultFileName = "run.toml"
    public var images: [RunImageReference]

    public init(images: [RunImageReference]) { self.images = images }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let reader = TableReader(table, context: context)
        var images: [RunImageReference] = []
        for entry in try reader.tables("images") {
            images.append(RunImageReference(image: try entry.string("image"), mirrors: try entry.strings("mirrors")))
        }
        if let legacy = try reader.table("run-image") {
            images.append(RunImageReference(image: try legacy.string("image"), mirrors: try legacy.strings("mirrors")))
        }
        self.images = images
    }

    public func tomlTable() -> TOMLTable {
        var b = TableBuilder()
        b.set("images", tables: images.map { $0.table() })
        return b.table
    }
}

/// `/cnb/stack.toml` of an older builder: `[run-image] image, mirrors`.
public struct StackTOML: TOMLDecodable, TOMLEncodable, Equatable {
    public static let defaultFileName = "stack.toml"
    public var runImage: RunImageReference?

    public init(runImage: RunImageReference?) { self.runImage = runImage }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let reader = TableReader(table, context: context)
        runImage = try reader.table("run-image").map { (entry) throws(SpecError) in
            RunImageReference(image: try entry.string("image"), mirrors: try entry.strings("mirrors"))
        }
    }

    public func tomlTable() -> TOMLTable {
        var b = TableBuilder()
        if let runImage { b.set("run-image", table: runImage.table()) }
        return b.table
    }
}

/// `package.toml`, the input of `pack buildpack package`: `[buildpack] uri` and
/// `[[dependencies]] uri` or `image`.
public struct PackageTOML: TOMLDecodable, Equatable {
    public static let defaultFileName = "package.toml"
    /// `[buildpack] uri`, relative to the file (default `.`).
    public var buildpackURI: String
    /// `[[dependencies]]`: each a uri or an image reference.
    public var dependencies: [ModuleReference]

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let reader = TableReader(table, context: context)
        if try reader.table("extension") != nil {
            throw reader.error("extension", "packaging extensions is not supported", kind: .invalidValue)
        }
        buildpackURI = try reader.table("buildpack")?.optionalString("uri") ?? "."
        var dependencies: [ModuleReference] = []
        for entry in try reader.tables("dependencies") {
            let uri = try entry.optionalString("uri")
            let image = try entry.optionalString("image")
            guard (uri == nil) != (image == nil) else {
                throw entry.error(nil, "a dependency takes either uri or image", kind: .invalidValue)
            }
            dependencies.append(ModuleReference(uri: uri ?? image.map { "docker://" + $0 }))
        }
        self.dependencies = dependencies
    }
}
