import Foundation
import Testing
@testable import BuildpackSpec

@Suite("Build phase: plan filtering (§5.1)")
struct BuildPlanTests {
    /// B1: plan extension-dep {A as extension}; some-dep {A,B}; some-unmet-dep {A,B}; other-dep {B}.
    @Test func b1ProvidesASubsetOfTheBuildPlanToEachBuildpack() throws {
        let a = GroupElement(id: "A", version: "v1"), b = GroupElement(id: "B", version: "v2")
        let aExtension = GroupElement(id: "A", version: "v1", kind: .extension)
        let plan = PlanTOML(entries: [
            .init(providers: [aExtension], requires: [Require(name: "extension-dep", metadata: ["version": "v1"])]),
            .init(providers: [a, b], requires: [Require(name: "some-dep", metadata: ["version": "v1"])]),
            .init(providers: [a, b], requires: [Require(name: "some-unmet-dep", metadata: ["version": "v2"])]),
            .init(providers: [b], requires: [Require(name: "other-dep", metadata: ["version": "v4"])]),
        ])
        var remaining = RemainingPlan(plan)

        let planA = remaining.buildpackPlan(for: a)
        #expect(planA == BuildpackPlan(entries: [
            Require(name: "some-dep", metadata: ["version": "v1"]),
            Require(name: "some-unmet-dep", metadata: ["version": "v2"]),
        ]))
        let met = try remaining.complete(a, received: planA, buildTOML: BuildTOML(unmet: ["some-unmet-dep"]))
        #expect(met == ["some-dep"])

        let planB = remaining.buildpackPlan(for: b)
        #expect(planB == BuildpackPlan(entries: [
            Require(name: "some-unmet-dep", metadata: ["version": "v2"]),
            Require(name: "other-dep", metadata: ["version": "v4"]),
        ]))
        try remaining.complete(b, received: planB, buildTOML: nil)
        // extension-dep reaches no buildpack; it is all that is left.
        #expect(remaining.plan.entries.map(\.name) == ["extension-dep"])
        #expect(plan.buildpackPlan(for: "A", kind: .extension).names == ["extension-dep"])
    }

    @Test func unknownUnmetNameIsAnError() {
        let received = BuildpackPlan(entries: [Require(name: "node")])
        var remaining = RemainingPlan(PlanTOML())
        let error = specError { () throws(SpecError) in
            try remaining.complete(GroupElement(id: "A", version: "v1"), received: received,
                                   buildTOML: BuildTOML(unmet: ["node", "yarn"]))
        }
        #expect(error?.kind == .invalidValue)
        #expect(error?.keyPath == "unmet[1].name")
        #expect(error?.description == "buildpack A@v1: build.toml: unmet[1].name: unmet name \"yarn\" must match a requested dependency")
    }
}

@Suite("Build phase: the layers directory (§5.1)")
struct BuildpackLayersTests {
    @Test func scansLayersMetadataAndContent() throws {
        let tmp = TemporaryDirectory()
        tmp.write("bp/node.toml", "[types]\nlaunch = true\nbuild = true\n[metadata]\nversion = \"20\"")
        tmp.mkdir("bp/node/bin")
        tmp.write("bp/reused.toml", "[types]\nlaunch = true")  // no directory: reuse the previous image's layer
        tmp.write("bp/scratch.toml", "[metadata]\nx = 1")      // all flags false
        tmp.mkdir("bp/scratch")
        tmp.mkdir("bp/orphan")                                   // no toml: ignored by the platform
        tmp.write("bp/launch.toml", "[[processes]]\ntype = \"web\"\ncommand = [\"x\"]")
        tmp.write("bp/build.toml", "[[unmet]]\nname = \"x\"")
        tmp.write("bp/store.toml", "[metadata]\na = 1")
        tmp.write("bp/node.sbom.cdx.json", "{}")
        tmp.write("bp/with.dots.toml", "[types]\ncache = true")
        tmp.mkdir("bp/build")                                    // a directory named like a reserved file is no layer
        let dir = try tmp.confined("bp")
        let layers = try BuildpackLayers.scan(dir, buildpack: "bp@1")
        #expect(layers.layers.map(\.name) == ["node", "orphan", "reused", "scratch", "with.dots"])
        #expect(layers["node"]?.metadata == LayerTOML(launch: true, build: true, metadata: ["version": "20"]))
        #expect(layers["node"]?.contentKind == .directory)
        #expect(layers["reused"]?.contentKind == nil)
        #expect(layers["orphan"]?.metadata == nil)
        #expect(layers.ignoredLayers.map(\.name) == ["scratch"])
        try layers.renameIgnoredLayers(in: dir)
        #expect(try dir.kind(of: "scratch.ignore") == .directory)
        #expect(try dir.kind(of: "scratch") == nil)
    }

