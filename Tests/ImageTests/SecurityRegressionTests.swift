import Foundation
import StockadeTestSupport
import Testing

/// What the security review showed, each finding as it was shown: a hostile cache, previous
/// image or run image layer, and what stockade must do with it. Every test here failed before
/// "Close what the security review found in restore, layouts and extraction".
@Suite struct SecurityRegressionTests {
    let fx = Fixture.shared

    // MARK: - helpers

    /// Lines of a build's output that start with `warning:`.
    static func warnings(_ outcome: Outcome) -> [String] {
        (outcome.stdout + "\n" + outcome.stderr).split(separator: "\n").map(String.init).filter { $0.hasPrefix("warning:") }
    }

    /// Runs a Python script with `arguments`, requiring it to succeed; returns its stdout.
    @discardableResult
    static func python(_ script: String, _ arguments: [String]) throws -> String {
        let ran = Fixture.run(["python3", "-c", script] + arguments)
        try #require(ran.status == 0, "python: \(ran)")
        return ran.stdout
    }

    func run(_ layout: String) -> Outcome {
        fx.stockade(["run", layout + ":latest"], as: .suiteUser)
    }

    /// Writes a cache layout (`--cache-dir`) at `cache` whose image tagged `cache` has one layer,
    /// the tar `tar` builds (a Python function body over `tar`, `d(name)` and `f(name, bytes, mode)`),
    /// listed in the metadata label as examples/shell's cache and launch layer `layer`.
    static func cache(at cache: String, layer: String, data: [String: String] = [:], tar: String) throws {
        let script = """
            import hashlib, io, json, os, sys, tarfile
            out, name, data, body = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
            os.makedirs(out + "/blobs/sha256", exist_ok=True)
            def blob(b):
                d = hashlib.sha256(b).hexdigest(); open(out + "/blobs/sha256/" + d, "wb").write(b)
                return {"digest": "sha256:" + d, "size": len(b)}
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
                def d(n):
                    i = tarfile.TarInfo(n); i.type, i.mode = tarfile.DIRTYPE, 0o755; tar.addfile(i)
                def f(n, b, mode=0o644):
                    i = tarfile.TarInfo(n); i.size, i.mode = len(b), mode; tar.addfile(i, io.BytesIO(b))
                exec(body)
            layer = dict(blob(buf.getvalue()), mediaType="application/vnd.oci.image.layer.v1.tar")
            meta = {"buildpacks": [{"key": "examples/shell", "version": "0.1.0",
                    "layers": {name: {"sha": layer["digest"], "data": data, "build": False, "launch": True, "cache": True}}}]}
            config = {"architecture": "amd64", "os": "linux",
                      "config": {"Labels": {"io.stockade.cache.metadata": json.dumps(meta)}},
                      "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}
            c = dict(blob(json.dumps(config).encode()), mediaType="application/vnd.oci.image.config.v1+json")
            m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": [layer]}
            md = dict(blob(json.dumps(m).encode()), mediaType="application/vnd.oci.image.manifest.v1+json",
                      annotations={"org.opencontainers.image.ref.name": "cache"})
            json.dump({"schemaVersion": 2, "manifests": [md]}, open(out + "/index.json", "w"))
            open(out + "/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
            """
        let json = String(decoding: try JSONSerialization.data(withJSONObject: data), as: UTF8.self)
        try python(script, [cache, layer, json, tar])
        _ = Fixture.run(["chmod", "-R", "a+rX", cache])
    }

    // MARK: - the cache (repro-cache-escape.sh, repro-poisoned-cache.sh, repro-cache-blobs-symlink.sh)

