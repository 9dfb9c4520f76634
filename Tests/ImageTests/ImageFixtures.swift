import Foundation
import OCI
import StockadeTestSupport
import Testing

/// What the image tests share: run images made by examples/make-run-image.sh, one build of the
/// shell example that no test changes (a test that changes an image copies it first), and
/// readers of OCI layouts and tars that do not go through Stockade's own code.
enum Images {
    static var fx: Fixture { Fixture.shared }
    static var examples: String { fx.examples }
    static var shellApp: String { examples + "/apps/shell-app" }
    static let hello = "hello from the shell app; APP_SHA256="

    // MARK: - run images and builds

    /// A busybox run image whose /etc/run-image and io.stockade.run-image label say `marker`.
    static func makeRunImage(marker: String) -> String {
        let dir = fx.makeDirectory("run-image-\(marker)") + "/layout"
        let made = Fixture.run(["bash", examples + "/make-run-image.sh", dir, "latest", marker])
        precondition(made.status == 0, "make-run-image.sh: \(made)")
        _ = Fixture.run(["chmod", "-R", "a+rX", dir])
        return dir
    }

    static let runImageOne = makeRunImage(marker: "one")
    static let runImageTwo = makeRunImage(marker: "two")

    /// `stockade build` of an app (the shell example by default) with the example builder,
    /// hermetic, into `output:tag`.
    static func build(output: String, tag: String = "app", app: String? = nil, runImage: String? = runImageOne,
                      cache: String? = nil, extra: [String] = [], as invoker: Invoker = .suiteUser) -> Outcome {
        var args = ["build", "--builder", examples + "/builder.toml", "--path", app ?? shellApp, "--network", "none",
                    "--output", output + ":" + tag]
        if let runImage { args += ["--run-image", runImage] }
        if let cache { args += ["--cache-dir", cache] }
        return fx.stockade(args + extra, as: invoker)
    }

    struct Built: Sendable {
        let layout: String
        let outcome: Outcome
    }

    /// The shell example on run image "one", tagged `app`, built once for the whole run.
    static let shared: Built = {
        let layout = fx.makeDirectory("shared-image") + "/layout"
        let outcome = build(output: layout)
        _ = Fixture.run(["chmod", "-R", "a+rX", layout])
        return Built(layout: layout, outcome: outcome)
    }()

    /// The shared image's layout, after checking that its build passed.
    static func sharedImage() throws -> String {
        try #require(shared.outcome.status == 0, "the shared build failed: \(shared.outcome)")
        return shared.layout
    }

    /// A copy of `directory` (an image layout, an app) that a test may change.
    static func copy(_ directory: String, mode: mode_t = 0o755) -> String {
        let copy = fx.makeDirectory("copy", mode: mode) + "/" + URL(fileURLWithPath: directory).lastPathComponent
        let copied = Fixture.run(["cp", "-a", directory, copy])
        precondition(copied.status == 0, "cp -a: \(copied)")
        return copy
    }

