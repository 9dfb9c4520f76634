import Testing
@testable import BuildpackSpec

/// A store of descriptors for order expansion, built in code.
struct DescriptorStore {
    var descriptors: [String: BuildpackTOML] = [:]

    mutating func add(_ id: String, _ version: String = "v1", homepage: String? = nil, api: APIVersion = APIVersion(0, 12),
                      order: [[GroupElement]] = [], execEnv: [String] = [], kind: ModuleKind = .buildpack)
    {
        descriptors["\(id)@\(version)"] = BuildpackTOML(
            kind: kind, api: api,
            info: .init(id: id, version: version, homepage: homepage, execEnv: execEnv),
            order: order.map(OrderGroup.init))
    }

    func lookup(_ element: GroupElement) throws(SpecError) -> BuildpackTOML {
        guard let descriptor = descriptors[element.description] else {
            throw SpecError(.notFound, "no buildpack \(element)")
        }
        return descriptor
    }
}

@Suite("Detection: order expansion (§3.1)")
struct OrderExpansionTests {
    /// D1: order [[E1]]; E=[[A1,F1,B1]]; F=[[C1],[G1 opt],[D1]]; G=[[A2,B2],[C2,D2]].
    static func d1Store() -> DescriptorStore {
        var store = DescriptorStore()
        store.add("A", "v1", homepage: "Buildpack A Homepage")
        store.add("A", "v2")
        store.add("B", "v1")
        store.add("B", "v2")
        store.add("C", "v1")
        store.add("C", "v2")
        store.add("D", "v1")
        store.add("D", "v2")
        store.add("E", "v1", order: [[.bp("A", "v1"), .bp("F", "v1"), .bp("B", "v1")]])
        store.add("F", "v1", order: [[.bp("C", "v1")], [.bp("G", "v1", optional: true)], [.bp("D", "v1")]])
        store.add("G", "v1", order: [[.bp("A", "v2"), .bp("B", "v2")], [.bp("C", "v2"), .bp("D", "v2")]])
        return store
    }