    /// A cached tar holding layers/examples_shell as a link to a host directory: the restore
    /// moved that directory's `secret` into the layers (chowned to the stack user) and the end of
    /// the build deleted it.
    @Test func aCachedLinkDoesNotMoveAHostDirectory() throws {
        let victim = fx.makeDirectory("victim")
        let fm = FileManager.default
        try fm.createDirectory(atPath: victim + "/secret", withIntermediateDirectories: true)
        try "host secret\n".write(toFile: victim + "/secret/id_rsa", atomically: true, encoding: .utf8)
        chmod(victim + "/secret/id_rsa", 0o600)
        let owners = (fx.owner(of: victim + "/secret"), fx.owner(of: victim + "/secret/id_rsa"))
        let cache = Images.newPath("escape-cache")
        try Self.cache(at: cache, layer: "secret", tar: """
            d("layers")
            i = tarfile.TarInfo("layers/examples_shell"); i.type, i.linkname = tarfile.SYMTYPE, "\(victim)"
            tar.addfile(i)
            """)

        let built = Images.build(output: Images.newPath("escape-out"), cache: cache)
        #expect(built.status == 0, "\(built)")
        let warnings = Self.warnings(built)
        #expect(warnings.contains { $0.contains("examples/shell:secret") }, "\(built)")
        #expect(!built.stdout.contains("Restored layer 'examples/shell:secret'"), "\(built)")
        // The host directory is where it was, as it was.
        #expect(Images.text(victim + "/secret/id_rsa") == "host secret\n", "\(built)")
        #expect(fx.owner(of: victim + "/secret") == owners.0 && fx.owner(of: victim + "/secret/id_rsa") == owners.1)
        #expect((try? fm.contentsOfDirectory(atPath: victim)) == ["secret"])
        #expect((try? fm.contentsOfDirectory(atPath: victim + "/secret")) == ["id_rsa"])
    }

    /// The tools layer of a real cache, its tar with entries appended (a file in /etc, a whiteout
    /// of /etc/passwd) and the cache's documents pointed at the new blob: every file the layer
    /// should hold is there, byte for byte, so only the extra entries can tell. The blob was
    /// reused by digest, the extra entries with it.
    @Test func aCachedBlobWithExtraEntriesIsRebuilt() throws {
        let cache = Images.newPath("poisoned-cache")
        let first = Images.build(output: Images.newPath("poisoned-first"), cache: cache)
        try #require(first.status == 0 && first.stdout.contains("Cache saved to"), "\(first)")
        let appended = try Self.python("""
            import hashlib, io, json, sys, tarfile
            lay = sys.argv[1]
            path = lambda d: f"{lay}/blobs/sha256/{d[7:]}"
            def write(b):
                d = "sha256:" + hashlib.sha256(b).hexdigest(); open(path(d), "wb").write(b); return d, len(b)
            idx = json.load(open(lay + "/index.json"))
            md = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "cache"][0]
            man = json.load(open(path(md["digest"])))
            config = open(path(man["config"]["digest"])).read()
            meta = json.loads(json.loads(config)["config"]["Labels"]["io.stockade.cache.metadata"])
            old = [bp for bp in meta["buildpacks"] if bp["key"] == "examples/shell"][0]["layers"]["tools"]["sha"]
            original = open(path(old), "rb").read()
            with tarfile.open(path(old), "a") as tar:
                kept = tar.offset
                for name, data in [("etc/evil", b"planted by the cache\\n"), ("etc/.wh.passwd", b"")]:
                    i = tarfile.TarInfo(name); i.size, i.mtime = len(data), 315532801; tar.addfile(i, io.BytesIO(data))
            poisoned = open(path(old), "rb").read()
            open(path(old), "wb").write(original)
            assert poisoned[:kept] == original[:kept] and kept > 0
            new, size = write(poisoned)
            for layer in man["layers"]:
                if layer["digest"] == old: layer["digest"], layer["size"] = new, size
            man["config"]["digest"], man["config"]["size"] = write(config.replace(old, new).encode())
            md["digest"], md["size"] = write(json.dumps(man).encode())
            json.dump(idx, open(lay + "/index.json", "w"))
            print(old, new, len(original), len(poisoned))
            """, [cache])
        let fields = appended.split(separator: " ").map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
        try #require(fields.count == 4 && fields[0] != fields[1], "\(appended)")
        _ = Fixture.run(["chmod", "-R", "a+rX", cache])

        let output = Images.newPath("poisoned-out")
        let built = Images.build(output: output, cache: cache)
        try #require(built.status == 0, "\(built)")
        #expect(Self.warnings(built).contains { $0.contains("examples/shell:tools") }, "\(built)")
        #expect(built.stdout.contains("[examples/shell] shell: tools made"), "\(built)")
        #expect(!built.stdout.contains("Restored layer 'examples/shell:tools'"), "\(built)")
        let layers = Images.layerDigests(output)
        try #require(!layers.isEmpty)
        #expect(!layers.contains(fields[1]), "the poisoned blob is in the image")
        for digest in layers {
            let entries = try #require(Images.tarEntries(Images.blobPath(output, digest)), "\(digest)")
            for entry in entries {
                #expect(!entry.name.hasPrefix("etc/evil"), "\(digest): \(entry.name)")
                #expect(!entry.name.split(separator: "/").contains { $0.hasPrefix(".wh.") }, "\(digest): \(entry.name)")
            }
        }
        // Rebuilt, the image is the one a clean build makes.
        #expect(layers == Images.layerDigests(try Images.sharedImage()))
        let shout = fx.stockade(["run", output + ":app", "--process", "shout", "--", "ok"], as: .suiteUser)
        #expect(shout.status == 0 && shout.stdout == "OK\n", "\(shout)")
    }