    @Test(arguments: [".toml", "..toml", "...toml"])
    func dotNamesAreNeverLayers(fileName: String) throws {
        let tmp = TemporaryDirectory()
        // "..toml" names the layer ".", which would be the buildpack directory itself; "...toml" names "..", its parent.
        tmp.write("bp/\(fileName)", "[types]\nlaunch = true\nbuild = true")
        let error = specError { () throws(SpecError) in try BuildpackLayers.scan(try tmp.confined("bp"), buildpack: "evil@1") }
        #expect(error?.kind == .invalidValue)
        #expect(error?.buildpack == "evil@1")
        #expect(error?.file?.hasSuffix("/bp/\(fileName)") == true)
        #expect(error?.message.contains("not a valid layer name") == true)
    }

    @Test func launchTOMLIsNotALayer() throws {
        let tmp = TemporaryDirectory()
        tmp.write("bp/launch.toml", "[types]\nlaunch = true")
        tmp.write("bp/store.toml", "[types]\nlaunch = true")
        tmp.write("bp/build.toml", "[types]\nlaunch = true")
        let layers = try BuildpackLayers.scan(try tmp.confined("bp"))
        #expect(layers.layers.isEmpty)
        #expect(throws: SpecError.self) { try LayerName.validate("launch") }
    }

    @Test func hostileLayerFiles() throws {
        let tmp = TemporaryDirectory()
        tmp.write("outside.toml", "[types]\nlaunch = true")
        tmp.mkdir("bp")
        tmp.symlink("bp/escape.toml", to: tmp.absolute("outside.toml"))
        let symlink = specError { () throws(SpecError) in try BuildpackLayers.scan(try tmp.confined("bp"), buildpack: "evil@1") }
        #expect(symlink?.kind == .notRegularFile)
        #expect(symlink?.buildpack == "evil@1")

        let fifo = TemporaryDirectory()
        fifo.mkdir("bp")
        fifo.mkfifo("bp/blocking.toml")
        #expect(specError { () throws(SpecError) in try BuildpackLayers.scan(try fifo.confined("bp")) }?.kind == .notRegularFile)

        let typesAtTop = TemporaryDirectory()
        typesAtTop.write("bp/node.toml", "launch = true")
        let top = specError { () throws(SpecError) in try BuildpackLayers.scan(try typesAtTop.confined("bp"), buildpack: "bp@1") }
        #expect(top?.kind == .invalidValue)
        #expect(top?.file?.hasSuffix("bp/node.toml") == true)

        let deep = TemporaryDirectory()
        deep.write("bp/node.toml", "[metadata]\nx = " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000))
        #expect(specError { () throws(SpecError) in try BuildpackLayers.scan(try deep.confined("bp")) }?.kind == .tooDeep)

        let invalid = TemporaryDirectory()
        invalid.write("bp/node.toml", bytes: Array("[metadata]\nx = \"".utf8) + [0xC3, 0x28] + Array("\"".utf8))
        #expect(specError { () throws(SpecError) in try BuildpackLayers.scan(try invalid.confined("bp")) }?.kind == .invalidUTF8)
    }

    @Test(arguments: ["../x", "a/b", "a\u{0}b", "", ".", "..", "launch", "build", "store"])
    func invalidLayerNamesAreRefused(name: String) {
        let error = specError { () throws(SpecError) in try LayerName.validate(name) }
        #expect(error?.kind == .invalidValue && error?.message.contains("is not a valid layer name") == true, "\(String(describing: error))")
    }

    /// `.toml`, `..toml` and `...toml` (names "", "." and "..") written beside a good layer: the
    /// scan is that buildpack's error, naming the file. The control: the good layer alone scans.
    @Test(arguments: ["", ".", ".."])
    func invalidLayerNamesCannotBeOpened(name: String) throws {
        let tmp = TemporaryDirectory()
        tmp.write("bp/ok.toml", "[types]\nlaunch = true\n")
        #expect(try BuildpackLayers.scan(try tmp.confined("bp"), buildpack: "t/bp@1").layers.map(\.name) == ["ok"])
        let bad = tmp.write("bp/\(name).toml", "[types]\nlaunch = true\n")
        let error = specError { () throws(SpecError) in try BuildpackLayers.scan(try tmp.confined("bp"), buildpack: "t/bp@1") }
        #expect(error?.kind == .invalidValue, "\(String(describing: error))")
        #expect(error?.message.contains("is not a valid layer name") == true, "\(String(describing: error))")
        #expect(error?.file?.hasSuffix("/\(name).toml") == true && FileManager.default.fileExists(atPath: bad), "\(String(describing: error))")
    }
}
