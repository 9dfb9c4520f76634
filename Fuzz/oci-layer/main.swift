// libFuzzer target: a layer blob (tar, gzip or zstd) extracted as `run` and `rebase` extract
// an image's layers. One image layout per process (creating one fsyncs its index); each input
// is written into it as a blob and extracted into a fresh root, and both are removed
// afterwards. In memory (/dev/shm) where there is one: on a disk, file creation bounds the
// speed. Any input: no crash, no hang, and nothing created beside the root.
import Glibc
import OCI

let scratch = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
let base: String = {
    var template = Array((scratch + "/stockade-fuzz-layer-XXXXXX").utf8CString)
    guard let made = mkdtemp(&template) else { preconditionFailure("mkdtemp: \(errno)") }
    atexit { removeBeneathScratch(base) }
    return String(cString: made)
}()
let layout = try! ImageLayout.openOrCreate(base + "/layout")

func removeBeneathScratch(_ path: String) {
    let parent = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    try? LayerExtractor.remove(String(path.dropFirst(scratch.count + 1)), in: parent, path: path)
    close(parent)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let layer = try! layout.writeBlob(bytes, mediaType: MediaType.layer)
    let rootPath = base + "/root"
    precondition(mkdir(rootPath, 0o755) == 0, "mkdir \(rootPath): \(errno)")
    let root = open(rootPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    _ = try? LayerExtractor().extract(layer, from: layout, into: root, rootPath: rootPath)
    close(root)

    // Whatever the layer holds, it lands beneath the root or nowhere.
    let directory = opendir(base)!
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        precondition([".", "..", "layout", "root"].contains(name), "the layer wrote \(base)/\(name)")
    }
    closedir(directory)
    removeBeneathScratch(rootPath)
    removeBeneathScratch(base + "/layout/blobs/sha256/" + layer.digest.hex)
    return 0
}