    /// A cache whose `blobs` is a link to another directory: the save wrote its blobs there and
    /// deleted every other file there with a 64-character name.
    @Test func aCacheWhoseBlobsIsALinkIsNotWrittenThrough() throws {
        let base = fx.makeDirectory("blobs-link")
        let target = base + "/target", cache = base + "/cache"
        let victim = "0123456789012345678901234567890123456789012345678901234567890123"
        let fm = FileManager.default
        try fm.createDirectory(atPath: target + "/sha256", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: cache, withIntermediateDirectories: true)
        try "host file\n".write(toFile: target + "/sha256/" + victim, atomically: true, encoding: .utf8)
        try fm.createSymbolicLink(atPath: cache + "/blobs", withDestinationPath: target)
        try #"{"imageLayoutVersion":"1.0.0"}"#.write(toFile: cache + "/oci-layout", atomically: true, encoding: .utf8)
        try #"{"schemaVersion":2,"manifests":[]}"#.write(toFile: cache + "/index.json", atomically: true, encoding: .utf8)
        _ = Fixture.run(["chmod", "-R", "a+rwX", base])

        let built = Images.build(output: Images.newPath("blobs-link-out"), cache: cache)
        // A damaged cache: a warning, a build that goes on, and a cache made afresh. The link
        // itself is replaced by a directory; nothing goes through it.
        #expect(built.status == 0, "\(built)")
        #expect(Self.warnings(built).contains { $0.contains(cache) }, "\(built)")
        #expect(built.stdout.contains("Cache saved to"), "\(built)")
        #expect(Images.text(target + "/sha256/" + victim) == "host file\n", "\(built)")
        #expect((try? fm.contentsOfDirectory(atPath: target + "/sha256")) == [victim], "\(built)")
        #expect((try? fm.contentsOfDirectory(atPath: target)) == ["sha256"], "\(built)")
        #expect((try? fm.destinationOfSymbolicLink(atPath: cache + "/blobs")) == nil)
        let again = Images.build(output: Images.newPath("blobs-link-again"), cache: cache)
        #expect(again.status == 0 && again.stdout.contains("Restored layer 'examples/shell:tools'"), "\(again)")
    }

    // MARK: - extraction (repro-hardlink.sh, repro-opaque-mode.sh, probe-extract.sh, repro-deep-quadratic.sh)

    /// Prints the link's contents, then `same` when it and the target are one inode.
    static func sameInode(_ target: String, _ link: String) -> String {
        "cat \(link); set -- $(ls -i \(target)); a=$1; set -- $(ls -i \(link)); echo inodes $a $1; [ \"$a\" = \"$1\" ] && echo same"
    }

