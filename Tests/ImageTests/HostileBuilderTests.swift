import Foundation
import StockadeTestSupport
import Testing

/// Builder images nobody here made are hostile input: each bad layer or label is refused with one
/// line before the build starts, and nothing is written outside the store, nor left in it.
@Suite struct HostileBuilderTests {
    /// A builder layout (tag `builder`): a busybox layer with /cnb/order.toml, then `entries` as a
    /// gzip layer ([name, kind, value]: kind file, dir, symlink, device, or huge: a header declaring
    /// 10 GiB followed by one block), with the labels given (default: valid, empty metadata).
    static func craft(_ entries: [[String]], metadata: String = "{}") throws -> String {
        let dir = Images.newPath("hostile-builder")
        let list = dir + ".entries.json"
        try JSONSerialization.data(withJSONObject: ["entries": entries, "metadata": metadata]).write(to: URL(fileURLWithPath: list))
        let script = """
            import gzip, hashlib, io, json, os, sys, tarfile
            out, spec = sys.argv[1], json.load(open(sys.argv[2]))
            os.makedirs(out + "/blobs/sha256")
            def blob(data):
                d = hashlib.sha256(data).hexdigest()
                open(out + "/blobs/sha256/" + d, "wb").write(data)
                return {"digest": "sha256:" + d, "size": len(data)}
            def base():
                buf = io.BytesIO()
                with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    i = tarfile.TarInfo("bin/busybox"); data = open("/bin/busybox", "rb").read()
                    i.size, i.mode = len(data), 0o755; tar.addfile(i, io.BytesIO(data))
                    l = tarfile.TarInfo("bin/sh"); l.type, l.linkname = tarfile.SYMTYPE, "busybox"; tar.addfile(l)
                    for d in ["cnb", "cnb/buildpacks"]:
                        i = tarfile.TarInfo(d); i.type, i.mode = tarfile.DIRTYPE, 0o755; tar.addfile(i)
                    i = tarfile.TarInfo("cnb/order.toml"); i.size = 0; tar.addfile(i, io.BytesIO(b""))
                return buf.getvalue()
            def hostile():
                buf = io.BytesIO()
                for name, kind, value in spec["entries"]:
                    i = tarfile.TarInfo(name)
                    if kind == "huge":
                        i.size = 10 << 30
                        buf.write(i.tobuf(format=tarfile.PAX_FORMAT) + b"x" * 512)
                        return gzip.compress(buf.getvalue())
                    if kind == "symlink": i.type, i.linkname = tarfile.SYMTYPE, value
                    elif kind == "dir": i.type, i.mode = tarfile.DIRTYPE, 0o755
                    elif kind == "device": i.type, i.devmajor, i.devminor = tarfile.CHRTYPE, 1, 3
                    else: i.size = len(value.encode())
                    buf.write(i.tobuf(format=tarfile.PAX_FORMAT))
                    if kind == "file":
                        data = value.encode(); buf.write(data + b"\\0" * ((512 - len(data) % 512) % 512))
                buf.write(b"\\0" * 1024)
                return gzip.compress(buf.getvalue())
            layers = [base(), hostile()]
            descs = [dict(blob(layers[0]), mediaType="application/vnd.oci.image.layer.v1.tar"),
                     dict(blob(layers[1]), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")]
            diffs = ["sha256:" + hashlib.sha256(layers[0]).hexdigest(), "sha256:" + hashlib.sha256(gzip.decompress(layers[1])).hexdigest()]
            config = {"architecture": "amd64", "os": "linux",
                      "config": {"Env": ["PATH=/bin", "CNB_USER_ID=1000", "CNB_GROUP_ID=1000"],
                                 "Labels": {"io.buildpacks.builder.metadata": spec["metadata"]}},
                      "rootfs": {"type": "layers", "diff_ids": diffs}}
            c = dict(blob(json.dumps(config).encode()), mediaType="application/vnd.oci.image.config.v1+json")
            m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": descs}
            md = dict(blob(json.dumps(m).encode()), mediaType="application/vnd.oci.image.manifest.v1+json",
                      annotations={"org.opencontainers.image.ref.name": "builder"})
            json.dump({"schemaVersion": 2, "manifests": [md]}, open(out + "/index.json", "w"))
            open(out + "/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
            """
        let made = Fixture.run(["python3", "-c", script, dir, list])
        try #require(made.status == 0, "python: \(made)")
        _ = Fixture.run(["chmod", "-R", "a+rX", dir])
        return dir
    }

