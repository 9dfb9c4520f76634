/// What buildpacks contribute to the image at build, gathered in group order into metadata.toml
/// (§5.3; REF `processMap`).
///
/// - A later buildpack's process of the same type replaces the earlier one.
/// - The last `default = true` wins.
/// - If a later non-default process redefines the current default type, there is no default any more
///   (with a warning).
/// - Labels and slices accumulate in order (for labels, the last value of a key wins when applied).
public struct LaunchContributions: Sendable, Equatable {
    /// The processes by type.
    public private(set) var processes: [String: LaunchProcess] = [:]
    /// The default process type, if any.
    public private(set) var defaultProcessType: String?
    public private(set) var labels: [LaunchLabel] = []
    public private(set) var slices: [LaunchSlice] = []
    public private(set) var bom: [TOMLTable] = []

    public init() {}

    /// Adds one buildpack's launch.toml.
    /// - Returns: warnings for the user.
    @discardableResult
    public mutating func add(_ launch: LaunchTOML, buildpackID: String) -> [String] {
        var warning: String?
        for var process in launch.processes {
            if process.isDefault {
                defaultProcessType = process.type
                warning = nil
            } else if process.type == defaultProcessType {
                defaultProcessType = nil
                warning = "redefining the default process type \(quoted(process.type)) with a process not marked as default"
            }
            process.isDefault = false
            process.buildpackID = buildpackID
            processes[process.type] = process
        }
        labels.append(contentsOf: launch.labels)
        slices.append(contentsOf: launch.slices)
        bom.append(contentsOf: launch.bom)
        return launch.warnings + (warning.map { [$0] } ?? [])
    }

    /// The labels with the last value of each key.
    public var effectiveLabels: [String: String] {
        var out: [String: String] = [:]
        for label in labels { out[label.key] = label.value }
        return out
    }

    /// metadata.toml for the group.
    public func metadata(buildpacks: [GroupElement], extensions: [GroupElement] = [],
                         platformAPI: APIVersion = APIVersion.supportedPlatformAPIs.upperBound) -> MetadataTOML
    {
        MetadataTOML(buildpackDefaultProcessType: defaultProcessType, buildpacks: buildpacks, extensions: extensions,
                     processes: Array(processes.values), labels: labels, slices: slices,
                     bom: platformAPI < APIVersion(0, 9) ? bom : [], platformAPI: platformAPI)
    }
}

extension BuildpackTOML {
    /// Whether this module may run against the image `platform`: it declares (or infers) no targets, or one
    /// of them matches (§2). A required element that does not match is a detection error.
    /// - Parameter binaries: the names in the module's `bin/` (for target inference).
    public func supports(_ platform: TargetPlatform, binaries: [String]) -> Bool {
        let targets = effectiveTargets(binaries: binaries)
        return targets.isEmpty || targets.contains { $0.matches(platform) }
    }
}
