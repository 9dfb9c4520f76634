// libFuzzer target: an image's documents as an image layout hands them over: index.json,
// manifests, configs and the digests in them. Any input: no crash, no hang.
import JSON
import OCI

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let json = try? JSONParser.parse(bytes) else { return 0 }
    if let index = try? ImageIndex(json: json, in: "fuzz") {
        precondition((try? ImageIndex(json: index.json, in: "again")) == index, "the index reads back differently")
    }
    if let manifest = try? ImageManifest(json: json, in: "fuzz") {
        precondition((try? ImageManifest(json: manifest.json, in: "again")) == manifest, "the manifest reads back differently")
    }
    if let config = try? ImageConfig(json: json, in: "fuzz") {
        _ = config.environmentValue("PATH")
        _ = config.json.text
    }
    if case .string(let text) = json { _ = Digest(text) }
    return 0
}