    /// An OCI layout (tag `latest`) whose image has a busybox layer (sh, cat, ls, true, with
    /// /data/sub/kept) and then `entries` as a second layer: [name, kind, value] with kind
    /// "file" (value: contents), "dir", "symlink" or "hardlink" (value: target), and optionally
    /// a fourth element, the entry's mode in octal. The entrypoint is
    /// `sh -c command`; `user` is the config's User. Entries go through a file, as deep names
    /// would not fit in one argument.
    static func craftedLayout(_ entries: [[String]], command: String, user: String? = nil) throws -> String {
        let dir = Images.newPath("regress-layout")
        let list = dir + ".entries.json"
        try JSONSerialization.data(withJSONObject: entries).write(to: URL(fileURLWithPath: list))
        let script = """
            import hashlib, io, json, os, sys, tarfile
            out, entries, cmd, user = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3], sys.argv[4]
            os.makedirs(out + "/blobs/sha256")
            def blob(data):
                d = hashlib.sha256(data).hexdigest()
                open(out + "/blobs/sha256/" + d, "wb").write(data)
                return {"digest": "sha256:" + d, "size": len(data)}
            def layer(add):
                buf = io.BytesIO()
                with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar: add(tar)
                return buf.getvalue()
            def base(tar):
                i = tarfile.TarInfo("bin/busybox"); data = open("/bin/busybox", "rb").read()
                i.size, i.mode = len(data), 0o755; tar.addfile(i, io.BytesIO(data))
                for a in ["sh", "cat", "ls", "true"]:
                    l = tarfile.TarInfo("bin/" + a); l.type, l.linkname = tarfile.SYMTYPE, "busybox"; tar.addfile(l)
                for d in ["data", "data/sub"]:
                    i = tarfile.TarInfo(d); i.type, i.mode = tarfile.DIRTYPE, 0o755; tar.addfile(i)
                i = tarfile.TarInfo("data/sub/kept"); i.size = 5; tar.addfile(i, io.BytesIO(b"kept\\n"))
            def crafted(tar):
                for name, kind, value, *mode in entries:
                    i = tarfile.TarInfo(name)
                    if kind == "symlink": i.type, i.linkname = tarfile.SYMTYPE, value
                    elif kind == "hardlink": i.type, i.linkname = tarfile.LNKTYPE, value
                    elif kind == "dir": i.type, i.mode = tarfile.DIRTYPE, 0o755
                    else: i.size = len(value.encode())
                    if mode: i.mode = int(mode[0], 8)
                    tar.addfile(i, io.BytesIO(value.encode()) if kind == "file" else None)
            descs = [dict(blob(l), mediaType="application/vnd.oci.image.layer.v1.tar") for l in [layer(base), layer(crafted)]]
            conf = {"Env": ["PATH=/bin"], "Entrypoint": ["/bin/sh", "-c", cmd]}
            if user: conf["User"] = user
            config = {"architecture": "amd64", "os": "linux", "config": conf,
                      "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]}}
            c = dict(blob(json.dumps(config).encode()), mediaType="application/vnd.oci.image.config.v1+json")
            m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": descs}
            md = dict(blob(json.dumps(m).encode()), mediaType="application/vnd.oci.image.manifest.v1+json",
                      annotations={"org.opencontainers.image.ref.name": "latest"})
            json.dump({"schemaVersion": 2, "manifests": [md]}, open(out + "/index.json", "w"))
            open(out + "/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
            """
        let made = Fixture.run(["python3", "-c", script, dir, list, command, user ?? ""])
        try #require(made.status == 0, "python: \(made)")
        _ = Fixture.run(["chmod", "-R", "a+rX", dir])
        return dir
    }

    /// A buildpack `test/<id>` (API 0.10) whose bin/detect passes and whose bin/build is
    /// `set -eu` then `script`, readable and runnable by every invoker.
    static func buildpack(_ id: String, sbomFormats: [String] = [], build script: String) -> String {
        let dir = fx.makeDirectory("bp-" + id.replacingOccurrences(of: "/", with: "_"))
        try! FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        let formats = sbomFormats.map { "\"\($0)\"" }.joined(separator: ", ")
        try! "api = \"0.10\"\n\n[buildpack]\nid = \"test/\(id)\"\nversion = \"0.0.1\"\nsbom-formats = [\(formats)]\n"
            .write(toFile: dir + "/buildpack.toml", atomically: true, encoding: .utf8)
        try! "#!/bin/sh\nexit 0\n".write(toFile: dir + "/bin/detect", atomically: true, encoding: .utf8)
        try! ("#!/bin/sh\nset -eu\n" + script).write(toFile: dir + "/bin/build", atomically: true, encoding: .utf8)
        _ = Fixture.run(["chmod", "-R", "a+rX", dir])
        chmod(dir + "/bin/detect", 0o755)
        chmod(dir + "/bin/build", 0o755)
        return dir
    }

