import Foundation
import StockadeTestSupport
import Testing

/// Layers from a run image nobody here made are hostile input to `stockade run`: no entry, link
/// or whiteout in them reaches outside the directory they are extracted into.
@Suite struct HostileLayerTests {
    /// An OCI layout whose one image has a busybox layer and then `entries` as a second layer
    /// (name, kind "file"/"symlink"/"hardlink", target or contents), made with Python's tarfile.
    static func layout(_ entries: [(String, String, String)]) -> String {
        let dir = Images.newPath("hostile-layout")
        let script = """
            import hashlib, io, json, os, sys, tarfile
            out, entries = sys.argv[1], json.loads(sys.argv[2])
            os.makedirs(out + "/blobs/sha256")
            def blob(data):
                digest = hashlib.sha256(data).hexdigest()
                open(out + "/blobs/sha256/" + digest, "wb").write(data)
                return {"digest": "sha256:" + digest, "size": len(data)}
            def layer(add):
                buf = io.BytesIO()
                with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    add(tar)
                return buf.getvalue()
            def base(tar):
                info = tarfile.TarInfo("bin/busybox"); data = open("/bin/busybox", "rb").read()
                info.size, info.mode = len(data), 0o755
                tar.addfile(info, io.BytesIO(data))
                for applet in ["sh", "cat", "ls"]:
                    link = tarfile.TarInfo("bin/" + applet); link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                    tar.addfile(link)
                for d in ["data", "data/sub"]:
                    info = tarfile.TarInfo(d); info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                info = tarfile.TarInfo("data/sub/kept"); info.size = 5
                tar.addfile(info, io.BytesIO(b"kept\\n"))
            def hostile(tar):
                for name, kind, value in entries:
                    info = tarfile.TarInfo(name)
                    if kind == "symlink": info.type, info.linkname = tarfile.SYMTYPE, value
                    elif kind == "hardlink": info.type, info.linkname = tarfile.LNKTYPE, value
                    else: info.size = len(value.encode())
                    tar.addfile(info, io.BytesIO(value.encode()) if kind == "file" else None)
            layers = [layer(base), layer(hostile)]
            descs = [dict(blob(l), mediaType="application/vnd.oci.image.layer.v1.tar") for l in layers]
            config = {"architecture": "amd64", "os": "linux",
                      "config": {"Env": ["PATH=/bin"], "Entrypoint": ["/bin/sh", "-c", "ls /data; cat /data/sub/kept"]},
                      "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]}}
            cdesc = dict(blob(json.dumps(config).encode()), mediaType="application/vnd.oci.image.config.v1+json")
            manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": cdesc, "layers": descs}
            mdesc = dict(blob(json.dumps(manifest).encode()), mediaType="application/vnd.oci.image.manifest.v1+json",
                         annotations={"org.opencontainers.image.ref.name": "latest"})
            json.dump({"schemaVersion": 2, "manifests": [mdesc]}, open(out + "/index.json", "w"))
            open(out + "/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
            """
        let json = "[" + entries.map { "[\"\($0.0)\", \"\($0.1)\", \"\($0.2)\"]" }.joined(separator: ",") + "]"
        let made = Fixture.run(["python3", "-c", script, dir, json])
        precondition(made.status == 0, "\(made)")
        _ = Fixture.run(["chmod", "-R", "a+rX", dir])
        return dir
    }

    /// Runs the image with TMPDIR in a fresh directory holding a canary beside where the rootfs goes.
    func run(_ layout: String, as invoker: Invoker) -> (Outcome, canaryKept: Bool) {
        let tmp = Images.newPath("hostile-tmp")
        try! FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        chmod(tmp, 0o777)
        try! "canary".write(toFile: tmp + "/canary", atomically: true, encoding: .utf8)
        chmod(tmp + "/canary", 0o666)
        let ran = Fixture.run(["env", "TMPDIR=\(tmp)"] + invoker.prefix + [Fixture.shared.stockade, "run", layout + ":latest"])
        return (ran, FileManager.default.fileExists(atPath: tmp + "/canary"))
    }

    @Test(arguments: Invoker.all)
    func whiteoutsOfDotAndDotDotAreRefused(_ invoker: Invoker) {
        for name in [".wh...", ".wh..", "data/.wh...", "data/sub/.wh.."] {
            let (ran, kept) = run(Self.layout([(name, "file", "")]), as: invoker)
            #expect(ran.status == 65, "\(name): \(ran)")
            #expect(ran.stderr.contains("whiteout") && ran.stderr.split(separator: "\n").count == 1, "\(name): \(ran)")
            #expect(kept, "\(name) removed a file outside the image")
        }
    }

    @Test(arguments: Invoker.all)
    func entriesThroughLinksStayInsideTheImage(_ invoker: Invoker) {
        let host = Images.newPath("hostile-target")
        try! FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        chmod(host, 0o777)
        // A link to a host directory, then a file "through" it: the link resolves inside the
        // image, where that directory does not exist.
        let (through, _) = run(Self.layout([("data/out", "symlink", host), ("data/out/planted", "file", "planted")]),
                               as: invoker)
        #expect(through.status == 65 && through.stderr.contains("not a directory in the image"), "\(through)")
        #expect(!FileManager.default.fileExists(atPath: host + "/planted"), "\(through)")
        // A link that climbs up with .., then a file through it: .. stops at the image's root.
        let (up, _) = run(Self.layout([("data/up", "symlink", "../../../../../../../.."),
                                       ("data/up/\(host.dropFirst())/planted", "file", "planted")]), as: invoker)
        #expect(up.status == 0, "\(up)")
        #expect(!FileManager.default.fileExists(atPath: host + "/planted"), "\(up)")
        // A hard link climbing out with .. is refused.
        let (hard, _) = run(Self.layout([("data/hard", "hardlink", "../../../../etc/passwd")]), as: invoker)
        #expect(hard.status == 65 && hard.stderr.contains("points outside"), "\(hard)")
    }

    @Test func anOpaqueWhiteoutEmptiesOnlyItsDirectory() {
        let (ran, kept) = run(Self.layout([("data/sub/.wh..wh..opq", "file", "")]), as: .suiteUser)
        #expect(kept)
        #expect(ran.stdout == "sub\n", "\(ran)")  // /data/sub is there, empty: cat fails
        #expect(ran.status != 0)
    }
}
