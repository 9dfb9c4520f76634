import BuildpackSpec
import Glibc
import SystemCalls
import SystemPackage

/// The buildpacks a lifecycle can use, by id and version, each with its
/// directory on the host and its parsed descriptor. Builder layouts
/// (`<dir>/<escaped id>/<version>/`) are read lazily: `resolve(order:)` reads
/// only what an order reaches, so a buildpack the order never names cannot
/// fail a build (as in the reference lifecycle).
public struct BuildpackStore: Sendable {
    public struct Entry: Sendable {
        public var directory: String
        public var descriptor: BuildpackTOML
        public var element: GroupElement { descriptor.groupElement() }
    }

    public private(set) var entries: [Entry] = []
    /// Builder layouts not read until an order names one of their buildpacks.
    private var layouts: [String] = []

    public init() {}

    /// One line per ID in the store that the spec forbids but the reference accepts.
    public var warnings: [String] {
        var seen: Set<String> = []
        return entries.compactMap { entry in
            let id = entry.descriptor.info.id
            guard seen.insert(id).inserted else { return nil }
            return BuildpackID.specViolation(id)
        }
    }

    /// Adds the buildpack in `directory` (its `buildpack.toml`).
    @discardableResult
    public mutating func add(directory: String) throws(LifecycleError) -> Entry {
        let (root, descriptor) = try Self.read(directory)
        return try insert(descriptor, from: root)
    }

    private static func read(_ directory: String) throws(LifecycleError) -> (String, BuildpackTOML) {
        let root = try canonical(directory, what: "buildpack directory")
        do {
            let dir = try ConfinedDirectory(path: root)
            return (root, try BuildpackTOML.read(from: dir, at: BuildpackTOML.defaultFileName))
        } catch {
            throw LifecycleError.from(error, phaseCode: LifecycleError.Code.invalidArguments)
        }
    }

    @discardableResult
    private mutating func insert(_ descriptor: BuildpackTOML, from root: String) throws(LifecycleError) -> Entry {
        let info = descriptor.info
        if let existing = entries.first(where: { $0.descriptor.info.id == info.id && $0.descriptor.info.version == info.version }) {
            guard existing.directory == root else {
                throw LifecycleError("buildpack \(info.id)@\(info.version) is given twice: \(existing.directory) and \(root)",
                                     exitCode: LifecycleError.Code.invalidArguments)
            }
            return existing
        }
        // Both would get the same <layers>/<escaped id> and /cnb/buildpacks/<escaped id>.
        if let other = entries.first(where: { BuildpackID.escapedCollision($0.descriptor.info.id, info.id) }) {
            throw LifecycleError("buildpacks \(other.descriptor.info.id) (\(other.directory)) and \(info.id) (\(root)) "
                                 + "share the directory name \(BuildpackID.escape(info.id)); rename one",
                                 exitCode: LifecycleError.Code.invalidArguments)
        }
        let entry = Entry(directory: root, descriptor: descriptor)
        entries.append(entry)
        return entry
    }

    /// Makes a builder layout's buildpacks available: `<dir>/<escaped id>/<version>/`, read by `resolve(order:)`.
    public mutating func add(buildpacksDirectory: String) throws(LifecycleError) {
        let root = try Self.canonical(buildpacksDirectory, what: "buildpacks directory")
        if !layouts.contains(root) { layouts.append(root) }
    }

    /// Reads every buildpack `order` reaches, through composites' orders, from the builder layouts; a
    /// buildpack already added is not looked for again. A composite that reaches itself is an error.
    public mutating func resolve(order: [OrderGroup]) throws(LifecycleError) {
        var done: Set<ModuleKey> = []
        var path: [GroupElement] = []
        for group in order { for element in group.group { try resolve(element, done: &done, path: &path) } }
    }

    private mutating func resolve(_ element: GroupElement, done: inout Set<ModuleKey>,
                                  path: inout [GroupElement]) throws(LifecycleError) {
        if path.contains(where: { $0.id == element.id && ($0.version == element.version || element.version.isEmpty) }) {
            let cycle = (path + [element]).map(\.description).joined(separator: " -> ")
            throw LifecycleError("the order is a cycle: \(cycle)", exitCode: LifecycleError.Code.invalidArguments)
        }
        guard done.insert(element.key).inserted else { return }
        if (try? entry(for: element)) == nil { try load(element) }
        guard let entry = try? entry(for: element) else { return }  // detection reports it as not available
        path.append(element)
        defer { path.removeLast() }
        for group in entry.descriptor.order { for inner in group.group { try resolve(inner, done: &done, path: &path) } }
    }

    /// Reads `element` from the first layout that has it; a missing version means the only one there.
    private mutating func load(_ element: GroupElement) throws(LifecycleError) {
        let name = BuildpackID.escape(element.id)
        for root in layouts {
            let versions = Self.list(root + "/" + name)
            let version: String
            if element.version.isEmpty {
                guard versions.count == 1 else { continue }
                version = versions[0]
            } else {
                guard (try? BuildpackVersion.validate(element.version)) != nil, versions.contains(element.version) else { continue }
                version = element.version
            }
            let directory = root + "/" + name + "/" + version
            guard access(directory + "/" + BuildpackTOML.defaultFileName, F_OK) == 0 else { continue }
            let (root, descriptor) = try Self.read(directory)
            // `a/b` and `a_b` share `<dir>/a_b/`: what is there must be what the order asked for.
            guard descriptor.info.id == element.id else {
                throw LifecycleError("\(root) holds buildpack \(descriptor.info.id), not \(element.id): the two IDs share "
                                     + "the directory name \(name)", exitCode: LifecycleError.Code.invalidArguments)
            }
            try insert(descriptor, from: root)
            return
        }
    }

    /// The buildpack an order element names; a missing version matches the
    /// only version present.
    public func entry(for element: GroupElement) throws(SpecError) -> Entry {
        let candidates = entries.filter { $0.descriptor.info.id == element.id }
        if let exact = candidates.first(where: { $0.descriptor.info.version == element.version }) { return exact }
        if element.version.isEmpty, candidates.count == 1 { return candidates[0] }
        let known = candidates.map(\.descriptor.info.version).joined(separator: ", ")
        throw SpecError(.notFound, "buildpack \(element) is not available"
                        + (known.isEmpty ? "" : " (versions present: \(known))"), buildpack: element.description)
    }

    public func descriptor(for element: GroupElement) throws(SpecError) -> BuildpackTOML {
        try entry(for: element).descriptor
    }

    static func canonical(_ path: String, what: String) throws(LifecycleError) -> String {
        guard let resolved = realpath(path, nil) else {
            throw LifecycleError("\(what) \(path) does not exist", exitCode: LifecycleError.Code.invalidArguments)
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func list(_ path: String) -> [String] {
        guard case .success(let raw) = systemCall({ open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }) else { return [] }
        let dir = FileDescriptor(rawValue: raw)
        defer { try? dir.close() }
        let entries = (try? dir.directoryEntries()) ?? []
        return entries.map(\.name).filter { !$0.hasPrefix(".") }
    }
}
