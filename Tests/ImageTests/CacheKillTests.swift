import Foundation
import StockadeTestSupport
import Testing

/// A build killed while it saves the cache leaves a cache the next build restores without a
/// warning: the old one, or the new one whole, never a mix.
@Suite struct CacheKillTests {
    /// A buildpack whose 32 MiB cache layer is made of `$ROUND`, so every round saves new blobs.
    static let buildpack = Images.buildpack("big", build: """
        layer="$CNB_LAYERS_DIR/big"
        if [ "$(cat "$layer/round" 2>/dev/null)" != "$ROUND" ]; then
            rm -rf "$layer"; mkdir -p "$layer"
            head -c 33554432 /dev/zero | tr '\\0' "$ROUND" > "$layer/data"
            printf '%s' "$ROUND" > "$layer/round"
            echo "big: made for round $ROUND"
        else
            echo "big: restored for round $ROUND"
        fi
        printf '[types]\\ncache = true\\n' > "$layer.toml"
        """)

    func arguments(round: String, cache: String, app: String) -> [String] {
        [Fixture.shared.stockade, "build", "--buildpack", Self.buildpack, "--path", app, "--network", "none",
         "--env", "ROUND=\(round)", "--cache-dir", cache]
    }

    /// Each round kills at another point of the save (microseconds after the build ended).
    @Test(arguments: [("b", 0), ("c", 20_000), ("d", 60_000)])
    func aBuildKilledWhileSavingLeavesAUsableCache(round: String, delay: UInt32) throws {
        let app = Fixture.shared.makeDirectory("big-app")
        try "x".write(toFile: app + "/f", atomically: true, encoding: .utf8)
        let cache = Images.newPath("big-cache")
        let first = Fixture.run(arguments(round: "a", cache: cache, app: app))
        try #require(first.status == 0 && first.stdout.contains("Cache saved"), "\(first)")

        // Killed once the build is over (its processes are listed): the save of the new cache is under way.
        let out = Fixture.shared.dir + "/kill-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: out, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments(round: round, cache: cache, app: app)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").contains("===> PROCESSES") {
            usleep(500)
        }
        usleep(delay)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()

        let next = Fixture.run(arguments(round: "a", cache: cache, app: app))
        #expect(next.status == 0, "\(next)")
        #expect(!next.stdout.contains("warning:"), "\(next)")
        #expect(next.stdout.contains("Restored layer 'test/big:big' from the cache"), "\(next)")
        // Round a's cache survived, or round \(round)'s was saved whole before the kill.
        #expect(next.stdout.contains("big: restored for round a") || next.stdout.contains("big: made for round a"), "\(next)")
    }
}
