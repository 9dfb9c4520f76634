extension PlanTOML {
    /// What a module receives as its buildpack plan (§5.1; REF `Plan.Find`): every `requires` of every entry
    /// that lists it (by ID and kind) as a provider, in plan order. Entries provided only by extensions never
    /// reach buildpacks.
    public func buildpackPlan(for id: String, kind: ModuleKind = .buildpack) -> BuildpackPlan {
        var out: [Require] = []
        for entry in entries where entry.providers.contains(where: { $0.id == id && $0.kind == kind }) {
            out.append(contentsOf: entry.requires)
        }
        return BuildpackPlan(entries: out)
    }

    /// The plan with every entry removed that has a requirement named in `met` (REF `Plan.Filter`): what later
    /// buildpacks still see.
    public func removingEntries(named met: [String]) -> PlanTOML {
        let set = Set(met)
        return PlanTOML(entries: entries.filter { entry in !entry.requires.contains { set.contains($0.name) } })
    }
}

extension BuildTOML {
    /// The names a buildpack met: every name it received that `[[unmet]]` does not list.
    /// - Throws: `.invalidValue` if an unmet name is not one the buildpack received.
    public func metNames(given plan: BuildpackPlan, context: DocumentContext) throws(SpecError) -> [String] {
        let received = Set(plan.entries.map(\.name))
        for (index, name) in unmet.enumerated() where !received.contains(name) {
            throw SpecError(.invalidValue, "unmet name \(quoted(name)) must match a requested dependency",
                            file: context.file, keyPath: "unmet[\(index)].name", buildpack: context.buildpack)
        }
        let unmetSet = Set(unmet)
        return plan.entries.map(\.name).filter { !unmetSet.contains($0) }
    }
}

/// The plan as the build phase works through it (§5.1): buildpacks run in group order; each receives the
/// entries it provides, and the entries it met are removed for the ones after it.
public struct RemainingPlan: Sendable, Equatable {
    /// The entries not yet met.
    public private(set) var plan: PlanTOML

    public init(_ plan: PlanTOML) { self.plan = plan }

    /// The buildpack plan for `buildpack` (write it to `CNB_BP_PLAN_PATH`).
    public func buildpackPlan(for buildpack: GroupElement) -> BuildpackPlan {
        plan.buildpackPlan(for: buildpack.id, kind: buildpack.kind)
    }

    /// Records what a buildpack left in `build.toml` (`nil` if it wrote none) and removes the entries it met.
    /// - Returns: the met names.
    @discardableResult
    public mutating func complete(_ buildpack: GroupElement, received: BuildpackPlan, buildTOML: BuildTOML?,
                                  context: DocumentContext? = nil) throws(SpecError) -> [String]
    {
        let context = context ?? DocumentContext(file: BuildTOML.defaultFileName, buildpack: buildpack.description)
        let met = try (buildTOML ?? BuildTOML()).metNames(given: received, context: context)
        plan = plan.removingEntries(named: met)
        return met
    }
}
