import Testing
@testable import BuildpackSpec

@Suite("Documents: buildpack.toml")
struct BuildpackTOMLTests {
    @Test func readsEveryField() throws {
        let bp = try BuildpackTOML.read(from: try Fixtures.directory("descriptors"), at: "full-buildpack.toml")
        #expect(bp.kind == .buildpack)
        #expect(bp.api == APIVersion(0, 12))
        #expect(bp.info.id == "example/node")
        #expect(bp.info.version == "1.2.3")
        #expect(bp.info.name == "Node.js")
        #expect(bp.info.homepage == "https://example.com/node")
        #expect(bp.info.description == "Installs Node.js")
        #expect(bp.info.keywords == ["node", "javascript"])
        #expect(bp.info.clearEnv)
        #expect(bp.info.sbomFormats == ["application/vnd.cyclonedx+json", "application/spdx+json"])
        #expect(bp.info.licenses == [.init(type: "Apache-2.0"), .init(uri: "https://example.com/license")])
        #expect(bp.info.execEnv == ["production", "test"])
        #expect(bp.effectiveExecEnv == ["production", "test"])
        #expect(bp.targets == [
            Target(os: "linux", arch: "amd64", distros: [Distro(name: "ubuntu", version: "22.04")]),
            Target(os: "linux", arch: "arm64", variant: "v8"),
        ])
        #expect(bp.metadata["default-version"] == "20")
        #expect(bp.metadata["dependencies"] == [["id": "node", "version": "20.1.0"]])
        #expect(!bp.isComposite)
        #expect(bp.reference == "example/node@1.2.3")
        #expect(bp.groupElement() == GroupElement(id: "example/node", version: "1.2.3", api: "0.12",
                                                  homepage: "https://example.com/node"))
    }

    @Test func readsCompositeBuildpacks() throws {
        let bp = try BuildpackTOML.read(from: try Fixtures.directory("descriptors"), at: "composite-buildpack.toml")
        #expect(bp.isComposite)
        #expect(bp.order == [
            OrderGroup([GroupElement(id: "example/node", version: "1.2.3"),
                        GroupElement(id: "example/npm", version: "2.0.0", optional: true)]),
            OrderGroup([GroupElement(id: "example/yarn", version: "1.0.0", execEnv: ["test"])]),
        ])
        #expect(bp.info.execEnv == ["production"])
        #expect(bp.effectiveExecEnv == [])  // API 0.9: exec-env is not read
    }

    @Test func infersTargetsFromStacksAndBinaries() throws {
        let legacy = try BuildpackTOML.read(from: try Fixtures.directory("descriptors"), at: "legacy-stacks.toml")
        #expect(legacy.stacks == [.init(id: "io.buildpacks.stacks.bionic", mixins: ["build:git"])])
        let bionic = Target(os: "linux", arch: "amd64", distros: [Distro(name: "ubuntu", version: "18.04")])
        #expect(legacy.effectiveTargets(binaries: ["build"]) == [bionic])
        // Below API 0.10, bionic is only translated when it is the only stack.
        var two = legacy
        two.stacks.append(.init(id: "io.buildpacks.stacks.jammy"))
        #expect(two.effectiveTargets(binaries: ["build"]) == [Target(os: "linux")])
        two.api = APIVersion(0, 10)
        #expect(two.effectiveTargets(binaries: []) == [bionic])
        var any = legacy
        any.stacks = [.init(id: "*")]
        #expect(any.effectiveTargets(binaries: []) == [Target()])
        any.stacks = []
        #expect(any.effectiveTargets(binaries: ["build.exe"]) == [Target(os: "windows")])
        #expect(any.effectiveTargets(binaries: ["detect"]) == [])
    }

    @Test func matchesTargets() {
        let image = TargetPlatform(os: "linux", arch: "amd64", distro: Distro(name: "ubuntu", version: "22.04"))
        #expect(Target().matches(image))
        #expect(Target(os: "linux").matches(image))
        #expect(!Target(os: "windows").matches(image))
        #expect(Target(os: "linux", arch: "amd64", variant: "v8").matches(image))  // image variant empty: matches
        #expect(!Target(arch: "arm64").matches(image))
        #expect(Target(distros: [Distro(name: "debian"), Distro(name: "ubuntu", version: "22.04")]).matches(image))
        #expect(!Target(distros: [Distro(name: "ubuntu", version: "18.04")]).matches(image))
        #expect(!Target(distros: [Distro(name: "ubuntu")]).matches(TargetPlatform(os: "linux", arch: "amd64")))
        #expect(image.environment.map(\.name) == ["CNB_TARGET_OS", "CNB_TARGET_ARCH", "CNB_TARGET_DISTRO_NAME",
                                                   "CNB_TARGET_DISTRO_VERSION"])
        let bp = BuildpackTOML(api: APIVersion(0, 12), info: .init(id: "a", version: "1"),
                               targets: [Target(os: "linux", arch: "arm64")])
        #expect(!bp.supports(image, binaries: ["build"]))
        #expect(BuildpackTOML(api: APIVersion(0, 12), info: .init(id: "a", version: "1")).supports(image, binaries: []))
    }

    @Test(arguments: [
        ("api = \"0.6\"\n[buildpack]\nid = \"a\"\nversion = \"1\"", SpecError.Kind.unsupportedBuildpackAPI, "api"),
        ("api = \"0.13\"\n[buildpack]\nid = \"a\"\nversion = \"1\"", .unsupportedBuildpackAPI, "api"),
        // The API is checked first, whatever else is wrong.
        ("api = \"2.0\"\n[buildpack]\nid = 7", .unsupportedBuildpackAPI, "api"),
        ("[buildpack]\nid = \"a\"\nversion = \"1\"", .schema, "api"),
        ("api = 0.7\n[buildpack]\nid = \"a\"", .schema, "api"),
        ("api = \"0.7\"", .schema, ""),
        ("api = \"0.7\"\n[buildpack]\nid = 7\nversion = \"1\"", .schema, "buildpack.id"),
        ("api = \"0.7\"\n[buildpack]\nid = \"app\"\nversion = \"1\"", .invalidValue, "buildpack.id"),
        ("api = \"0.7\"\n[buildpack]\nid = \"a b\"\nversion = \"1\"", .invalidValue, "buildpack.id"),
        ("api = \"0.7\"\n[buildpack]\nid = \"a\"\nversion = \"../1\"", .invalidValue, "buildpack.version"),
        ("api = \"0.7\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\nclear-env = \"yes\"", .schema, "buildpack.clear-env"),
        ("api = \"0.7\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\n[[order]]\n[[order.group]]\nid = \"b\"",
         .schema, "order[0].group[0].version"),
        ("api = \"0.7\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\n[[targets]]\nvariant = \"v7\"\narch-variant = \"v8\"",
         .invalidValue, "targets[0].variant"),
        ("api = \"0.7\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\nkeywords = [\"a\", 1]", .schema, "buildpack.keywords[1]"),
    ])
    func rejectsInvalidDescriptors(text: String, kind: SpecError.Kind, keyPath: String) {
        let error = specError { () throws(SpecError) in try BuildpackTOML(parsing: text) }
        #expect(error?.kind == kind, "\(text): \(String(describing: error))")
        #expect((error?.keyPath ?? "") == keyPath, "\(text): \(String(describing: error))")
        #expect(error?.file == "buildpack.toml")
    }

    @Test func errorsNameTheBuildpackFileAndKey() {
        let error = specError { () throws(SpecError) in
            try BuildpackTOML(parsing: "api = \"0.9\"\n[buildpack]\nid = \"ex/a\"\nversion = \"1.0.0\"\nsbom-formats = \"x\"",
                              context: DocumentContext(file: "/cnb/buildpacks/ex_a/1.0.0/buildpack.toml"))
        }
        #expect(error?.description ==
            "buildpack ex/a@1.0.0: /cnb/buildpacks/ex_a/1.0.0/buildpack.toml: buildpack.sbom-formats: expected an array of strings, found a string")
    }

    @Test func readsExtensionDescriptors() throws {
        let ext = try BuildpackTOML.read(from: try Fixtures.directory("descriptors"), at: "extension.toml")
        #expect(ext.kind == .extension)
        #expect(ext.info.id == "example/curl")
        #expect(ext.groupElement().kind == .extension)
    }
}

