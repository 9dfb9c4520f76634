import Foundation
import Glibc
import StockadeTestSupport
import Testing

/// A registry that lies (Tests/Fixtures/hostile-registry.py): every lie is refused with one line
/// and its own exit code; the honest control runs.
@Suite(.timeLimit(.minutes(5))) struct HostileRegistryTests {
    func pull(_ registry: HostileRegistry, as invoker: Invoker = .suiteUser, environment: [String: String] = [:]) -> Outcome {
        Registries.stockade(["run", "\(registry.host)/app:1", "--insecure-registry", registry.host], as: invoker,
                            environment: environment)
    }

    @Test(arguments: Invoker.all)
    func theHonestServerRuns(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let registry = try HostileRegistry("ok")
        let ran = pull(registry, as: invoker)
        #expect(ran.status == 0, "\(ran)")
        #expect(ran.stdout.contains("served-ok"), "\(ran)")
    }

    @Test(arguments: [
        ("blob-mismatch", 83, "hashing to"),
        ("announced-wrong", 83, "announced"),
        ("huge-manifest", 85, "more than"),
        ("long-index", 85, "10000 manifests"),
        ("cycle", 84, "nested indexes are not followed"),
        ("unsupported", 84, "application/vnd.example.weird"),
        ("refuse", 81, "no credential found"),
        ("bearer", 81, "refused access"),
    ] as [(String, Int32, String)])
    func liesAreRefusedWithOneLine(_ mode: String, _ status: Int32, _ text: String) throws {
        let registry = try HostileRegistry(mode)
        let cache = Registries.fx.makeDirectory("xdg-cache", mode: 0o777)
        let outcome = pull(registry, environment: ["XDG_CACHE_HOME": cache])
        #expect(outcome.status == status, "\(mode): \(outcome)")
        #expect(Registries.oneErrorLine(outcome), "\(mode): \(outcome.stderr)")
        #expect(outcome.stderr.contains(text), "\(mode): \(outcome.stderr)")
        if mode == "blob-mismatch" {
            // The bytes that did not match are not kept under any name.
            let blobs = (try? FileManager.default.contentsOfDirectory(atPath: cache + "/stockade/blobs/blobs/sha256")) ?? []
            for blob in blobs {
                let data = FileManager.default.contents(atPath: cache + "/stockade/blobs/blobs/sha256/" + blob) ?? Data()
                #expect(data.count < 100_000, "a layer-sized blob \(blob) was kept")
            }
        }
    }

    @Test func fiveHundredTwiceIsRetried() throws {
        let registry = try HostileRegistry("flaky")
        let ran = pull(registry)
        #expect(ran.status == 0, "\(ran)")
        #expect(ran.stdout.contains("served-ok"), "\(ran)")
        #expect(registry.requests.filter { $0.hasPrefix("GET /v2/app/manifests/1") }.count == 3, "\(registry.requests)")
    }

    @Test func bearerTokensAreFetchedWithTheCredential() throws {
        let registry = try HostileRegistry("bearer")
        let config = Registries.fx.makeDirectory("docker-config")
        // user:pass
        try #"{"auths":{"\#(registry.host)":{"auth":"dXNlcjpwYXNz"}}}"#.write(toFile: config + "/config.json", atomically: true, encoding: .utf8)
        chmod(config + "/config.json", 0o644)
        let ran = pull(registry, environment: ["DOCKER_CONFIG": config])
        #expect(ran.status == 0, "\(ran)")
        #expect(ran.stdout.contains("served-ok"), "\(ran)")
        #expect(registry.requests.contains { $0.hasPrefix("GET /token?service=hostile&scope=repository%3Aapp%3Apull") }, "\(registry.requests)")
    }
}
