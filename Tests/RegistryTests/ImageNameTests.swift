import OCI
import Testing

@Suite struct ImageNameTests {
    func registry(_ text: String) throws -> RegistryReference {
        guard case .registry(let reference) = try ImageName(parsing: text) else {
            Issue.record("\(text) parsed as a layout")
            throw ImageNameError("not a registry reference")
        }
        return reference
    }

    @Test(arguments: [
        ("busybox", "docker.io", "library/busybox", "latest"),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36"),
        ("docker.io/paketobuildpacks/builder-jammy-base", "docker.io", "paketobuildpacks/builder-jammy-base", "latest"),
        ("index.docker.io/library/alpine:3", "docker.io", "library/alpine", "3"),
        ("docker.io/alpine", "docker.io", "library/alpine", "latest"),
        ("localhost:5000/app:1", "localhost:5000", "app", "1"),
        ("localhost/app", "localhost", "app", "latest"),
        ("ghcr.io/a/b/c:v1.2_x-y", "ghcr.io", "a/b/c", "v1.2_x-y"),
        ("127.0.0.1:65535/x__y/z-1.2:T", "127.0.0.1:65535", "x__y/z-1.2", "T"),
        ("docker://busybox", "docker.io", "library/busybox", "latest"),
        ("registry.example.com/a---b/c", "registry.example.com", "a---b/c", "latest"),
    ])
    func normalises(_ text: String, _ host: String, _ repository: String, _ tag: String) throws {
        let reference = try registry(text)
        #expect(reference.host == host)
        #expect(reference.repository == repository)
        #expect(reference.tag == tag)
        #expect(reference.digest == nil)
        #expect(reference.reference == tag)
    }

    @Test func digestsWinOverTags() throws {
        let hex = String(repeating: "ab", count: 32)
        let byDigest = try registry("ghcr.io/a/b@sha256:" + hex)
        #expect(byDigest.tag == nil)
        #expect(byDigest.reference == "sha256:" + hex)
        let both = try registry("ghcr.io/a/b:1@sha256:" + hex)
        #expect(both.tag == "1")
        #expect(both.reference == "sha256:" + hex)
        #expect(both.description == "ghcr.io/a/b:1@sha256:" + hex)
    }

    @Test(arguments: [
        ("oci:out", "out", "latest"),
        ("oci:out:v1", "out", "v1"),
        ("oci:/tmp/a:b/c", "/tmp/a:b/c", "latest"),
        ("/tmp/images:app", "/tmp/images", "app"),
        ("./images", "./images", "latest"),
        ("../x:y", "../x", "y"),
        ("images/app:1", "images/app", "1"),
        ("~/images", "~/images", "latest"),
    ])
    func layouts(_ text: String, _ directory: String, _ tag: String) throws {
        #expect(try ImageName(parsing: text) == .layout(directory: directory, tag: tag))
    }

    @Test(arguments: [
        "",
        "Busybox",
        "docker.io/Library/busybox",
        "localhost:5000/App",
        "busybox:",
        "busybox:.hidden",
        "busybox:-x",
        "busybox:" + String(repeating: "a", count: 129),
        "busybox:a b",
        "busybox@sha256:abc",
        "busybox@md5:" + String(repeating: "a", count: 32),
        "busybox@sha256:" + String(repeating: "A", count: 64),
        "localhost:0/app",
        "localhost:65536/app",
        "localhost:99999999/app",
        "localhost:/app",
        "-bad.example.com/app",
        "bad-.example.com/app",
        "exa_mple.com/app",
        "example.com//app",
        "example.com/app/",
        "example.com/a..b",
        "example.com/a___b",
        "example.com/.a",
        "example.com/a.",
        "example.com/a-",
        "docker://",
        "docker://a//b",
        "oci:",
        "oci::tag",
        "oci:dir:bad tag",
        "/tmp/x:t@g",
        "exam\u{7}ple.com/app",
        "example.com/" + String(repeating: "a", count: 250),
        "ex\u{e9}mple.com/app",
        "example.com/\u{e9}",
    ])
    func refusesMalformed(_ text: String) {
        do {
            let parsed = try ImageName(parsing: text)
            Issue.record("\(text.debugDescription) parsed as \(parsed)")
        } catch {
            #expect(!error.message.isEmpty)
            #expect(!error.message.contains("\n"))
        }
    }
}
