import Foundation
import OCI
import Registry
import StockadeTestSupport
import Testing

/// The Registry module's API against a real registry: chunked uploads, mounts and pulls by digest.
@Suite(.timeLimit(.minutes(5))) struct RegistryClientTests {
    @Test func chunkedUploadMountAndPullRoundTrip() throws {
        guard TestRegistry.available else { try skip("docker-registry is not installed") }
        let registry = try TestRegistry()
        let parts = Registries.appLayout.split(separator: ":")
        let source = try ImageLayout.open(String(parts[0]))
        let image = try source.image(tag: String(parts[1]))
        var options = RegistryOptions(insecureHosts: [registry.host], credentials: CredentialStore(environment: [:]))
        options.chunkSize = 64 << 10  // the launcher layer alone is several chunks
        let client = RegistryClient(host: registry.host, options: options)
        let first = RegistryReference(host: registry.host, repository: "chunked", tag: "1")
        let digest = try client.push(image, from: source, to: first)
        #expect(digest == image.descriptor.digest)
        #expect(image.manifest.layers.contains { $0.size > 2 * options.chunkSize })
        let patches = (try String(contentsOfFile: registry.logPath, encoding: .utf8))
            .split(separator: "\n").filter { $0.contains("\"PATCH /v2/chunked/blobs/uploads/") }
        #expect(patches.count > image.manifest.layers.count, "\(patches.count) PATCH requests")

        // Another repository of the same registry: every blob mounted, none uploaded.
        let second = RegistryReference(host: registry.host, repository: "mounted", tag: "1")
        try client.push(image, from: source, to: second, mountFrom: ["chunked"])
        let log = try String(contentsOfFile: registry.logPath, encoding: .utf8)
        #expect(!log.contains("\"PUT /v2/mounted/blobs/uploads/") && !log.contains("\"PATCH /v2/mounted/"))
        #expect(log.contains("\"POST /v2/mounted/blobs/uploads/?mount="))

        // Pulled back by digest into a fresh layout: the same manifest, every blob checked.
        let target = try ImageLayout.openOrCreate(Registries.fx.makeDirectory("pulled") + "/layout")
        let pulled = try client.pull(second.with(digest: digest), into: target)
        #expect(pulled.descriptor.digest == digest)
        for layer in image.manifest.layers { #expect(target.hasBlob(layer)) }
    }
}
