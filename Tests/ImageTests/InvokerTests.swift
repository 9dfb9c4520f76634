import Foundation
import StockadeTestSupport
import Testing

/// Every invoker gets an image of what its buildpacks wrote, private files included, and runs it:
/// with a subordinate range the invoker cannot read the stack user's 0600 files, in the layers
/// and in the app, until the stack user opens them from inside a sandbox.
@Suite struct InvokerTests {
    static let runImage: String = {
        let dir = Fixture.shared.makeDirectory("invoker-run") + "/run"
        let made = Fixture.run(["bash", Fixture.shared.examples + "/make-run-image.sh", dir])
        precondition(made.status == 0, "\(made)")
        _ = Fixture.run(["chmod", "-R", "a+rX", dir])
        return dir
    }()

    static let privateBuildpack = Images.buildpack("private", build: """
        mkdir -p "$CNB_LAYERS_DIR/secret/inner"
        echo "private to the stack user" > "$CNB_LAYERS_DIR/secret/inner/key"
        chmod 600 "$CNB_LAYERS_DIR/secret/inner/key"
        chmod 700 "$CNB_LAYERS_DIR/secret/inner"
        mkdir -p kept && echo "private in the app" > kept/note && chmod 600 kept/note && chmod 700 kept
        printf '[types]\\nlaunch = true\\n' > "$CNB_LAYERS_DIR/secret.toml"
        printf '[[processes]]\\ntype = "web"\\ncommand = ["/bin/cat", "/layers/test_private/secret/inner/key", "/workspace/kept/note"]\\ndefault = true\\n' \\
            > "$CNB_LAYERS_DIR/launch.toml"
        """)

    @Test(arguments: Invoker.all)
    func privateLayerFilesAreExportedAndRun(as invoker: Invoker) throws {
        try invoker.requireAvailable()
        let fixture = Fixture.shared
        let app = fixture.makeDirectory("private-app")
        try "x".write(toFile: app + "/f", atomically: true, encoding: .utf8)
        let output = fixture.makeDirectory("private-out", mode: 0o777) + "/image"
        let built = fixture.stockade(["build", "--buildpack", Self.privateBuildpack, "--path", app, "--network", "none",
                                      "--run-image", Self.runImage, "--output", output + ":private"], as: invoker)
        #expect(built.status == 0, "\(built)")
        #expect(built.stdout.contains("Adding layer 'test/private:secret'"), "\(built)")
        let ran = fixture.stockade(["run", output + ":private"], as: invoker)
        #expect(ran.status == 0, "\(ran)")
        #expect(ran.stdout == "private to the stack user\nprivate in the app\n", "\(ran)")
    }
}