    /// Builds from `builder` into a new store inside a directory every invoker may write; returns
    /// the outcome, the store, and that directory.
    func build(_ builder: String, extra: [String] = [], as invoker: Invoker) -> (Outcome, store: String, parent: String) {
        let parent = Images.fx.makeDirectory("hostile-store", mode: 0o777)
        let store = parent + "/store"
        let ran = Builders.build(builder: builder, store: store, extra: extra, as: invoker)
        return (ran, store, parent)
    }

    func expectRefused(_ ran: Outcome, _ words: String, store: String, parent: String, _ what: String) {
        #expect(ran.status != 0, "\(what): \(ran)")
        #expect(ran.stderr.contains(words), "\(what): \(ran)")
        #expect(ran.stderr.split(separator: "\n").count == 1, "\(what): one line: \(ran)")
        #expect(!ran.stdout.contains("===> DETECTING"), "\(what): the build went on: \(ran)")
        #expect(Builders.entries(store).isEmpty, "\(what): left in the store: \(Builders.entries(store))")
        let outside = ((try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []).filter { $0 != "store" }
        #expect(outside.isEmpty, "\(what): written beside the store: \(outside)")
    }

    @Test(arguments: Invoker.all)
    func hostileLayersAreRefused(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let (climb, store, parent) = build(try Self.craft([["../../x", "file", "x"]]), as: invoker)
        expectRefused(climb, "climbs out", store: store, parent: parent, "../../x")

        // A link to a host directory every invoker may write, then a file through it.
        let host = Images.fx.makeDirectory("hostile-target", mode: 0o777)
        let (through, store2, parent2) = build(try Self.craft([["cnb/out", "symlink", host], ["cnb/out/planted", "file", "planted"]]),
                                               as: invoker)
        expectRefused(through, "symbolic link", store: store2, parent: parent2, "a file through an absolute link")
        #expect(!FileManager.default.fileExists(atPath: host + "/planted"))

        let (device, store3, parent3) = build(try Self.craft([["cnb/null", "device", ""]]), as: invoker)
        expectRefused(device, "device", store: store3, parent: parent3, "a device node")

        // 10 GiB declared: over a 1 GiB budget it is refused before a byte is written; under the
        // standard budget the archive ends long before its declared size.
        let huge = try Self.craft([["cnb/huge", "huge", ""]])
        let (budgeted, store4, parent4) = build(huge, extra: ["--disk", "1G"], as: invoker)
        expectRefused(budgeted, "disk budget", store: store4, parent: parent4, "10 GiB over --disk 1G")
        let (truncated, store5, parent5) = build(huge, as: invoker)
        expectRefused(truncated, "cnb/huge", store: store5, parent: parent5, "10 GiB declared, 512 bytes there")
    }

    @Test(arguments: Invoker.all)
    func badLabelsAreRefusedBeforeUnpacking(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let (malformed, store, parent) = build(try Self.craft([], metadata: "{\"description\": "), as: invoker)
        expectRefused(malformed, "not valid JSON", store: store, parent: parent, "malformed metadata")
        #expect(malformed.status == 65, "\(malformed)")
        let (huge, store2, parent2) = build(try Self.craft([], metadata: "\"" + String(repeating: "a", count: 2 << 20) + "\""),
                                            as: invoker)
        expectRefused(huge, "at most 1 MiB", store: store2, parent: parent2, "a 2 MiB label")
        let (notObject, store3, parent3) = build(try Self.craft([], metadata: "[]"), as: invoker)
        expectRefused(notObject, "not a JSON object", store: store3, parent: parent3, "metadata that is an array")
        // The control: the same image with valid labels and layers unpacks.
        let (fine, store4, _) = build(try Self.craft([["cnb/ok", "file", "ok"]]), as: invoker)
        #expect(Builders.entries(store4).count == 1, "\(fine)")
    }
}