@Suite("Documents: order, group, plan")
struct OrderGroupPlanTests {
    @Test func orderRoundTrips() throws {
        let text = """
        [[order]]
        [[order.group]]
        id = "a"
        version = "1"
        optional = true
        [[order.group]]
        id = "b"
        version = "2"
        [[order-extensions]]
        [[order-extensions.group]]
        id = "x"
        version = "3"
        """
        let order = try OrderTOML(parsing: text)
        #expect(order.order == [OrderGroup([GroupElement(id: "a", version: "1", optional: true),
                                            GroupElement(id: "b", version: "2")])])
        #expect(order.orderExtensions == [OrderGroup([GroupElement(id: "x", version: "3", optional: true, kind: .extension)])])
        #expect(try OrderTOML(parsing: order.rendered()) == order)
    }

    @Test func groupIsWrittenWithoutOptional() throws {
        let group = GroupTOML(group: [GroupElement(id: "a", version: "1", optional: true, api: "0.9", homepage: "h")],
                              groupExtensions: [GroupElement(id: "x", version: "2", optional: true, kind: .extension, api: "0.12")])
        let text = group.rendered()
        #expect(text == """
        [[group]]
        api = "0.9"
        homepage = "h"
        id = "a"
        version = "1"

        [[group-extensions]]
        api = "0.12"
        id = "x"
        version = "2"

        """)
        let back = try GroupTOML(parsing: text)
        #expect(back.group == group.group)
        #expect(back.groupExtensions.map(\.id) == ["x"])
    }

    @Test func aGroupAsItRanHoldsNoOptionalElement() throws {
        // group.toml and metadata.toml list what ran: an `optional` someone wrote there means nothing.
        let group = try GroupTOML(parsing: """
        [[group]]
        id = "a"
        version = "1"
        optional = true

        [[group-extensions]]
        id = "x"
        version = "2"
        optional = true
        """)
        #expect(group.group == [GroupElement(id: "a", version: "1")])
        #expect(group.groupExtensions == [GroupElement(id: "x", version: "2", kind: .extension)])
        let metadata = try MetadataTOML(parsing: """
        [[buildpacks]]
        id = "a"
        version = "1"
        optional = true

        [[extensions]]
        id = "x"
        version = "2"
        optional = true
        """)
        #expect(metadata.buildpacks == group.group)
        #expect(metadata.extensions == group.groupExtensions)
    }

    @Test func writesAndReadsPlans() throws {
        let plan = PlanTOML(entries: [
            .init(providers: [GroupElement(id: "a", version: "1", optional: true, api: "0.9")],
                  requires: [Require(name: "node", metadata: ["version": "20", "nested": ["x": [1, 2]]])]),
        ])
        let text = plan.rendered()
        #expect(!text.contains("optional"))
        #expect(!text.contains("api"))
        #expect(try PlanTOML(parsing: text) == plan)
    }

    @Test func readsWhatDetectWrites() throws {
        let plan = try DetectPlan(parsing: """
        [[provides]]
        name = "node"
        [[requires]]
        name = "node"
        [requires.metadata]
        version = "20"
        launch = true
        [[or]]
        [[or.provides]]
        name = "node"
        [[or.requires]]
        name = "node"
        [[or]]
        [[or.requires]]
        name = "yarn"
        """)
        #expect(plan.sections.provides == [Provide(name: "node")])
        #expect(plan.sections.requires == [Require(name: "node", metadata: ["version": "20", "launch": true])])
        #expect(plan.or.count == 2)
        #expect(plan.alternatives.count == 3)
        #expect(plan.or[1].requires.map(\.name) == ["yarn"])
        #expect(try DetectPlan(parsing: "") == DetectPlan())
    }

    @Test(arguments: [
        ("[[requires]]\nname = \"node\"\nversion = \"20\"", "requires[0].version", "is not supported"),
        ("[[requires]]\nname = \"node\"\nversion = \"20\"\n[requires.metadata]\nversion = \"20\"", "requires[0].version",
         "cannot be specified together"),
        ("[[or]]\n[[or.requires]]\nname = \"node\"\nversion = \"20\"", "or[0].requires[0].version", "is not supported"),
        ("[[requires]]\nversion = 20", "requires[0].version", "is not supported"),
        ("[[provides]]\nname = 1", "provides[0].name", "expected a string"),
        ("provides = \"node\"", "provides", "expected an array of tables"),
        ("[[requires]]\nname = \"n\"\nmetadata = 1", "requires[0].metadata", "expected a table"),
    ])
    func detectPlanBuildpackErrors(text: String, keyPath: String, message: String) {
        let error = specError { () throws(SpecError) in
            try DetectPlan(parsing: text, context: DocumentContext(file: "plan.toml", buildpack: "A@v1"))
        }
        #expect(error?.keyPath == keyPath, "\(String(describing: error))")
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
        #expect(error?.buildpack == "A@v1")
    }

    @Test func detectPlanThatIsNotTOMLIsAnError() {
        let error = specError { () throws(SpecError) in
            try DetectPlan(parsing: "[[provides]\nname=", context: DocumentContext(file: "plan.toml", buildpack: "A@v1"))
        }
        #expect(error?.kind == .syntax)
        #expect(error?.buildpack == "A@v1")
    }

    @Test func extensionsMayOnlyProvide() throws {
        let plan = try DetectPlan(parsing: "[[or]]\n[[or.requires]]\nname = \"x\"")
        let context = DocumentContext(file: "plan.toml", buildpack: "X@v1")
        #expect(throws: Never.self) { try plan.validate(for: .buildpack, context: context) }
        #expect(specError { () throws(SpecError) in try plan.validate(for: .extension, context: context) }?.message
            .contains("cannot output \"requires\"") == true)
    }

    @Test func buildpackPlanRoundTrips() throws {
        let plan = BuildpackPlan(entries: [Require(name: "node", metadata: ["version": "20"]), Require(name: "npm")])
        #expect(plan.rendered() == """
        [[entries]]
        name = "node"

        [entries.metadata]
        version = "20"

        [[entries]]
        name = "npm"

        [entries.metadata]

        """)
        #expect(try BuildpackPlan(parsing: plan.rendered()) == plan)
    }
}

@Suite("Documents: layer, launch, build, store, metadata")
struct BuildOutputDocumentTests {
    @Test func layerMetadata() throws {
        let layer = try LayerTOML(parsing: "[types]\nlaunch = true\ncache = true\n[metadata]\nversion = \"20\"\nexec-env = [\"test\"]")
        #expect(layer == LayerTOML(launch: true, build: false, cache: true,
                                   metadata: ["version": "20", "exec-env": ["test"]]))
        #expect(layer.execEnv == ["test"])
        #expect(!layer.isIgnored)
        #expect(LayerTOML().isIgnored)
        #expect(try LayerTOML(parsing: layer.rendered()) == layer)
        // Restored files carry only [metadata].
        #expect(TOML.render(layer.tomlTable(includingTypes: false)) == "[metadata]\nexec-env = [\"test\"]\nversion = \"20\"\n")
    }

    @Test(arguments: ["launch = true", "build = false", "cache = true\n[types]\ncache = true"])
    func topLevelTypeKeysAreAnError(text: String) {
        let error = specError { () throws(SpecError) in
            try LayerTOML(parsing: text, context: DocumentContext(file: "node.toml", buildpack: "A@v1"))
        }
        #expect(error?.kind == .invalidValue)
        #expect(error?.message.contains("[types]") == true)
        #expect(error?.buildpack == "A@v1")
    }

    @Test func launchTOMLBefore09() throws {
        let launch = try LaunchTOML.read(from: try Fixtures.directory("descriptors"), at: "launch-0.8.toml",
                                         buildpack: "A@v1", buildpackAPI: APIVersion(0, 8))
        #expect(launch.processes == [
            LaunchProcess(type: "web", command: ["bundle exec puma"], args: ["-p", "8080"], direct: true, isDefault: true,
                    workingDirectory: "/workspace/app"),
            LaunchProcess(type: "process.with.period", command: ["./worker"], direct: false),
        ])
        #expect(launch.labels == [LaunchLabel(key: "org.example.team", value: "core")])
        #expect(launch.slices == [LaunchSlice(paths: ["public/*", "assets/**"])])
        // 0.7 ignores working-dir, with a warning.
        let old = try LaunchTOML.read(from: try Fixtures.directory("descriptors"), at: "launch-0.8.toml",
                                      buildpackAPI: APIVersion(0, 7))
        #expect(old.processes[0].workingDirectory == nil)
        #expect(old.warnings.count == 1)
        // An array command is an error before 0.9.
        let error = specError { () throws(SpecError) in
            try LaunchTOML.read(from: try Fixtures.directory("descriptors"), at: "launch-0.12.toml", buildpack: "A@v1",
                                buildpackAPI: APIVersion(0, 8))
        }
        #expect(error?.keyPath == "processes[0].command")
        #expect(error?.message.contains("expected a string") == true)
    }

    @Test func launchTOMLFrom09() throws {
        let launch = try LaunchTOML.read(from: try Fixtures.directory("descriptors"), at: "launch-0.12.toml",
                                         buildpackAPI: APIVersion(0, 12))
        #expect(launch.processes == [
            LaunchProcess(type: "web", command: ["bundle", "exec"], args: ["puma"], isDefault: true,
                    workingDirectory: "/workspace/sub", execEnv: ["production"]),
            LaunchProcess(type: "worker_1", command: ["sidekiq"]),
        ])
        // A string command or a direct key is an error from 0.9.
        let error = specError { () throws(SpecError) in
            try LaunchTOML.read(from: try Fixtures.directory("descriptors"), at: "launch-0.8.toml", buildpackAPI: APIVersion(0, 9))
        }
        #expect(error?.message.contains("expected an array of strings") == true)
        let direct = specError { () throws(SpecError) in
            try LaunchTOML(parsing: "[[processes]]\ntype = \"w\"\ncommand = [\"x\"]\ndirect = true",
                           context: DocumentContext(file: "launch.toml", buildpackAPI: APIVersion(0, 10)))
        }
        #expect(direct?.keyPath == "processes[0].direct")
    }

    @Test(arguments: [
        ("[[processes]]\ntype = \"we/b\"\ncommand = [\"x\"]", "processes[0].type", "not a valid process type"),
        ("[[processes]]\ntype = \"a\"\ncommand = [\"x\"]\ndefault = true\n[[processes]]\ntype = \"b\"\ncommand = [\"y\"]\ndefault = true",
         "processes[1].default", "more than one process is the default"),
        ("[[processes]]\ntype = \"a\"\ncommand = []", "processes[0].command", "must name an executable"),
        ("[[processes]]\ntype = \"a\"", "processes[0].command", "is required"),
        ("[[labels]]\nkey = \"k\"", "labels[0].value", "is required"),
    ])
    func invalidLaunchTOML(text: String, keyPath: String, message: String) {
        let error = specError { () throws(SpecError) in
            try LaunchTOML(parsing: text, context: DocumentContext(file: "launch.toml", buildpack: "A@v1",
                                                                   buildpackAPI: APIVersion(0, 12)))
        }
        #expect(error?.keyPath == keyPath, "\(String(describing: error))")
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
        #expect(error?.description.hasPrefix("buildpack A@v1: launch.toml: ") == true)
    }

    @Test func buildAndStoreTOML() throws {
        let build = try BuildTOML(parsing: "[[unmet]]\nname = \"npm\"\n[[bom]]\nname = \"node\"\n[bom.metadata]\nversion = \"20\"")
        #expect(build.unmet == ["npm"])
        #expect(build.bom == [["name": "node", "metadata": ["version": "20"]]])
        #expect(try BuildTOML(parsing: build.rendered()) == build)
        #expect(specError { () throws(SpecError) in try BuildTOML(parsing: "[[unmet]]\nname = \"\"") }?.keyPath == "unmet[0].name")
        let store = try StoreTOML(parsing: "[metadata]\ncount = 3\n[metadata.inner]\nwhen = 2024-01-01")
        #expect(store.metadata["count"] == 3)
        #expect(try StoreTOML(parsing: store.rendered()) == store)
    }

    @Test func mergesProcessesForMetadataTOML() throws {
        var contributions = LaunchContributions()
        contributions.add(LaunchTOML(processes: [
            LaunchProcess(type: "web", command: ["node", "server.js"], isDefault: true),
            LaunchProcess(type: "worker", command: ["node", "worker.js"], args: ["--fast"]),
        ], labels: [LaunchLabel(key: "k", value: "1")], slices: [LaunchSlice(paths: ["public/*"])]), buildpackID: "example/node")
        #expect(contributions.defaultProcessType == "web")
        // A later buildpack replaces "worker"; its default wins.
        contributions.add(LaunchTOML(processes: [
            LaunchProcess(type: "worker", command: ["npm", "run", "worker"]),
            LaunchProcess(type: "task", command: ["npm", "run", "task"], isDefault: true),
        ], labels: [LaunchLabel(key: "k", value: "2")]), buildpackID: "example/npm")
        #expect(contributions.defaultProcessType == "task")
        // A later non-default redefinition of the default type removes the default, with a warning.
        let warnings = contributions.add(LaunchTOML(processes: [LaunchProcess(type: "task", command: ["make"])]),
                                         buildpackID: "example/make")
        #expect(contributions.defaultProcessType == nil)
        #expect(warnings.count == 1)
        #expect(contributions.effectiveLabels == ["k": "2"])

        let group = [GroupElement(id: "example/node", version: "1", api: "0.12", homepage: "h"),
                     GroupElement(id: "example/npm", version: "2", api: "0.9")]
        let metadata = contributions.metadata(buildpacks: group, platformAPI: APIVersion(0, 15))
        #expect(metadata.processes.map(\.type) == ["task", "web", "worker"])
        #expect(metadata.process(ofType: "worker")?.buildpackID == "example/npm")
        let text = metadata.rendered()
        #expect(text == """
        [[buildpacks]]
        api = "0.12"
        homepage = "h"
        id = "example/node"
        version = "1"

        [[buildpacks]]
        api = "0.9"
        id = "example/npm"
        version = "2"

        [[labels]]
        key = "k"
        value = "1"

        [[labels]]
        key = "k"
        value = "2"

        [[processes]]
        args = []
        buildpack-id = "example/make"
        command = ["make"]
        direct = true
        type = "task"

        [[processes]]
        args = []
        buildpack-id = "example/node"
        command = ["node", "server.js"]
        direct = true
        type = "web"

        [[processes]]
        args = []
        buildpack-id = "example/npm"
        command = ["npm", "run", "worker"]
        direct = true
        type = "worker"

        [[slices]]
        paths = ["public/*"]

        """)
        #expect(try MetadataTOML(parsing: text) == metadata)

        // With a default, and for Platform API < 0.10: command is a string, extra parts move to args.
        var withDefault = LaunchContributions()
        withDefault.add(LaunchTOML(processes: [LaunchProcess(type: "web", command: ["node", "server.js"], args: ["-p"], isDefault: true)]),
                        buildpackID: "example/node")
        let old = withDefault.metadata(buildpacks: group, platformAPI: APIVersion(0, 9)).rendered()
        #expect(old.hasPrefix("buildpack-default-process-type = \"web\"\n"))
        #expect(old.contains("command = \"node\"\n"))
        #expect(old.contains("args = [\"server.js\", \"-p\"]\n"))
    }
}

@Suite("Documents: builder.toml, project.toml, system.toml")
struct PlatformDocumentTests {
    @Test func builderTOML() throws {
        let builder = try BuilderTOML.read(from: try Fixtures.directory("descriptors"), at: "builder.toml")
        #expect(builder.description == "An example builder")
        #expect(builder.buildpacks == [ModuleReference(id: "example/node", version: "1.2.3", uri: "./node"),
                                       ModuleReference(uri: "docker://example/npm:2.0.0")])
        #expect(builder.extensions == [ModuleReference(id: "example/curl", uri: "./curl")])
        #expect(builder.order == [OrderGroup([GroupElement(id: "example/node", version: ""),
                                              GroupElement(id: "example/npm", version: "2.0.0", optional: true)])])
        #expect(builder.orderExtensions[0].group[0].kind == .extension)
        #expect(builder.buildImage == "example/build:jammy")
        #expect(builder.buildEnv == [
            BuildConfigVariable(name: "JAVA_OPTS", value: "-Xmx1g"),
            BuildConfigVariable(name: "PATH", value: "/opt/bin", action: .prepend, delimiter: ":"),
        ])
        #expect(builder.buildEnv.map(\.fileName) == ["JAVA_OPTS.default", "PATH.prepend"])
        #expect(builder.buildEnv[1].delimiterFileName == "PATH.delim")
        #expect(builder.runImages == [.init(image: "example/run:jammy", mirrors: ["mirror.example/run:jammy"])])
        #expect(builder.stack?.id == "io.buildpacks.stacks.jammy")
        #expect(builder.stack?.runImageMirrors == ["mirror.example/run:jammy"])
        #expect(builder.lifecycleVersion == "0.20.0")
        #expect(builder.targets == [Target(os: "linux", arch: "amd64")])
        let bad = specError { () throws(SpecError) in
            try BuilderTOML(parsing: "[[build.env]]\nname = \"X\"\nvalue = \"1\"\nsuffix = \"delim\"")
        }
        #expect(bad?.keyPath == "build.env[0].suffix")
        let badName = specError { () throws(SpecError) in try BuilderTOML(parsing: "[[build.env]]\nname = \"X.append\"") }
        #expect(badName?.keyPath == "build.env[0].name")
    }

    @Test func projectTOMLSchema02() throws {
        let project = try ProjectTOML.read(from: try Fixtures.directory("projects"), at: "project-0.2.toml")
        #expect(project.schemaVersion == APIVersion(0, 2))
        #expect(project.id == "com.example.app")
        #expect(project.name == "Example App")
        #expect(project.authors == ["Jane <jane@example.com>"])
        #expect(project.documentationURL == "https://example.com/docs")
        #expect(project.licenses == [.init(type: "MIT")])
        #expect(project.metadata["foo"] == ["checksum": "a28a0d7772df1f918da2b1102da4ff35"])
        #expect(project.builder == "example/builder:jammy")
        #expect(project.exclude == ["/README.md", "*.log"])
        #expect(project.include == [])
        #expect(project.pre == [.uri("https://example.com/pre.tgz", id: nil)])
        #expect(project.group == [.registry(id: "example/node", version: "1.2.3"),
                                  .inline(id: "example/hello", api: "0.12", shell: "/bin/sh", script: "echo hello")])
        #expect(project.post == [.registry(id: "example/post", version: nil)])
        #expect(project.buildEnv == [.init(name: "JAVA_OPTS", value: "-Xmx1g")])
        // The project's group replaces the builder's order; pre and post wrap it; every element is required.
        let builderOrder = [OrderGroup([GroupElement(id: "builder/only", version: "1")])]
        let order = try project.order(wrapping: builderOrder, resolving: Self.resolveForTest)
        #expect(order.map { $0.group.map(\.description) } ==
            [["example/pre@0.0.1", "example/node@1.2.3", "example/hello@0.0.0", "example/post@latest"]])
        #expect(order[0].group.allSatisfy { !$0.optional })
    }

    static func resolveForTest(_ buildpack: ProjectTOML.Buildpack) throws(SpecError) -> GroupElement {
        switch buildpack {
        case .registry(let id, let version): return GroupElement(id: id, version: version ?? "latest", optional: true)
        case .uri: return GroupElement(id: "example/pre", version: "0.0.1")
        case .inline(let id, _, _, _): return GroupElement(id: id, version: "0.0.0")
        }
    }

    @Test func preAndPostWrapEveryGroupOfTheOrderWhenTheProjectHasNoGroup() throws {
        let project = try ProjectTOML(parsing: """
            [_]
            schema-version = "0.2"
            [[io.buildpacks.pre.group]]
            id = "first"
            version = "1"
            [[io.buildpacks.post.group]]
            id = "last"
            version = "1"
            """)
        let order = try project.order(wrapping: [
            OrderGroup([GroupElement(id: "a", version: "1"), GroupElement(id: "b", version: "1", optional: true)]),
            OrderGroup([GroupElement(id: "c", version: "1")]),
        ], resolving: Self.resolveForTest)
        #expect(order.map { $0.group.map(\.description) } == [["first@1", "a@1", "b@1", "last@1"], ["first@1", "c@1", "last@1"]])
        // The builder's optional stays optional; what the project adds is required.
        #expect(order[0].group.map(\.optional) == [false, false, true, false])
        // Without pre, post or group, the order is the builder's, untouched.
        let plain = try ProjectTOML(parsing: "[_]\nschema-version = \"0.2\"")
        #expect(try plain.order(wrapping: [OrderGroup([GroupElement(id: "a", version: "1", optional: true)])],
                                resolving: Self.resolveForTest) == [OrderGroup([GroupElement(id: "a", version: "1", optional: true)])])
    }

    @Test func schema01InlineBuildpackAndEnvironment() throws {
        let project = try ProjectTOML(parsing: """
            [project]
            id = "app"
            [[build.env]]
            name = "GREETING"
            value = "hi"
            [[build.buildpacks]]
            id = "me/inline_one"
            [build.buildpacks.script]
            api = "0.10"
            shell = "/bin/bash"
            inline = "echo one"
            """)
        #expect(project.schemaVersion == APIVersion(0, 1))
        #expect(project.group == [.inline(id: "me/inline_one", api: "0.10", shell: "/bin/bash", script: "echo one")])
        #expect(project.buildEnv == [.init(name: "GREETING", value: "hi")])
    }

    /// The shell becomes a `#!` line and the script a file: both are bounded and checked.
    @Test(arguments: [
        ("shell = \"sh\"", "shell"), ("shell = \"/bin/sh -e\"", "shell"), ("shell = \"/bin/sh\\n/x\"", "shell"),
        ("shell = \"\"", "shell"), ("shell = \"/\(String(repeating: "a", count: 300))\"", "shell"),
        ("inline = \"\(String(repeating: "x", count: ProjectTOML.inlineScriptLimit + 1))\"", "inline"),
    ])
    func hostileInlineScripts(line: String, key: String) {
        var script = "api = \"0.10\"\n" + line + "\n"
        if !line.hasPrefix("inline") { script += "inline = \"true\"\n" }
        let text = "[_]\nschema-version = \"0.2\"\n[[io.buildpacks.group]]\nid = \"x\"\n[io.buildpacks.group.script]\n" + script
        let error = specError { () throws(SpecError) in try ProjectTOML(parsing: text) }
        #expect(error?.keyPath == "io.buildpacks.group[0].script." + key, "\(String(describing: error))")
        #expect(error?.kind == .invalidValue)
    }

    @Test func projectTOMLSchema01() throws {
        let project = try ProjectTOML.read(from: try Fixtures.directory("projects"), at: "project-0.1.toml")
        #expect(project.schemaVersion == APIVersion(0, 1))
        #expect(project.id == "io.buildpacks.my-app")
        #expect(project.include == ["cmd/", "go.mod", "go.sum", "*.go"])
        #expect(project.group == [.registry(id: "io.buildpacks/java", version: "1.0"),
                                  .uri("https://example.com/nodejs.tgz", id: nil)])
        #expect(project.buildEnv == [.init(name: "JAVA_OPTS", value: "-Xmx1g")])
        #expect(project.metadata == ["foo": "bar"])
        #expect(project.licenses == [.init(type: "MIT")])
    }

    @Test(arguments: [
        ("[_]\nschema-version = \"0.3\"", "_.schema-version"),
        ("[_]\nschema-version = \"0.2\"\n[io.buildpacks]\ninclude = [\"a\"]\nexclude = [\"b\"]", "io.buildpacks"),
        ("[_]\nschema-version = \"0.2\"\n[[io.buildpacks.group]]\nid = \"a\"\nversion = \"1\"\nuri = \"x\"", "io.buildpacks.group[0]"),
        ("[_]\nschema-version = \"0.2\"\n[[io.buildpacks.group]]\nversion = \"1\"", "io.buildpacks.group[0]"),
        ("[_]\nschema-version = \"0.2\"\n[[io.buildpacks.group]]\n[io.buildpacks.group.script]\napi = \"0.12\"\ninline = \"x\"",
         "io.buildpacks.group[0].id"),
        ("[build]\ninclude = [\"a\"]\nexclude = [\"b\"]", "build"),
    ])
    func invalidProjectTOML(text: String, keyPath: String) {
        let error = specError { () throws(SpecError) in try ProjectTOML(parsing: text) }
        #expect(error?.keyPath == keyPath, "\(String(describing: error))")
        #expect(error?.file == "project.toml")
    }

    @Test func systemTOMLAddsBuildpacksUnlessTheIDIsPresent() throws {
        let system = try SystemTOML(parsing: """
        [[system.pre.buildpacks]]
        id = "pre"
        version = "1"
        optional = true
        [[system.post.buildpacks]]
        id = "post"
        version = "1"
        """)
        let order = [OrderGroup([.bp("a")]), OrderGroup([.bp("pre", "v9"), .bp("b")])]
        let merged = system.applied(to: order)
        #expect(merged.map { $0.group.map(\.description) } == [["pre@1", "a@v1", "post@1"], ["pre@v9", "b@v1", "post@1"]])
        #expect(merged[0].group[0].optional == false)  // REF drops optional
    }
}
