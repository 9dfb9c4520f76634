import Glibc

/// Test hook: with `STOCKADE_FAULT=<name>` in its environment, stockade SIGKILLs itself when it
/// reaches that point, so the tests can show what a crash there leaves. Killing oneself needs no
/// privilege and grants nothing, so the hook stays in the product; unset, it costs one comparison.
public enum FaultPoint: String, CaseIterable, Sendable {
    /// A detect sandbox is running: it has written its first output.
    case detect
    /// A build sandbox is running: it has written its first output.
    case build
    /// Export: blobs are in the output layout, the app layer is written but not yet linked in.
    case exportLayer = "export-layer"
    /// A layout's new `index.json` is written and synced under a temporary name, not yet renamed.
    case indexRename = "index-rename"
    /// Cache save: the new blobs are in, the tag has not moved.
    case cacheBlobsWritten = "cache-blobs-written"
    /// Cache save: the tag has moved, the old blobs are not yet deleted.
    case cacheTagMoved = "cache-tag-moved"

    private static let selected: String? = getenv("STOCKADE_FAULT").map { String(cString: $0) }

    /// Dies here when this point is the one selected, saying so on stderr first.
    public func reached() {
        guard Self.selected == rawValue else { return }
        let line = Array("stockade: fault point \(rawValue): SIGKILL\n".utf8)
        _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        kill(getpid(), SIGKILL)
    }
}