    /// A new path (not yet created) in a directory every invoker may write.
    static func newPath(_ name: String) -> String { fx.makeDirectory(name, mode: 0o777) + "/" + name }

    // MARK: - reading layouts by hand

    static func json(_ path: String) -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    static func text(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    static func blobPath(_ layout: String, _ digest: String) -> String {
        layout + "/blobs/" + digest.replacingOccurrences(of: ":", with: "/")
    }

    /// The manifest digest index.json names for `tag`.
    static func manifestDigest(_ layout: String, tag: String = "app") -> String? {
        let manifests = json(layout + "/index.json")?["manifests"] as? [[String: Any]] ?? []
        let entry = manifests.first { ($0["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"] == tag }
        return entry?["digest"] as? String
    }

    static func manifest(_ layout: String, tag: String = "app") -> [String: Any]? {
        manifestDigest(layout, tag: tag).flatMap { json(blobPath(layout, $0)) }
    }

    static func layerDigests(_ layout: String, tag: String = "app") -> [String] {
        (manifest(layout, tag: tag)?["layers"] as? [[String: Any]] ?? []).compactMap { $0["digest"] as? String }
    }

    static func config(_ layout: String, tag: String = "app") -> [String: Any]? {
        ((manifest(layout, tag: tag)?["config"] as? [String: Any])?["digest"] as? String).flatMap { json(blobPath(layout, $0)) }
    }

    /// sha256sum's view of a file, as `sha256:<hex>`.
    static func sha256(_ path: String) -> String {
        let summed = Fixture.run(["sha256sum", path])
        return "sha256:" + (summed.stdout.split(separator: " ").first.map(String.init) ?? "")
    }

    /// `skopeo inspect` (or `--config`) of `layout:tag`, parsed.
    static func skopeo(_ layout: String, tag: String = "app", config: Bool = false) -> (Outcome, [String: Any]?) {
        let inspected = Fixture.run(["skopeo", "inspect"] + (config ? ["--config"] : []) + ["oci:\(layout):\(tag)"])
        let parsed = (try? JSONSerialization.jsonObject(with: Data(inspected.stdout.utf8))) as? [String: Any]
        return (inspected, parsed)
    }

    /// Python's tarfile's view of a tar: every member in order.
    struct TarEntry: Sendable {
        let name: String
        let type: String
        let mode: Int
        let uid: Int
        let gid: Int
        let uname: String
        let gname: String
        let mtime: Int
        let size: Int
        let linkname: String
    }

    static func tarEntries(_ path: String) -> [TarEntry]? {
        let script = """
            import json, sys, tarfile
            with tarfile.open(sys.argv[1], "r:") as t:
                print(json.dumps([dict(name=m.name, type=m.type.decode(), mode=m.mode, uid=m.uid, gid=m.gid,
                                       uname=m.uname, gname=m.gname, mtime=int(m.mtime), size=m.size,
                                       linkname=m.linkname) for m in t.getmembers()]))
            """
        let listed = Fixture.run(["/usr/bin/python3", "-c", script, path])
        guard listed.status == 0,
              let rows = (try? JSONSerialization.jsonObject(with: Data(listed.stdout.utf8))) as? [[String: Any]]
        else { return nil }
        return rows.map {
            TarEntry(name: $0["name"] as? String ?? "", type: $0["type"] as? String ?? "", mode: $0["mode"] as? Int ?? -1,
                     uid: $0["uid"] as? Int ?? -1, gid: $0["gid"] as? Int ?? -1, uname: $0["uname"] as? String ?? "",
                     gname: $0["gname"] as? String ?? "", mtime: $0["mtime"] as? Int ?? -1, size: $0["size"] as? Int ?? -1,
                     linkname: $0["linkname"] as? String ?? "")
        }
    }

    /// Every regular file under `layout/blobs/sha256`, by name.
    static func blobs(_ layout: String) -> Set<String> {
        Set((try? FileManager.default.contentsOfDirectory(atPath: layout + "/blobs/sha256")) ?? [])
    }

    /// Rewrites the run image at `layout` (tag latest) with its config's architecture set to
    /// `architecture`: new config and manifest blobs under their digests, a new index.
    static func setArchitecture(_ architecture: String, of layout: String) throws {
        var index = try #require(json(layout + "/index.json"))
        var entries = try #require(index["manifests"] as? [[String: Any]])
        let manifestDigest = try #require(entries.first?["digest"] as? String)
        var manifest = try #require(json(blobPath(layout, manifestDigest)))
        var configDescriptor = try #require(manifest["config"] as? [String: Any])
        let configDigest = try #require(configDescriptor["digest"] as? String)
        var config = try #require(json(blobPath(layout, configDigest)))
        config["architecture"] = architecture
        func write(_ object: [String: Any]) throws -> (digest: String, size: Int) {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            let digest = Digest.of([UInt8](data)).description
            try data.write(to: URL(fileURLWithPath: blobPath(layout, digest)))
            return (digest, data.count)
        }
        let newConfig = try write(config)
        configDescriptor["digest"] = newConfig.digest
        configDescriptor["size"] = newConfig.size
        manifest["config"] = configDescriptor
        let newManifest = try write(manifest)
        entries[0]["digest"] = newManifest.digest
        entries[0]["size"] = newManifest.size
        index["manifests"] = entries
        try JSONSerialization.data(withJSONObject: index).write(to: URL(fileURLWithPath: layout + "/index.json"))
    }

    /// Flips one bit of the file at `offset`.
    static func flipBit(_ path: String, at offset: Int) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        try #require(offset < bytes.count)
        bytes[offset] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
}

/// A layers directory as a build leaves it, made by hand for `stockade export`: one buildpack
/// `t/bp` with one launch layer `stuff`, a default process `marker` that prints the run image's
/// /etc/run-image, and an app with one file.
struct HandMadeLayers {
    let layers: String
    let app: String
    /// The launch layer's directory, for a test to fill.
    var stuff: String { layers + "/t_bp/stuff" }

    init() throws {
        let fx = Fixture.shared
        layers = fx.makeDirectory("hand-layers")
        app = fx.makeDirectory("hand-app")
        let fm = FileManager.default
        try fm.createDirectory(atPath: layers + "/config", withIntermediateDirectories: true)
        try """
            buildpack-default-process-type = "marker"

            [[buildpacks]]
            api = "0.10"
            id = "t/bp"
            version = "1.0.0"

            [[processes]]
            type = "marker"
            command = ["cat", "/etc/run-image"]
            args = []
            direct = true
            buildpack-id = "t/bp"
            """.write(toFile: layers + "/config/metadata.toml", atomically: true, encoding: .utf8)
        try fm.createDirectory(atPath: layers + "/t_bp/stuff", withIntermediateDirectories: true)
        try "[types]\nlaunch = true\n".write(toFile: layers + "/t_bp/stuff.toml", atomically: true, encoding: .utf8)
        try "echo hi\n".write(toFile: app + "/run.sh", atomically: true, encoding: .utf8)
    }

    func export(to output: String, runImage: String? = Images.runImageOne, user: String? = nil) -> Outcome {
        var args = ["export", "--layers", layers, "--app", app, "--output", output]
        if let runImage { args += ["--run-image", runImage] }
        if let user { args += ["--user", user] }
        return Fixture.shared.stockade(args, as: .suiteUser)
    }

    /// The tar of the `stuff` layer in `layout:tag`: the first layer whose entries lie under layers/t_bp.
    static func stuffLayer(_ layout: String, tag: String) -> (digest: String, entries: [Images.TarEntry])? {
        for digest in Images.layerDigests(layout, tag: tag) {
            let entries = Images.tarEntries(Images.blobPath(layout, digest)) ?? []
            if entries.contains(where: { $0.name.hasPrefix("layers/t_bp/") }) { return (digest, entries) }
        }
        return nil
    }
}
