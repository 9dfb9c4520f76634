import Testing
@testable import BuildpackSpec

@Suite("Names and versions")
struct NamesTests {
    @Test(arguments: [
        ("example/node", true), ("io.buildpacks.ruby", true), ("a", true), ("gcr.io/paketo-buildpacks/node", true),
        ("A-Z.0/9", true), ("", false), ("app", false), ("config", false), ("generated", false), ("sbom", false),
        ("snake_case", true), ("_", true), ("a/_b", true), ("with space", false), ("ünïcode", false), (".", false), ("..", false),
        ("a\u{0}b", false), ("semi;colon", false), ("App", true),
    ])
    func buildpackIDs(id: String, valid: Bool) {
        let failed: SpecError?
        do { try BuildpackID.validate(id, file: "buildpack.toml", keyPath: "buildpack.id"); failed = nil } catch { failed = error }
        #expect((failed == nil) == valid, "\(id.debugDescription): \(String(describing: failed))")
        if let failed {
            #expect(failed.kind == .invalidValue)
            #expect(failed.description.hasPrefix("buildpack.toml: buildpack.id: "))
        }
    }

    @Test(arguments: [
        ("example/node", "example_node"), ("gcr.io/a/b", "gcr.io_a_b"), ("plain", "plain"), ("/lead", "_lead"),
    ])
    func idEscaping(id: String, escaped: String) {
        #expect(BuildpackID.escape(id) == escaped)
    }

    @Test func underscoreIsAcceptedWithAWarningAndItsEscapedCollisionsAreFound() throws {
        // The reference lifecycle's fixtures use "_"; the spec says MUST NOT, hence a warning, not a refusal.
        try BuildpackID.validate("simple_buildpack")
        #expect(BuildpackID.specViolation("simple_buildpack")?.contains("\"simple_buildpack\" contains \"_\"") == true)
        #expect(BuildpackID.specViolation("example/node") == nil)
        // "a/b" and "a_b" share the directory "a_b": never both in one store.
        #expect(BuildpackID.escapedCollision("a/b", "a_b"))
        #expect(!BuildpackID.escapedCollision("a_b", "a_b"))
        #expect(!BuildpackID.escapedCollision("a/b", "a-b"))
        #expect(BuildpackID.collide("Example/Node", "example/node"))
    }

    @Test(arguments: [
        ("0.7", true), ("0.8", true), ("0.9", true), ("0.10", true), ("0.11", true), ("0.12", true),
        ("0.6", false), ("0.13", false), ("1", false), ("1.0", false), ("0.1", false), ("0.07", true),
        ("", false), ("0.", false), (".7", false), ("0.7.1", false), ("v0.7", false), (" 0.7", false),
        ("-0.7", false), ("0.x", false), ("99999999999999999999999.1", false),
    ])
    func buildpackAPIRange(text: String, supported: Bool) {
        do {
            let version = try APIVersion.buildpackAPI(text, file: "buildpack.toml")
            #expect(supported, "\(text) should be unsupported, got \(version)")
        } catch {
            #expect(!supported, "\(text): \(error)")
            #expect(error.kind == .unsupportedBuildpackAPI)
            #expect(error.keyPath == "api")
        }
    }

    @Test func apiVersionsCompareNumerically() throws {
        #expect(APIVersion("0.10")! > APIVersion("0.9")!)
        #expect(APIVersion("1")! == APIVersion(1, 0))
        #expect(APIVersion("0.12")!.description == "0.12")
        #expect(APIVersion.supportedBuildpackAPIs.contains(APIVersion(0, 10)))
        #expect(throws: SpecError.self) { try APIVersion.platformAPI("0.16") }
        #expect(try APIVersion.platformAPI("0.15") == APIVersion(0, 15))
        #expect((try? APIVersion.platformAPI("0.6"))  == nil)
    }

    @Test(arguments: [
        ("node", true), ("node-modules", true), ("with.dots", true), ("foo.ignore", true), ("launchpad", true),
        ("", false), (".", false), ("..", false), ("../x", false), ("a/b", false), ("a\u{0}b", false),
        ("launch", false), ("build", false), ("store", false),
    ])
    func layerNames(name: String, valid: Bool) {
        do {
            try LayerName.validate(name, file: "layers/bp/x.toml", buildpack: "bp@1")
            #expect(valid, "\(name.debugDescription) should be invalid")
        } catch {
            #expect(!valid, "\(name.debugDescription): \(error)")
            #expect(error.buildpack == "bp@1")
            #expect(error.file == "layers/bp/x.toml")
        }
    }

    @Test(arguments: [
        ("node.toml", "node"), ("..toml", "."), ("...toml", ".."), (".toml", ""), ("launch.toml", "launch"),
        ("a.b.toml", "a.b"),
    ])
    func layerNamesFromMetadataFiles(fileName: String, layer: String) {
        #expect(LayerName.fromMetadataFileName(fileName) == layer)
    }

    @Test func nonTomlFilesNameNoLayer() {
        #expect(LayerName.fromMetadataFileName("node") == nil)
        #expect(LayerName.fromMetadataFileName("node.sbom.cdx.json") == nil)
    }

    @Test(arguments: [
        ("web", true), ("process.with.period", true), ("worker_1", true), ("a-b", true),
        ("", false), (".", false), ("..", false), ("we/b", false), ("a b", false), ("a:b", false), ("a|b", false),
        ("x>y", false),
    ])
    func processTypes(type: String, valid: Bool) {
        let ok = (try? { () throws(SpecError) in try ProcessType.validate(type) }()) != nil
        #expect(ok == valid, "\(type.debugDescription)")
    }

    @Test func aBadNameSaysWhatItIsAndWhichCharactersAreAllowed() {
        func message(_ check: () throws(SpecError) -> Void) -> String? {
            do { try check(); return nil } catch { return error.message }
        }
        #expect(message { () throws(SpecError) in try BuildpackID.validate("a b") }
            == "\"a b\" is not a valid buildpack ID: only letters, digits, \".\", \"/\", \"-\" and \"_\" are allowed")
        #expect(message { () throws(SpecError) in try ProcessType.validate("a/b") }
            == "\"a/b\" is not a valid process type: only letters, digits, \".\", \"_\" and \"-\" are allowed")
        #expect(message { () throws(SpecError) in try ProcessType.validate("") } == "\"\" is not a valid process type: it is empty")
        #expect(message { () throws(SpecError) in try BuildpackID.validate("app") } == "\"app\" is not a valid buildpack ID: it is reserved")
    }

    @Test func versionsArePathSafe() {
        #expect(BuildpackVersion.isSemantic("1.2.3"))
        #expect(BuildpackVersion.isSemantic("0.0.10"))
        #expect(!BuildpackVersion.isSemantic("01.2.3"))
        #expect(!BuildpackVersion.isSemantic("1.2"))
        for bad in ["", ".", "..", "1/2", "a\u{0}"] {
            #expect(throws: SpecError.self, "\(bad.debugDescription)") { try BuildpackVersion.validate(bad) }
        }
        #expect(throws: Never.self) { try BuildpackVersion.validate("simple_buildpack_version") }
    }
}
