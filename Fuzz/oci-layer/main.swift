// libFuzzer target: a layer blob (tar, gzip or zstd) extracted as `run` and `rebase` extract
// an image's layers. Each input gets a fresh layout and root under one temporary directory,
// removed afterwards. Any input: no crash, no hang, and nothing created beside the root.
import Glibc
import OCI

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var template = Array("/tmp/stockade-fuzz-layer-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { preconditionFailure("mkdtemp: \(errno)") }
    let base = String(cString: made)
    defer {
        let parent = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try! LayerExtractor.remove(String(base.dropFirst(5)), in: parent, path: base)
        close(parent)
    }
    let layout = try! ImageLayout.openOrCreate(base + "/layout")
    let layer = try! layout.writeBlob(bytes, mediaType: MediaType.layer)
    precondition(mkdir(base + "/root", 0o755) == 0)
    let root = open(base + "/root", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    defer { close(root) }
    _ = try? LayerExtractor().extract(layer, from: layout, into: root, rootPath: base + "/root")

    // Whatever the layer holds, it lands beneath the root or nowhere.
    let directory = opendir(base)!
    defer { closedir(directory) }
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        precondition([".", "..", "layout", "root"].contains(name), "the layer wrote \(base)/\(name)")
    }
    return 0
}