    @Test func d1ExpandsCompositesDepthFirstWithIDDeduplication() throws {
        let store = Self.d1Store()
        let candidates = try OrderExpansion.candidates(order: [OrderGroup([.bp("E", "v1")])],
                                                       lookup: store.lookup)
        let rendered = candidates.map { $0.groupElements.map(\.description) }
        #expect(rendered == [
            ["A@v1", "C@v1", "B@v1"],
            ["A@v1", "B@v2"],            // A@v2 and B@v1 skipped: same IDs already present
            ["A@v1", "C@v2", "D@v2", "B@v1"],
            ["A@v1", "B@v1"],            // G is optional: one more candidate without it
            ["A@v1", "D@v1", "B@v1"],
        ])
        // api and homepage come from the descriptors.
        #expect(candidates[0].groupElements[0].homepage == "Buildpack A Homepage")
        #expect(candidates[0].groupElements[0].api == "0.12")
    }

    @Test func d1SelectsTheFirstPassingGroup() throws {
        let store = Self.d1Store()
        let candidates = try OrderExpansion.candidates(order: [OrderGroup([.bp("E", "v1")])], lookup: store.lookup)
        // Only A@v1 and B@v1 pass, so candidate #4 is the first to resolve.
        var outcomes: [ModuleKey: DetectOutcome] = [:]
        for candidate in candidates {
            for element in candidate.groupElements {
                let passes = element.description == "A@v1" || element.description == "B@v1"
                outcomes[element.key] = passes ? .pass(DetectPlan()) : .fail
            }
        }
        var results: [GroupDetection] = []
        for candidate in candidates {
            let result = try GroupResolution.resolve(candidate.groupElements, outcomes: outcomes)
            results.append(result)
            if case .passed = result { break }
        }
        #expect(results.count == 4)
        guard case .passed(let detected) = results.last else { Issue.record("no group passed"); return }
        #expect(detected.group == GroupTOML(group: [
            GroupElement(id: "A", version: "v1", api: "0.12", homepage: "Buildpack A Homepage"),
            GroupElement(id: "B", version: "v1", api: "0.12"),
        ]))
        #expect(detected.plan.entries.isEmpty)
        #expect(detected.group.rendered() == """
        [[group]]
        api = "0.12"
        homepage = "Buildpack A Homepage"
        id = "A"
        version = "v1"

        [[group]]
        api = "0.12"
        id = "B"
        version = "v1"

        """)
    }

    @Test func extensionsHeadEveryGroupAsOneOptionalElement() throws {
        var store = DescriptorStore()
        store.add("X", kind: .extension)
        store.add("Y", kind: .extension)
        store.add("A")
        let candidates = try OrderExpansion.candidates(
            order: [OrderGroup([.bp("A")])],
            extensions: [OrderGroup([GroupElement(id: "X", version: "v1", kind: .extension)]),
                         OrderGroup([GroupElement(id: "Y", version: "v1", kind: .extension)])],
            lookup: store.lookup)
        #expect(candidates.map { $0.groupElements.map(\.description) } == [["X@v1", "A@v1"], ["Y@v1", "A@v1"], ["A@v1"]])
        #expect(candidates[0].groupElements[0].kind == .extension)
        #expect(candidates[0].groupElements[0].optional)
    }

    @Test func execEnvSkipsElementsSilently() throws {
        var store = DescriptorStore()
        store.add("A", execEnv: ["test"])
        store.add("B", execEnv: ["*"])
        store.add("C", execEnv: ["production"])
        store.add("D", api: APIVersion(0, 11), execEnv: ["test"])  // exec-env only read from API 0.12
        store.add("A", "v2")
        let order = [OrderGroup([.bp("A"), .bp("B"), .bp("C"), .bp("D"), .bp("A", "v2")])]
        let production = try OrderExpansion.candidates(order: order, executionEnvironment: "production", lookup: store.lookup)
        // A@v1 is skipped and not used for ID de-duplication, so A@v2 takes its place.
        #expect(production.map { $0.groupElements.map(\.description) } == [["B@v1", "C@v1", "D@v1", "A@v2"]])
        let unfiltered = try OrderExpansion.candidates(order: order, lookup: store.lookup)
        #expect(unfiltered.map { $0.groupElements.map(\.description) } == [["A@v1", "B@v1", "C@v1", "D@v1"]])
    }

    @Test func compositeContainingItselfIsAnError() {
        var store = DescriptorStore()
        store.add("L", order: [[.bp("M")]])
        store.add("M", order: [[.bp("L")]])
        let error = specError { () throws(SpecError) in
            try OrderExpansion.candidates(order: [OrderGroup([.bp("L")])], lookup: store.lookup)
        }
        #expect(error?.kind == .rule)
        #expect(error?.message.contains("contains itself") == true)
        // The same composite twice in a row is not a cycle.
        var twice = DescriptorStore()
        twice.add("A")
        twice.add("L", order: [[.bp("A")]])
        #expect(throws: Never.self) {
            try OrderExpansion.candidates(order: [OrderGroup([.bp("L"), .bp("L")])], lookup: twice.lookup)
        }
    }

    @Test func candidateLimitStopsExplosions() {
        var store = DescriptorStore()
        // Ten optional composites of two groups each: 3^10 candidates.
        var elements: [GroupElement] = []
        for i in 0..<10 {
            store.add("L\(i)", order: [[.bp("A\(i)")], [.bp("B\(i)")]])
            store.add("A\(i)")
            store.add("B\(i)")
            elements.append(.bp("L\(i)", optional: true))
        }
        let error = specError { () throws(SpecError) in
            try OrderExpansion.candidates(order: [OrderGroup(elements)], limit: 1000, lookup: store.lookup)
        }
        #expect(error?.message.contains("more than 1000 candidate groups") == true)
    }
}

@Suite("Detection: group resolution (§3.3, §3.4)")
struct GroupResolutionTests {
    func outcomes(_ pairs: [(GroupElement, DetectOutcome)]) -> [ModuleKey: DetectOutcome] {
        Dictionary(uniqueKeysWithValues: pairs.map { ($0.0.key, $0.1) })
    }

    /// D2: all kept; dep1 providers [A,C] with requires from D and B; dep2 providers [A,C,D] with requires A, D, B.
    @Test func d2BuildsAPlanOfMatchedDependencies() throws {
        let a = GroupElement.bp("A"), c = GroupElement.bp("C", "v2"), d = GroupElement.bp("D", "v2"), b = GroupElement.bp("B")
        let result = try GroupResolution.resolve([a, c, d, b], outcomes: outcomes([
            (a, .pass(.plan(provides: ["dep1", "dep2"], requires: ["dep2"]))),
            (c, .pass(.plan(provides: ["dep1", "dep2"]))),
            (d, .pass(.plan(provides: ["dep2"], requires: ["dep1", "dep2"]))),
            (b, .pass(.plan(requires: ["dep1", "dep2"]))),
        ]))
        guard case .passed(let detected) = result else { Issue.record("\(result)"); return }
        #expect(detected.group.group.map(\.description) == ["A@v1", "C@v2", "D@v2", "B@v1"])
        let expected = PlanTOML(entries: [
            .init(providers: [a, c], requires: [Require(name: "dep1"), Require(name: "dep1")]),
            .init(providers: [a, c, d], requires: [Require(name: "dep2"), Require(name: "dep2"), Require(name: "dep2")]),
        ])
        #expect(detected.plan.hasSameEntries(as: expected))
        #expect(detected.plan.hasSameEntries(as: PlanTOML(entries: expected.entries.reversed())))
        #expect(!detected.plan.hasSameEntries(as: PlanTOML(entries: [expected.entries[0]])))
        #expect(detected.trial == 1)
    }

    /// D3: `fail: B@v1 requires dep1`; exit 20 if it is the last group.
    @Test func d3FailsIfRequiresAreNotProvidedFirst() throws {
        let a = GroupElement.bp("A", optional: true), b = GroupElement.bp("B"), c = GroupElement.bp("C")
        let result = try GroupResolution.resolve([a, b, c], outcomes: outcomes([
            (a, .fail),
            (b, .pass(.plan(requires: ["dep1"]))),
            (c, .pass(.plan(provides: ["dep1"], requires: ["dep1"]))),
        ]))
        guard case .failed(let failure) = result else { Issue.record("\(result)"); return }
        #expect(failure.reason == .failed)
        #expect(failure.log.contains("fail: B@v1 requires dep1, which nothing before it provides"))
        #expect(failure.log.contains("skip: A@v1"))
        #expect(DetectFailure.exitCode(for: [failure]) == 20)
    }

    /// D4: fails with `B provides unused dep1`.
    @Test func d4FailsIfProvidesAreNotRequiredAfter() throws {
        let a = GroupElement.bp("A"), b = GroupElement.bp("B"), c = GroupElement.bp("C", optional: true)
        let result = try GroupResolution.resolve([a, b, c], outcomes: outcomes([
            (a, .pass(.plan(provides: ["dep1"], requires: ["dep1"]))),
            (b, .pass(.plan(provides: ["dep1"]))),
            (c, .fail),
        ]))
        guard case .failed(let failure) = result else { Issue.record("\(result)"); return }
        #expect(failure.log.contains { $0.hasPrefix("fail: B@v1 provides unused dep1") })
    }

    /// D5: A and C skipped; group [B]; plan {dep-present: [B]}.
    @Test func d5SucceedsIfUnmetProvidesAndRequiresAreOptional() throws {
        let a = GroupElement.bp("A", optional: true), b = GroupElement.bp("B"), c = GroupElement.bp("C", optional: true)
        let result = try GroupResolution.resolve([a, b, c], outcomes: outcomes([
            (a, .pass(.plan(requires: ["dep-missing"]))),
            (b, .pass(.plan(provides: ["dep-present"], requires: ["dep-present"]))),
            (c, .pass(.plan(provides: ["dep-missing"]))),
        ]))
        guard case .passed(let detected) = result else { Issue.record("\(result)"); return }
        #expect(detected.group.group.map(\.description) == ["B@v1"])
        #expect(detected.plan == PlanTOML(entries: [.init(providers: [b], requires: [Require(name: "dep-present")])]))
        #expect(detected.log.contains("skip: A@v1 requires dep-missing, which nothing before it provides"))
        #expect(detected.log.contains { $0.hasPrefix("skip: C@v1 provides unused dep-missing") })
    }

    /// D6: resolved on trial #16; group [A,B,C]; plan {dep1-present: [A] required by B}, {dep6-present: [C] by C}.
    @Test func d6FallsBackToAlternateBuildPlans() throws {
        let a = GroupElement(id: "A", version: "v1", optional: true, homepage: "Buildpack A Homepage")
        let b = GroupElement.bp("B", optional: true), c = GroupElement.bp("C"), d = GroupElement.bp("D", optional: true)
        let result = try GroupResolution.resolve([a, b, c, d], outcomes: outcomes([
            (a, .pass(.plan(provides: ["dep2-missing"], or: [.sections(provides: ["dep1-present"])]))),
            (b, .pass(.plan(requires: ["dep3-missing"], or: [.sections(requires: ["dep1-present"])]))),
            (c, .pass(.plan(provides: ["dep5-missing"], requires: ["dep4-missing"],
                            or: [.sections(provides: ["dep6-present"], requires: ["dep6-present"])]))),
            (d, .pass(.plan(provides: ["dep8-missing"], requires: ["dep7-missing"],
                            or: [.sections(provides: ["dep10-missing"], requires: ["dep9-missing"])]))),
        ]))
        guard case .passed(let detected) = result else { Issue.record("\(result)"); return }
        #expect(detected.trial == 16)
        #expect(detected.group.group == [
            GroupElement(id: "A", version: "v1", homepage: "Buildpack A Homepage"),
            GroupElement(id: "B", version: "v1"),
            GroupElement(id: "C", version: "v1"),
        ])
        #expect(detected.plan.hasSameEntries(as: PlanTOML(entries: [
            .init(providers: [.bp("A")], requires: [Require(name: "dep1-present")]),
            .init(providers: [.bp("C")], requires: [Require(name: "dep6-present")]),
        ])))
        #expect(Array(detected.log.suffix(3)) == [
            "resolved on trial #16",
            "skip: D@v1 requires dep9-missing, which nothing before it provides",
            "skip: D@v1 provides unused dep10-missing, which nothing after it requires",
        ])
    }

    @Test func failureAndErrorClassification() throws {
        let a = GroupElement.bp("A"), b = GroupElement.bp("B", optional: true)
        // A required element failed and an optional one errored: a buildpack error (21).
        let mixed = try GroupResolution.resolve([a, b], outcomes: outcomes([(a, .fail), (b, .error("exit 1"))]))
        guard case .failed(let mixedFailure) = mixed else { Issue.record("\(mixed)"); return }
        #expect(mixedFailure.reason == .buildpackError)
        #expect(mixedFailure.log == ["fail: A@v1", "err:  B@v1 (exit 1)"])
        // An optional element that errors does not fail the group.
        let passes = try GroupResolution.resolve([a, b], outcomes: outcomes([(a, .pass(DetectPlan())), (b, .error("boom"))]))
        guard case .passed(let detected) = passes else { Issue.record("\(passes)"); return }
        #expect(detected.group.group.map(\.description) == ["A@v1"])
        // A required element that errors (a target mismatch counts) fails with an error.
        let errored = try GroupResolution.resolve([a], outcomes: outcomes([(a, .error("unable to satisfy target"))]))
        guard case .failed(let erroredFailure) = errored else { Issue.record("\(errored)"); return }
        #expect(erroredFailure.reason == .buildpackError)
        // All failed without error → 20; any error → 21.
        let plain = DetectFailure(reason: .failed, log: [])
        #expect(DetectFailure.exitCode(for: [plain, plain]) == 20)
        #expect(DetectFailure.exitCode(for: [plain, erroredFailure]) == 21)
        #expect(DetectFailure.exitCode(for: []) == 20)
    }

    @Test func needsAPassingBuildpackNotJustExtensions() throws {
        let x = GroupElement(id: "X", version: "v1", optional: true, kind: .extension)
        let a = GroupElement.bp("A", optional: true)
        let result = try GroupResolution.resolve([x, a], outcomes: outcomes([(x, .pass(DetectPlan())), (a, .fail)]))
        guard case .failed(let failure) = result else { Issue.record("\(result)"); return }
        #expect(failure.log.last == "fail: no viable buildpacks in group")
        // With a passing buildpack, extensions go to group-extensions.
        let ok = try GroupResolution.resolve([x, a], outcomes: outcomes([(x, .pass(.plan(provides: ["p"]))),
                                                                        (a, .pass(.plan(requires: ["p"])))]))
        guard case .passed(let detected) = ok else { Issue.record("\(ok)"); return }
        #expect(detected.group.groupExtensions.map(\.description) == ["X@v1"])
        #expect(detected.group.group.map(\.description) == ["A@v1"])
        #expect(detected.plan.entries[0].providers == [GroupElement(id: "X", version: "v1", kind: .extension)])
        #expect(detected.plan.rendered().contains("extension = true"))
        #expect(!detected.group.rendered().contains("optional"))
    }

    @Test func skippedElementsAreNotCounted() throws {
        let a = GroupElement.bp("A"), b = GroupElement.bp("B")
        let result = try GroupResolution.resolve([a, b], outcomes: outcomes([(a, .skipped), (b, .pass(DetectPlan()))]))
        guard case .passed(let detected) = result else { Issue.record("\(result)"); return }
        #expect(detected.group.group.map(\.description) == ["B@v1"])
    }

    @Test func missingOutcomeIsAPlatformError() {
        #expect(specError { () throws(SpecError) in try GroupResolution.resolve([.bp("A")], outcomes: [:]) }?.kind == .rule)
    }

    @Test func trialLimitBoundsHostileAlternatives() throws {
        // Three buildpacks with 100 unsatisfiable alternatives each: a million trials, capped.
        let alternatives = (0..<99).map { DetectPlan.Sections.sections(requires: ["missing\($0)"]) }
        let elements = (0..<3).map { GroupElement.bp("A\($0)") }
        let plans = elements.map { ($0, DetectOutcome.pass(.plan(requires: ["nope"], or: alternatives))) }
        let start = ContinuousClock.now
        let result = try GroupResolution.resolve(elements, outcomes: outcomes(plans), trialLimit: 1000)
        guard case .failed(let failure) = result else { Issue.record("\(result)"); return }
        #expect(failure.log.last == "fail: gave up after 1000 trials")
        #expect(ContinuousClock.now - start < .seconds(10))
    }
}

@Suite("Detection: worked example D7 (system buildpacks, fixtures)")
struct D7Tests {
    func lookup(_ element: GroupElement) throws(SpecError) -> BuildpackTOML {
        let directory = try Fixtures.directory("d7/buildpacks")
        return try BuildpackTOML.read(from: directory,
                                      at: "\(BuildpackID.escape(element.id))/\(element.version)/buildpack.toml")
    }

    func detectOutput(_ id: String) throws -> DetectPlan {
        try DetectPlan.read(from: try Fixtures.directory("d7/detect-output"), at: "\(id).toml", buildpack: id)
    }

    @Test func mergesSystemBuildpacksWithOrder() throws {
        let d7 = try Fixtures.directory("d7")
        let system = try SystemTOML.read(from: d7)
        let order = try OrderTOML.read(from: d7, at: "orders/middle_order.toml")
        let merged = system.applied(to: order.order)
        let candidates = try OrderExpansion.candidates(order: merged, lookup: lookup)
        #expect(candidates.count == 1)
        let group = candidates[0].groupElements
        #expect(group.map(\.id) == ["always-detect-buildpack", "buildpack-for-ext", "simple-buildpack"])
        var outcomes: [ModuleKey: DetectOutcome] = [:]
        for element in group { outcomes[element.key] = .pass(try detectOutput(element.id)) }
        let result = try GroupResolution.resolve(group, outcomes: outcomes)
        guard case .passed(let detected) = result else { Issue.record("\(result)"); return }
        #expect(detected.group.group.map(\.id) == ["always-detect-buildpack", "buildpack-for-ext", "simple-buildpack"])
        #expect(detected.group.group.map(\.api) == ["0.10", "0.10", "0.9"])
        // Derived: one entry, providers [always-detect, simple], two requires with their metadata.
        #expect(detected.plan.entries.count == 1)
        #expect(detected.plan.entries[0].providers.map(\.id) == ["always-detect-buildpack", "simple-buildpack"])
        let metadata: TOMLTable = ["version": "some_version", "some_metadata_key": "some_metadata_val"]
        #expect(detected.plan.entries[0].requires == [Require(name: "some_requirement", metadata: metadata),
                                                      Require(name: "some_requirement", metadata: metadata)])
    }

    @Test func simpleOrderKeepsRequiresMetadata() throws {
        let d7 = try Fixtures.directory("d7")
        let order = try OrderTOML.read(from: d7, at: "orders/simple_order.toml")
        let candidates = try OrderExpansion.candidates(order: order.order, lookup: lookup)
        let group = candidates[0].groupElements
        let result = try GroupResolution.resolve(group, outcomes: [group[0].key: .pass(try detectOutput("simple-buildpack"))])
        guard case .passed(let detected) = result else { Issue.record("\(result)"); return }
        #expect(detected.group.group.map(\.id) == ["simple-buildpack"])
        let text = detected.plan.rendered()
        #expect(text == """
        [[entries]]

        [[entries.providers]]
        id = "simple-buildpack"
        version = "simple_buildpack_version"

        [[entries.requires]]
        name = "some_requirement"

        [entries.requires.metadata]
        some_metadata_key = "some_metadata_val"
        version = "some_version"

        """)
        #expect(try PlanTOML(parsing: text) == detected.plan)
    }

    @Test func badAPIExits12() throws {
        let d7 = try Fixtures.directory("d7")
        let order = try OrderTOML.read(from: d7, at: "orders/bad_api.toml")
        let error = specError { () throws(SpecError) in try OrderExpansion.candidates(order: order.order, lookup: lookup) }
        #expect(error?.kind == .unsupportedBuildpackAPI)
        #expect(error?.buildpack == "bad-api@bad_api_version")
        #expect(error?.description.contains("Buildpack API 0.1 is not supported") == true)
    }
}