    /// Hard links whose target lies in another directory (ordinary in real images) used a
    /// descriptor the directory cache had just closed.
    @Test(arguments: [
        ("A", [["x/f", "file", "hello\n"], ["y/l", "hardlink", "x/f"]], "/x/f", "/y/l"),
        ("B", [["p/q/f", "file", "hello\n"], ["r/s/f", "hardlink", "p/q/f"]], "/p/q/f", "/r/s/f"),
        ("C", [["f", "file", "hello\n"], ["d/e/l", "hardlink", "f"]], "/f", "/d/e/l"),
    ])
    func hardLinksIntoOtherDirectoriesAreLinks(_ label: String, _ entries: [[String]], _ target: String, _ link: String) throws {
        let ran = run(try Images.craftedLayout(entries, command: Self.sameInode(target, link)))
        #expect(ran.status == 0, "case \(label): \(ran)")
        #expect(ran.stdout.hasPrefix("hello\ninodes ") && ran.stdout.hasSuffix("\nsame\n"), "case \(label): \(ran)")
    }

    /// An opaque whiteout as docker writes it (the directory, its .wh..wh..opq, new contents),
    /// for an image that runs as user 1000: the directory stayed 0700, and unreadable.
    @Test func anOpaqueWhiteoutKeepsItsDirectorysMode() throws {
        let layout = try Images.craftedLayout([["data", "dir", ""], ["data/.wh..wh..opq", "file", ""], ["data/new", "file", "new\n"]],
                                     command: "ls -ld /data; ls /data; cat /data/new", user: "1000:1000")
        let ran = run(layout)
        #expect(ran.status == 0, "\(ran)")
        #expect(ran.lines.first?.hasPrefix("drwxr-xr-x ") == true, "\(ran)")
        #expect(Array(ran.lines.dropFirst()) == ["new", "new"], "\(ran)")
    }

    /// probe-extract.sh 7 and 8: whiteouts hide what lower layers wrote, not what the same layer
    /// wrote before them.
    @Test func whiteoutsSpareWhatTheirOwnLayerWrote() throws {
        let opaque = run(try Images.craftedLayout([["data/new", "file", "n"], ["data/.wh..wh..opq", "file", ""]],
                                         command: "ls /data; cat /data/new"))
        #expect(opaque.status == 0 && opaque.stdout == "new\nn", "\(opaque)")
        let named = run(try Images.craftedLayout([["data/new", "file", "n"], ["data/.wh.new", "file", ""]],
                                        command: "ls /data; cat /data/new"))
        #expect(named.status == 0 && named.stdout == "new\nsub\nn", "\(named)")
        // A whiteout of what a lower layer wrote still removes it.
        let lower = run(try Images.craftedLayout([["data/.wh.sub", "file", ""], ["data/new", "file", "n"]], command: "ls /data"))
        #expect(lower.status == 0 && lower.stdout == "new\n", "\(lower)")
    }

    /// Deep paths, alternating between two sibling directories (each entry's parent resolved
    /// component by component from the root, before the fix): all extracted, where they belong,
    /// at a cost linear in the entries. The bound is on work, not time: strace counts the
    /// syscalls of the whole run, and the control is the same entries grouped by directory, an
    /// order that any cache of the last directory serves. Each alternation may cost a few calls
    /// more; before the fix it cost one per component. (The count uses a shallower tree, 500
    /// deep, so that a regression, traced, still ends in a minute.)
    @Test func deepPathsAlternatingBetweenDirectoriesExtract() throws {
        func entries(depth: Int, count: Int) -> [[String]] {
            let deep = Array(repeating: "a", count: depth).joined(separator: "/")
            return (0..<count).map { [deep + ($0 % 2 == 1 ? "/b" : "/c") + "/f\($0)", "file", "\($0)"] }
        }
        let alternating = entries(depth: 500, count: 100)
        let grouped = alternating.filter { $0[0].contains("/b/") } + alternating.filter { $0[0].contains("/c/") }
        let control = try Self.syscalls(of: ["run", try Images.craftedLayout(grouped, command: "true") + ":latest"])
        let measured = try Self.syscalls(of: ["run", try Images.craftedLayout(alternating, command: "true") + ":latest"])
        // Required: past a regression, the 2000-deep run below would take minutes.
        try #require(measured <= control + 20 * alternating.count,
                     "alternating: \(measured) syscalls, grouped: \(control); quadratic would be \(500 * alternating.count) more")

