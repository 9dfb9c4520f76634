import CrashSafety
import Foundation
import StockadeTestSupport
import Testing

/// A build killed inside the cache save leaves a cache the next build restores without a
/// warning: the old one, or the new one whole, never a mix. The kill lands at a fault point
/// inside the save, so the save had provably begun: new blobs are already in the cache.
@Suite struct CacheKillTests {
    /// A buildpack whose 1 MiB cache layer is made of `$ROUND`, so every round saves new blobs.
    static let buildpack = Images.buildpack("big", build: """
        layer="$CNB_LAYERS_DIR/big"
        if [ "$(cat "$layer/round" 2>/dev/null)" != "$ROUND" ]; then
            rm -rf "$layer"; mkdir -p "$layer"
            head -c 1048576 /dev/zero | tr '\\0' "$ROUND" > "$layer/data"
            printf '%s' "$ROUND" > "$layer/round"
            echo "big: made for round $ROUND"
        else
            echo "big: restored for round $ROUND"
        fi
        printf '[types]\\ncache = true\\n' > "$layer.toml"
        """)

    func arguments(round: String, cache: String, app: String) -> [String] {
        ["build", "--buildpack", Self.buildpack, "--path", app, "--network", "none",
         "--env", "ROUND=\(round)", "--cache-dir", cache]
    }

    /// Killed after the new blobs are in (the old cache stays), or after the tag moved (the new
    /// cache is whole; the old blobs are not yet deleted).
    @Test(arguments: [FaultPoint.cacheBlobsWritten, .cacheTagMoved])
    func aBuildKilledWhileSavingLeavesAUsableCache(point: FaultPoint) throws {
        let fx = Fixture.shared
        let app = fx.makeDirectory("big-app")
        try "x".write(toFile: app + "/f", atomically: true, encoding: .utf8)
        let cache = Images.newPath("big-cache")
        let first = fx.stockade(arguments(round: "a", cache: cache, app: app), as: .suiteUser)
        try #require(first.status == 0 && first.stdout.contains("Cache saved"), "\(first)")
        let blobsBefore = Images.blobs(cache)
        let indexBefore = Images.text(cache + "/index.json")

        let killed = try CrashTests.run(arguments(round: "b", cache: cache, app: app), as: .suiteUser,
                                        environment: ["STOCKADE_FAULT": point.rawValue])
        #expect(killed.status == 128 + SIGKILL, "\(killed)")
        #expect(killed.stderr.contains("stockade: fault point \(point.rawValue): SIGKILL"), "\(killed)")
        // The save had begun: round b's layer is in the cache, and nothing of round a is gone yet.
        let added = Images.blobs(cache).subtracting(blobsBefore)
        #expect(!added.isEmpty && Images.blobs(cache).isSuperset(of: blobsBefore), "\(added)")
        #expect((Images.text(cache + "/index.json") == indexBefore) == (point == .cacheBlobsWritten))

        let next = fx.stockade(arguments(round: "a", cache: cache, app: app), as: .suiteUser)
        #expect(next.status == 0, "\(next)")
        #expect(!next.stdout.contains("warning:") && !next.stderr.contains("warning:"), "\(next)")
        #expect(next.stdout.contains("Restored layer 'test/big:big' from the cache"), "\(next)")
        // Round a's cache survived whole, or round b's was saved whole before the kill.
        let expected = point == .cacheBlobsWritten ? "big: restored for round a" : "big: made for round a"
        #expect(next.stdout.contains(expected), "\(next)")
    }
}
