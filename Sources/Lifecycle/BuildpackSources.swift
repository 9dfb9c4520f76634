import BuildpackSpec

/// Where a build's buildpacks and order come from: explicit buildpack directories, else the
/// project's group, else an `order.toml` over a builder layout, else a `builder.toml`'s order;
/// then the project's pre and post buildpacks around every group.
public struct BuildpackSources: Sendable {
    /// Buildpack directories that form one group, in order.
    public var buildpacks: [String]
    /// A builder layout (`<escaped id>/<version>/`).
    public var buildpacksDirectory: String?
    /// An `order.toml` over `buildpacksDirectory`.
    public var order: String?
    /// A `builder.toml` as `pack builder create` reads it: local buildpack uris only.
    public var builder: String?
    /// An unpacked builder image: its `/cnb/buildpacks` and `/cnb/order.toml`'s order.
    public var builderImage: (buildpacksDirectory: String, order: [OrderGroup])?
    /// Buildpackages' `/cnb/buildpacks` trees, unpacked: their buildpacks found by id, as a builder's are.
    public var packageLayouts: [String] = []

    public init(buildpacks: [String] = [], buildpacksDirectory: String? = nil, order: String? = nil, builder: String? = nil) {
        self.buildpacks = buildpacks
        self.buildpacksDirectory = buildpacksDirectory
        self.order = order
        self.builder = builder
    }

    /// The buildpacks found (read only once the order names them) and the builder, if any.
    public func load() throws(LifecycleError) -> (BuildpackStore, BuilderTOML?) {
        var store = BuildpackStore()
        for directory in buildpacks { try store.add(directory: directory) }
        for layout in packageLayouts { try store.add(buildpacksDirectory: layout) }
        if let buildpacksDirectory { try store.add(buildpacksDirectory: buildpacksDirectory) }
        if let builderImage { try store.add(buildpacksDirectory: builderImage.buildpacksDirectory) }
        let builder = try self.builder.map { (path) throws(LifecycleError) -> BuilderTOML in
            try Self.loadBuilder(path, into: &store)
        }
        return (store, builder)
    }

    /// The order to detect; inline buildpacks of the project are written into `scratch` and added to `store`.
    public func order(store: inout BuildpackStore, builder: BuilderTOML?, project: ProjectTOML?, app: String,
                      scratch: String) throws(LifecycleError) -> [OrderGroup] {
        var order: [OrderGroup]?
        if !buildpacks.isEmpty {
            var group: [GroupElement] = []
            for directory in buildpacks {
                let path = try HostInputs.directory(directory, what: "buildpack directory")
                guard let entry = store.entries.first(where: { $0.directory == path }) else { continue }
                group.append(entry.element)
            }
            order = [OrderGroup(group)]
        } else if project?.group.isEmpty != false {
            if let path = self.order {
                let file = try HostInputs.file(path)
                order = try HostInputs.document(OrderTOML.self, in: file.directory, name: file.name, required: true)!.order
            } else if let builder {
                order = builder.order
            } else if let builderImage {
                order = builderImage.order
            }
        }
        guard var project else {
            guard let order else { throw Self.noOrder }
            return order
        }
        if !buildpacks.isEmpty { project.group = [] }  // the flags replace it; pre and post still apply
        var projectStore = store
        var inlineCount = 0
        func resolve(_ buildpack: ProjectTOML.Buildpack) throws(SpecError) -> GroupElement {
            switch buildpack {
            case .registry(let id, let version):
                return GroupElement(id: id, version: version ?? "")
            case .uri(let uri, _):
                guard !uri.contains("://") || uri.hasPrefix("file://") else {
                    throw SpecError(.invalidValue, "buildpack uri \(uri) is not supported: only local directories",
                                    file: ProjectTOML.defaultFileName)
                }
                let path = uri.hasPrefix("file://") ? String(uri.dropFirst(7)) : uri
                do throws(LifecycleError) {
                    return try projectStore.add(directory: path.hasPrefix("/") ? path : app + "/" + path).element
                } catch {
                    throw SpecError(.notFound, error.message, file: ProjectTOML.defaultFileName)
                }
            case .inline(let id, let api, let shell, let script):
                inlineCount += 1
                do throws(LifecycleError) {
                    let directory = try InlineBuildpack(id: id, api: api, shell: shell, script: script)
                        .write(in: scratch, name: "inline-\(inlineCount)")
                    return try projectStore.add(directory: directory).element
                } catch {
                    throw SpecError(error.exitCode == LifecycleError.Code.unsupportedBuildpackAPI ? .unsupportedBuildpackAPI : .invalidValue,
                                    "inline buildpack \(id): \(error.message)", file: ProjectTOML.defaultFileName)
                }
            }
        }
        let wrapped: [OrderGroup]
        do { wrapped = try project.order(wrapping: order ?? [], resolving: resolve) } catch {
            throw LifecycleError.from(error, phaseCode: LifecycleError.Code.invalidArguments)
        }
        store = projectStore
        if wrapped.isEmpty || wrapped.allSatisfy(\.group.isEmpty) { throw Self.noOrder }
        return wrapped
    }

    static let noOrder = LifecycleError(
        "no buildpacks: give --buildpack, --builder, --buildpacks-dir with --order, or list them in project.toml",
        exitCode: LifecycleError.Code.usage)

    private static func loadBuilder(_ path: String, into store: inout BuildpackStore) throws(LifecycleError) -> BuilderTOML {
        let file = try HostInputs.file(path)
        let builder = try HostInputs.document(BuilderTOML.self, in: file.directory, name: file.name, required: true)!
        for reference in builder.buildpacks {
            guard let uri = reference.uri else {
                throw LifecycleError("\(path): a [[buildpacks]] entry without uri (\(reference.id ?? "?")) cannot be found locally",
                                     exitCode: LifecycleError.Code.invalidArguments)
            }
            if uri.contains("://") && !uri.hasPrefix("file://") || uri.hasPrefix("urn:") {
                throw LifecycleError("\(path): buildpack uri \(uri) is not supported: only local directories (relative to the builder.toml)",
                                     exitCode: LifecycleError.Code.invalidArguments)
            }
            let local = uri.hasPrefix("file://") ? String(uri.dropFirst(7)) : uri
            if local.hasSuffix(".tgz") || local.hasSuffix(".cnb") || local.hasSuffix(".tar") {
                throw LifecycleError("\(path): buildpack archive \(uri) is not supported: give its directory",
                                     exitCode: LifecycleError.Code.invalidArguments)
            }
            try store.add(directory: local.hasPrefix("/") ? local : file.directory + "/" + local)
        }
        return builder
    }
}
