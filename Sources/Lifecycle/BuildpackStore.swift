import BuildpackSpec
import Glibc

/// The buildpacks a lifecycle can use, by id and version, each with its
/// directory on the host and its parsed descriptor.
public struct BuildpackStore: Sendable {
    public struct Entry: Sendable {
        public var directory: String
        public var descriptor: BuildpackTOML
        public var element: GroupElement { descriptor.groupElement() }
    }

    public private(set) var entries: [Entry] = []

    public init() {}

    /// Adds the buildpack in `directory` (its `buildpack.toml`).
    public mutating func add(directory: String) throws(LifecycleError) {
        let root = try Self.canonical(directory, what: "buildpack directory")
        let descriptor: BuildpackTOML
        do {
            let dir = try ConfinedDirectory(path: root)
            descriptor = try BuildpackTOML.read(from: dir, at: BuildpackTOML.defaultFileName)
        } catch {
            throw LifecycleError.from(error, phaseCode: LifecycleError.Code.invalidArguments)
        }
        if let existing = entries.first(where: { $0.descriptor.info.id == descriptor.info.id && $0.descriptor.info.version == descriptor.info.version }) {
            guard existing.directory == root else {
                throw LifecycleError("buildpack \(descriptor.info.id)@\(descriptor.info.version) is given twice: \(existing.directory) and \(root)",
                                     exitCode: LifecycleError.Code.invalidArguments)
            }
            return
        }
        entries.append(Entry(directory: root, descriptor: descriptor))
    }

    /// Adds every buildpack of a builder layout: `<dir>/<escaped id>/<version>/`.
    public mutating func add(buildpacksDirectory: String) throws(LifecycleError) {
        let root = try Self.canonical(buildpacksDirectory, what: "buildpacks directory")
        for id in Self.list(root) {
            for version in Self.list(root + "/" + id) {
                let path = root + "/" + id + "/" + version
                if access(path + "/buildpack.toml", F_OK) == 0 { try add(directory: path) }
            }
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
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if !name.hasPrefix(".") { names.append(name) }
        }
        return names.sorted()
    }
}
