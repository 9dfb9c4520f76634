import Foundation
import StockadeTestSupport
import Testing

/// `[[slices]]`: each slice is an app layer of its own, a file goes to the first slice that
/// matches it, and the rest of the app is the last layer.
@Suite struct SliceTests {
    @Test func slicesBecomeTheirOwnAppLayers() throws {
        let fixture = Fixture.shared
        let (layers, app) = FullDiskTests.layers(size: 16)
        let metadata = layers + "/config/metadata.toml"
        try (String(contentsOfFile: metadata, encoding: .utf8) + """

            [[slices]]
            paths = ["public/*.css", "static"]
            [[slices]]
            paths = ["public/*"]
            """).write(toFile: metadata, atomically: true, encoding: .utf8)
        let fm = FileManager.default
        try fm.createDirectory(atPath: app + "/public", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: app + "/static/img", withIntermediateDirectories: true)
        for file in ["public/site.css", "public/index.html", "static/img/logo.svg", "main.sh"] {
            try file.write(toFile: app + "/" + file, atomically: true, encoding: .utf8)
        }
        let output = fixture.makeDirectory("slices") + "/images"
        let exported = fixture.stockade(["export", "--layers", layers, "--app", app, "--output", output + ":app"], as: .suiteUser)
        #expect(exported.status == 0, "\(exported)")

        // The lifecycle label lists the app layers in order; read each tar with python's tarfile.
        let script = """
            import json, sys, tarfile
            out = sys.argv[1]
            index = json.load(open(out + "/index.json"))
            blob = lambda d: out + "/blobs/sha256/" + d.split(":")[1]
            manifest = json.load(open(blob(index["manifests"][0]["digest"])))
            config = json.load(open(blob(manifest["config"]["digest"])))
            label = json.loads(config["config"]["Labels"]["io.buildpacks.lifecycle.metadata"])
            for app in label["app"]:
                names = sorted(m.name for m in tarfile.open(blob(app["sha"])).getmembers() if not m.isdir())
                print(" ".join(names))
            """
        let listed = Fixture.run(["python3", "-c", script, output])
        #expect(listed.status == 0, "\(listed)")
        #expect(listed.lines == [
            "workspace/public/site.css workspace/static/img/logo.svg",
            "workspace/public/index.html",
            "workspace/app.sh workspace/main.sh",
        ], "\(listed)")
    }
}
