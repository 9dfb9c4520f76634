/// The files the lifecycle's phases hand each other and the platform (Platform API 0.7-0.15).

/// `analyzed.toml`, written by the analyzer and read by every later phase.
///
/// ```toml
/// [image]
/// reference = "<previous image, by digest>"
/// [metadata]                 # the previous image's io.buildpacks.lifecycle.metadata, as TOML
/// [run-image]
/// image = "<as given>"
/// reference = "<by digest>"
/// [run-image.target]
/// os = "linux"
/// arch = "amd64"
/// [run-image.target.distro]
/// name = "debian"
/// version = "12"
/// [build-image]
/// reference = "…"
/// ```
public struct AnalyzedTOML: TOMLDecodable, TOMLEncodable, Equatable {
    public static let defaultFileName = "analyzed.toml"

    public struct RunImage: Sendable, Equatable {
        public var image: String
        public var reference: String
        public var target: TargetPlatform?
        public init(image: String, reference: String, target: TargetPlatform? = nil) {
            self.image = image
            self.reference = reference
            self.target = target
        }
    }

    /// `[image] reference`: the previous image, when there is one.
    public var previousImage: String?
    /// `[metadata]`: the previous image's lifecycle label.
    public var metadata: TOMLTable
    public var runImage: RunImage?
    /// `[build-image] reference`.
    public var buildImage: String?

    public init(previousImage: String? = nil, metadata: TOMLTable = TOMLTable(), runImage: RunImage? = nil,
                buildImage: String? = nil) {
        self.previousImage = previousImage
        self.metadata = metadata
        self.runImage = runImage
        self.buildImage = buildImage
    }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let reader = TableReader(table, context: context)
        previousImage = try reader.table("image")?.optionalString("reference").flatMap { $0.isEmpty ? nil : $0 }
        metadata = try reader.freeform("metadata")
        if let run = try reader.table("run-image") {
            var target: TargetPlatform?
            if let t = try run.table("target") {
                let distro = try t.table("distro").map { (d) throws(SpecError) in
                    Distro(name: try d.optionalString("name") ?? "", version: try d.optionalString("version") ?? "")
                }
                target = TargetPlatform(os: try t.optionalString("os") ?? "", arch: try t.optionalString("arch") ?? "",
                                        archVariant: try t.optionalString("arch-variant") ?? "", distro: distro)
            }
            runImage = RunImage(image: try run.optionalString("image") ?? "", reference: try run.optionalString("reference") ?? "",
                                target: target)
        }
        buildImage = try reader.table("build-image")?.optionalString("reference")
    }

    public func tomlTable() -> TOMLTable {
        var b = TableBuilder()
        if let previousImage {
            var image = TableBuilder()
            image.set("reference", previousImage)
            b.set("image", table: image.table)
        }
        b.set("metadata", table: metadata)
        if let runImage {
            var run = TableBuilder()
            run.setNonEmpty("image", runImage.image)
            run.set("reference", runImage.reference)
            if let target = runImage.target {
                var t = TableBuilder()
                t.setNonEmpty("os", target.os)
                t.setNonEmpty("arch", target.arch)
                t.setNonEmpty("arch-variant", target.archVariant)
                if let distro = target.distro {
                    var d = TableBuilder()
                    d.setNonEmpty("name", distro.name)
                    d.setNonEmpty("version", distro.version)
                    t.set("distro", table: d.table)
                }
                run.set("target", table: t.table)
            }
            b.set("run-image", table: run.table)
        }
        if let buildImage {
            var build = TableBuilder()
            build.set("reference", buildImage)
            b.set("build-image", table: build.table)
        }
        return b.table
    }
}

/// `report.toml`, written by the exporter (and rebaser): what was pushed, and its digest.
///
/// ```toml
/// [image]
/// tags = ["registry/app:latest", "registry/app:v1"]
/// digest = "sha256:…"
/// manifest-size = 1234
/// ```
public struct ReportTOML: TOMLDecodable, TOMLEncodable, Equatable {
    public static let defaultFileName = "report.toml"

    public var tags: [String]
    public var digest: String
    /// Only for an image in a daemon, which Stockade does not write.
    public var imageID: String?
    public var manifestSize: Int64?

    public init(tags: [String], digest: String, imageID: String? = nil, manifestSize: Int64? = nil) {
        self.tags = tags
        self.digest = digest
        self.imageID = imageID
        self.manifestSize = manifestSize
    }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let image = try TableReader(table, context: context).table("image")
        tags = try image?.strings("tags") ?? []
        digest = try image?.optionalString("digest") ?? ""
        imageID = try image?.optionalString("image-id")
        manifestSize = image?.value("manifest-size")?.integerValue
    }

    public func tomlTable() -> TOMLTable {
        var image = TableBuilder()
        image.set("tags", strings: tags)
        image.setNonEmpty("digest", digest)
        image.setNonEmpty("image-id", imageID)
        if let manifestSize, manifestSize != 0 { image.set("manifest-size", .integer(manifestSize)) }
        var b = TableBuilder()
        b.set("image", table: image.table)
        return b.table
    }
}

/// `project-metadata.toml`, written by the platform from the app's source: `[source] type`,
/// `[source.version]`, `[source.metadata]`, which become the image's `io.buildpacks.project.metadata`.
public struct ProjectMetadataTOML: TOMLDecodable, TOMLEncodable, Equatable {
    public static let defaultFileName = "project-metadata.toml"

    /// `[source]` as written: its shape is the platform's.
    public var source: TOMLTable?

    public init(source: TOMLTable? = nil) { self.source = source }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let reader = TableReader(table, context: context)
        source = reader.has("source") ? try reader.freeform("source") : nil
    }

    public func tomlTable() -> TOMLTable {
        var b = TableBuilder()
        if let source { b.set("source", table: source) }
        return b.table
    }
}

