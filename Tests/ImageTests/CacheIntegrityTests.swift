import Foundation
import StockadeTestSupport
import Testing

/// A restored cache layer is reused by digest only when its files are provably the ones restored:
/// one rewritten in place, same size and inode, its mtime put back with `touch -r`, is archived
/// again, so the image and the cache hold what the buildpack left.
@Suite struct CacheIntegrityTests {
    let fx = Fixture.shared

    /// A launch and cache layer `data` holding `file`: written the first time, then restored; with
    /// MODE=rewrite its bytes are replaced in place and its mtime set back.
    static let buildpack = Images.buildpack("cached", build: """
        layer="$CNB_LAYERS_DIR/data"
        printf '[types]\\nlaunch = true\\ncache = true\\n' > "$layer.toml"
        if [ -f "$layer/file" ]; then
            echo "restored: $(cat "$layer/file")"
            if [ "${MODE:-}" = rewrite ]; then
                touch -r "$layer/file" /tmp/mtime
                printf 'new bytes 2' 1<> "$layer/file"
                # With a subordinate range the restored file is the invoker's: its times are not the stack user's to set.
                touch -r /tmp/mtime "$layer/file" || echo "mtime kept as it was"
            fi
        else
            mkdir -p "$layer"
            printf 'old bytes 1' > "$layer/file"
        fi
        """)

    /// The contents of `member` in the layers of `layout:tag`, read with Python's tarfile.
    static func contents(of member: String, in layout: String, tag: String) -> [String] {
        let script = """
            import json, sys, tarfile
            layout, tag, member = sys.argv[1:4]
            index = json.load(open(layout + "/index.json"))
            digest = [m["digest"] for m in index["manifests"]
                      if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][0]
            blob = lambda d: layout + "/blobs/" + d.replace(":", "/")
            for layer in json.load(open(blob(digest)))["layers"]:
                with tarfile.open(blob(layer["digest"])) as tar:
                    for entry in tar:
                        if entry.name == member: print(tar.extractfile(entry).read().decode())
            """
        let read = Fixture.run(["python3", "-c", script, layout, tag, member])
        return read.stdout.split(separator: "\n").map(String.init)
    }

    @Test(arguments: Invoker.all)
    func aLayerRewrittenInPlaceIsNotTheCachedOne(as invoker: Invoker) throws {
        let app = fx.makeDirectory("integrity-app")
        try "x".write(toFile: app + "/f", atomically: true, encoding: .utf8)
        let output = Images.newPath("integrity-out"), cache = Images.newPath("integrity-cache")
        func build(_ extra: [String]) -> Outcome {
            fx.stockade(["build", "--buildpack", Self.buildpack, "--path", app, "--network", "none",
                         "--output", output + ":app", "--cache-dir", cache] + extra, as: invoker)
        }
        let member = "layers/test_cached/data/file"
        let first = build([])
        try #require(first.status == 0, "\(first)")
        #expect(Self.contents(of: member, in: output, tag: "app") == ["old bytes 1"])

        // The control: left alone, the restored layer is the cached blob, by digest.
        let same = build([])
        try #require(same.status == 0, "\(same)")
        #expect(same.stdout.contains("restored: old bytes 1"), "\(same)")
        #expect(same.stdout.contains("Reusing layer 'test/cached:data' ("), "\(same)")

        let rewritten = build(["--env", "MODE=rewrite"])
        try #require(rewritten.status == 0, "\(rewritten)")
        #expect(rewritten.stdout.contains("restored: old bytes 1"), "\(rewritten)")
        #expect(!rewritten.stdout.contains("Reusing layer 'test/cached:data'"), "\(rewritten)")
        #expect(Self.contents(of: member, in: output, tag: "app") == ["new bytes 2"])
        #expect(Self.contents(of: member, in: cache, tag: "cache") == ["new bytes 2"])
    }
}
