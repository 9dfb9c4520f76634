import Foundation
import Glibc
import StockadeTestSupport
import Testing

/// What the registry tests share: stockade run with a chosen environment, a run image, a build.
enum Registries {
    static var fx: Fixture { Fixture.shared }

    /// `stockade ARGS` as `invoker` with `environment` set, and a private blob cache (XDG_CACHE_HOME)
    /// and Docker config directory unless given.
    static func stockade(_ args: [String], as invoker: Invoker = .suiteUser, environment: [String: String] = [:]) -> Outcome {
        var env = environment
        if env["XDG_CACHE_HOME"] == nil { env["XDG_CACHE_HOME"] = fx.makeDirectory("xdg-cache", mode: 0o777) }
        if env["DOCKER_CONFIG"] == nil { env["DOCKER_CONFIG"] = fx.makeDirectory("docker-config") }
        let assignments = env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return Fixture.run(invoker.prefix + ["env"] + assignments + [fx.stockade] + args)
    }

    /// A busybox run image made from Debian's busybox-static, as `make example` makes it.
    static func makeRunImage(marker: String) -> String {
        let directory = fx.makeDirectory("run-image-\(marker)") + "/image"
        let made = Fixture.run(["bash", fx.examples + "/make-run-image.sh", directory, "latest", marker])
        precondition(made.status == 0, "make-run-image: \(made)")
        _ = Fixture.run(["chmod", "-R", "a+rX", directory])
        return directory
    }

    static let runImage = makeRunImage(marker: "one")

    /// `stockade build` of the example shell app with the example builder.
    static func build(output: String, runImage: String = Registries.runImage + ":latest", as invoker: Invoker = .suiteUser,
                      extra: [String] = [], environment: [String: String] = [:]) -> Outcome {
        stockade(["build", "--builder", fx.examples + "/builder.toml", "--path", fx.examples + "/apps/shell-app",
                  "--network", "none", "--run-image", runImage, "--output", output] + extra,
                 as: invoker, environment: environment)
    }

    /// Pushes a layout's tag with skopeo (a tool nobody here wrote).
    static func skopeoPush(_ layout: String, to reference: String, credentials: String? = nil) -> Outcome {
        Fixture.run(["skopeo", "copy", "-q", "--dest-tls-verify=false"] + (credentials.map { ["--dest-creds", $0] } ?? [])
                    + ["oci:" + layout, "docker://" + reference])
    }

    /// The example app built once into a layout (`DIR:app`), for tests that need an image to serve.
    static let appLayout: String = {
        let layout = fx.makeDirectory("app-layout") + "/image"
        let built = build(output: layout + ":app")
        precondition(built.status == 0, "build: \(built)")
        _ = Fixture.run(["chmod", "-R", "a+rX", layout])
        return layout + ":app"
    }()

    static let hello = "hello from the shell app; APP_SHA256="

    /// stderr is exactly one `stockade: error:` line.
    static func oneErrorLine(_ outcome: Outcome) -> Bool {
        let lines = outcome.stderr.split(separator: "\n")
        return lines.count == 1 && lines[0].hasPrefix("stockade: error: ")
    }
}