        let deep = Array(repeating: "a", count: 2000).joined(separator: "/")
        let ran = run(try Images.craftedLayout(entries(depth: 2000, count: 200),
                                               command: "cd /\(deep) && set -- b/* && echo $# && set -- c/* && echo $# && cat b/f199 c/f0"))
        #expect(ran.status == 0, "\(ran)")
        #expect(ran.lines == ["100", "100", "1990"], "\(ran)")
    }

    /// The number of syscalls `stockade ARGS` and every process it starts make, by `strace -f -c`.
    static func syscalls(of args: [String]) throws -> Int {
        let summary = Fixture.shared.dir + "/strace-" + UUID().uuidString
        defer { unlink(summary) }
        let traced = Fixture.run(["strace", "-f", "-c", "-o", summary, Fixture.shared.stockade] + args)
        try #require(traced.status == 0, "\(traced)")
        // The last line: % time, seconds, usecs/call, calls, [errors,] "total".
        let total = try #require(Images.text(summary)?.split(separator: "\n").last { $0.hasSuffix(" total") }, "\(traced)")
        return try #require(Int(total.split(separator: " ")[3]), "\(total)")
    }

    // MARK: - the previous image (repro-gzip-previous.sh, repro-previous-longname.sh)

    /// A previous image whose layers are gzip (as after a registry round trip): the launch layer
    /// kept from it got its compressed blob's digest as diff_id and in the lifecycle label.
    @Test func aGzipLayerFromThePreviousImageKeepsItsDiffID() throws {
        let previous = Images.copy(try Images.sharedImage())
        try Self.python("""
            import gzip, hashlib, json, sys
            lay = sys.argv[1]
            rd = lambda d: open(f"{lay}/blobs/sha256/{d[7:]}", "rb").read()
            def wr(b):
                d = hashlib.sha256(b).hexdigest(); open(f"{lay}/blobs/sha256/{d}", "wb").write(b); return "sha256:" + d, len(b)
            idx = json.load(open(lay + "/index.json"))
            md = [m for m in idx["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == "app"][-1]
            man = json.loads(rd(md["digest"]))
            for l in man["layers"]:
                l["digest"], l["size"] = wr(gzip.compress(rd(l["digest"]), mtime=0)); l["mediaType"] += "+gzip"
            md2 = dict(md); md2["digest"], md2["size"] = wr(json.dumps(man).encode())
            md2["annotations"] = {"org.opencontainers.image.ref.name": "gz"}
            idx["manifests"].append(md2); json.dump(idx, open(lay + "/index.json", "w"))
            """, [previous])
        _ = Fixture.run(["chmod", "-R", "a+rX", previous])

        let output = Images.newPath("gz-out")
        let built = Images.build(output: output, extra: ["--previous-image", previous + ":gz"])
        try #require(built.status == 0, "\(built)")
        #expect(built.stdout.contains("Reusing layer 'examples/shell:checksum' from the previous image ("), "\(built)")

        // Every diff_id is the sha256 of the layer's uncompressed tar; the label's sha of the
        // reused layer is that too (before the fix both were the gzip blob's digest).
        let report = try Self.python("""
            import gzip, hashlib, json, sys
            lay = sys.argv[1]
            rd = lambda d: open(f"{lay}/blobs/sha256/{d[7:]}", "rb").read()
            idx = json.load(open(lay + "/index.json"))
            md = [m for m in idx["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == "app"][-1]
            man = json.loads(rd(md["digest"])); cfg = json.loads(rd(man["config"]["digest"]))
            meta = json.loads(cfg["config"]["Labels"]["io.buildpacks.lifecycle.metadata"])
            sha = [bp for bp in meta["buildpacks"] if bp["key"] == "examples/shell"][0]["layers"]["checksum"]["sha"]
            gz = []
            for l, d in zip(man["layers"], cfg["rootfs"]["diff_ids"]):
                b = rd(l["digest"])
                gzipped = l["mediaType"].endswith("+gzip")
                want = "sha256:" + hashlib.sha256(gzip.decompress(b) if gzipped else b).hexdigest()
                if gzipped: gz.append(want)
                if d != want: print("wrong diff_id", d, "for", l["digest"], "want", want)
            print("layers", len(man["layers"]), "diff_ids", len(cfg["rootfs"]["diff_ids"]))
            print("gzip", len(gz))
            print("label", "ok" if gz and sha == gz[0] else "differs: " + sha + " " + str(gz))
            """, [output])
        let lines = report.split(separator: "\n").map(String.init)
        #expect(!lines.contains { $0.hasPrefix("wrong diff_id") }, "\(report)")
        #expect(lines.contains("gzip 1"), "\(report)")
        #expect(lines.contains("label ok"), "\(report)")
        #expect(lines.contains { $0.hasPrefix("layers ") && $0.split(separator: " ")[1] == $0.split(separator: " ")[3] },
                "\(report)")
        // And the image runs: its layers check against their diff_ids.
        let web = fx.stockade(["run", output + ":app"], as: .suiteUser)
        #expect(web.status == 0 && web.stdout.hasPrefix(Images.hello), "\(web)")
    }

    /// A previous image whose label names a launch layer with a 300-byte name (no file can have
    /// it): the whole build failed.
    @Test func aPreviousImageLayerThatCannotBeRestoredIsAWarning() throws {
        let previous = Images.copy(try Images.sharedImage())
        let name = String(repeating: "x", count: 300)
        try Self.python("""
            import hashlib, json, sys
            lay, name = sys.argv[1], sys.argv[2]
            def rd(d): return open(f"{lay}/blobs/sha256/{d[7:]}", "rb").read()
            def wr(b):
                d = hashlib.sha256(b).hexdigest(); open(f"{lay}/blobs/sha256/{d}", "wb").write(b); return "sha256:" + d, len(b)
            idx = json.load(open(lay + "/index.json"))
            md = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "app"][-1]
            man = json.loads(rd(md["digest"])); cfg = json.loads(rd(man["config"]["digest"]))
            meta = json.loads(cfg["config"]["Labels"]["io.buildpacks.lifecycle.metadata"])
            bp = [bp for bp in meta["buildpacks"] if bp["key"] == "examples/shell"][0]
            bp["layers"][name] = dict(bp["layers"]["checksum"], launch=True, cache=False, build=False)
            cfg["config"]["Labels"]["io.buildpacks.lifecycle.metadata"] = json.dumps(meta)
            man["config"]["digest"], man["config"]["size"] = wr(json.dumps(cfg).encode())
            d, s = wr(json.dumps(man).encode())
            idx["manifests"].append({"mediaType": md["mediaType"], "digest": d, "size": s,
                                     "annotations": {"org.opencontainers.image.ref.name": "hostile"}})
            json.dump(idx, open(lay + "/index.json", "w"))
            """, [previous, name])
        _ = Fixture.run(["chmod", "-R", "a+rX", previous])

        let output = Images.newPath("longname-out")
        let built = Images.build(output: output, extra: ["--previous-image", previous + ":hostile"])
        #expect(built.status == 0, "\(built)")
        #expect(Self.warnings(built).contains { $0.contains("examples/shell:" + name) }, "\(built)")
        // The layers it can restore still are.
        #expect(built.stdout.contains("Reusing layer 'examples/shell:checksum' from the previous image ("), "\(built)")
        let web = fx.stockade(["run", output + ":app"], as: .suiteUser)
        #expect(web.status == 0 && web.stdout.hasPrefix(Images.hello), "\(web)")
    }
}
