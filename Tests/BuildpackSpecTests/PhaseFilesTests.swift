import BuildpackSpec
import Testing

/// The files the phases hand each other, written and read back; the reference's spellings read.
@Suite struct PhaseFilesTests {
    @Test func analyzedRoundTrips() throws {
        var metadata = TOMLTable()
        metadata["app"] = .array([.table(TOMLTable(["sha": .string("sha256:aa")]))])
        let analyzed = AnalyzedTOML(
            previousImage: "/oci/index.docker.io/library/app/latest@sha256:bb", metadata: metadata,
            runImage: .init(image: "run", reference: "/oci/run@sha256:cc",
                            target: TargetPlatform(os: "linux", arch: "amd64", archVariant: "v3", distro: Distro(name: "debian", version: "12"))),
            buildImage: "builder")
        let text = analyzed.rendered()
        #expect(try AnalyzedTOML(parsing: text) == analyzed, "\(text)")
        for line in ["[image]\nreference = ", "[run-image.target]\narch = \"amd64\"\narch-variant = \"v3\"", "[run-image.target.distro]",
                     "[build-image]\nreference = \"builder\""] {
            #expect(text.contains(line), "\(text)")
        }
    }

    /// The builder acceptance fixture's analyzed.toml: a target without a reference.
    @Test func analyzedWithATargetOnly() throws {
        let analyzed = try AnalyzedTOML(parsing: "[run-image.target]\n  id = \"my id\"\n  os = \"linux\"\n  arch = \"amd64\"\n  arch-variant = \"some-variant\"\n")
        #expect(analyzed.previousImage == nil)
        #expect(analyzed.runImage?.target == TargetPlatform(os: "linux", arch: "amd64", archVariant: "some-variant"))
    }

    @Test func reportHasTheReferenceKeys() throws {
        let report = ReportTOML(tags: ["app", "app:v1"], digest: "sha256:dd", manifestSize: 1454)
        #expect(report.rendered() == "[image]\ndigest = \"sha256:dd\"\nmanifest-size = 1454\ntags = [\"app\", \"app:v1\"]\n")
        #expect(try ReportTOML(parsing: report.rendered()) == report)
    }

    @Test func projectMetadataAndRunTOML() throws {
        let project = try ProjectMetadataTOML(parsing: "[source]\ntype = \"git\"\n[source.version]\ncommit = \"abc\"\n")
        #expect(project.source?["type"]?.stringValue == "git")
        #expect(try ProjectMetadataTOML(parsing: project.rendered()) == project)
        let run = try RunTOML(parsing: "[[images]]\nimage = \"a\"\nmirrors = [\"b\"]\n[[images]]\nimage = \"c\"\n")
        #expect(run.images.map(\.image) == ["a", "c"] && run.images[0].mirrors == ["b"])
        let stack = try StackTOML(parsing: "[run-image]\nimage = \"legacy\"\n")
        #expect(stack.runImage?.image == "legacy")
    }
}
