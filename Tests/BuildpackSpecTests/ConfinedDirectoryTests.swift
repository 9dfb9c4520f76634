import Foundation
import Glibc
import Testing
@testable import BuildpackSpec

@Suite("Confined file access")
struct ConfinedDirectoryTests {
    @Test func readsRegularFiles() throws {
        let tmp = TemporaryDirectory()
        tmp.write("root/a/b/file.toml", "x = 1\n")
        let root = try tmp.confined("root")
        #expect(try root.readFile("a/b/file.toml") == Array("x = 1\n".utf8))
        #expect(try root.readText("a/b/file.toml") == "x = 1\n")
        #expect(try root.readFileIfPresent("a/b/missing") == nil)
        #expect(try root.kind(of: "a/b/file.toml") == .regular)
        #expect(try root.kind(of: "a/b") == .directory)
        #expect(try root.kind(of: "a/missing/x") == nil)
        let sub = try root.subdirectory("a/b")
        #expect(sub.path == tmp.absolute("root/a/b"))
        #expect(try sub.readText("file.toml") == "x = 1\n")
    }

    @Test(arguments: ["", "/etc/passwd", "../x", "a/../b", "./a", "a/.", "a//b", "a/", "a\u{0}b", "..", "."])
    func rejectsUnsafePaths(path: String) throws {
        let tmp = TemporaryDirectory()
        tmp.write("root/a", "x")
        let root = try tmp.confined("root")
        let error = specError { () throws(SpecError) in try root.readFile(path) }
        #expect(error?.kind == .invalidPath, "\(path.debugDescription): \(String(describing: error))")
        #expect(specError { () throws(SpecError) in try root.writeFile(path, contents: []) }?.kind == .invalidPath)
    }

    @Test func refusesASymlinkPointingOutsideTheRoot() throws {
        let tmp = TemporaryDirectory()
        tmp.write("secret", "top secret")
        tmp.mkdir("root")
        tmp.symlink("root/link.toml", to: tmp.absolute("secret"))
        tmp.symlink("root/relative.toml", to: "../secret")
        let root = try tmp.confined("root")
        for name in ["link.toml", "relative.toml"] {
            let error = specError { () throws(SpecError) in try root.readFile(name) }
            #expect(error?.kind == .notRegularFile)
            #expect(error?.message.contains("symbolic link") == true)
            #expect(error?.description.contains(name) == true)
        }
        #expect(try root.kind(of: "link.toml") == .symlink)
    }

    @Test func refusesASymlinkInsideThePath() throws {
        let tmp = TemporaryDirectory()
        tmp.write("outside/file.toml", "x = 1")
        tmp.write("root/real/file.toml", "y = 2")
        tmp.symlink("root/escape", to: tmp.absolute("outside"))
        tmp.symlink("root/inside", to: "real")
        let root = try tmp.confined("root")
        for path in ["escape/file.toml", "inside/file.toml"] {
            let error = specError { () throws(SpecError) in try root.readFile(path) }
            #expect(error?.kind == .notRegularFile, "\(path): \(String(describing: error))")
            #expect(error?.message.contains("symbolic link") == true)
        }
        #expect(specError { () throws(SpecError) in try root.subdirectory("escape") }?.kind == .notRegularFile)
        #expect(specError { () throws(SpecError) in try root.entries("escape") }?.kind == .notRegularFile)
        #expect(specError { () throws(SpecError) in try root.writeFile("escape/new", contents: [1]) }?.kind == .notRegularFile)
        #expect(specError { () throws(SpecError) in try root.createDirectory("escape/new") }?.kind == .notRegularFile)
        #expect(FileManager.default.fileExists(atPath: tmp.absolute("outside/new")) == false)
    }

    @Test(.timeLimit(.minutes(5)))
    func refusesAFIFOWithoutBlocking() throws {
        let tmp = TemporaryDirectory()
        tmp.mkdir("root")
        tmp.mkfifo("root/fifo.toml")
        let root = try tmp.confined("root")
        let error = specError { () throws(SpecError) in try root.readFile("fifo.toml") }
        #expect(error?.kind == .notRegularFile)
        #expect(error?.message.contains("FIFO") == true)
        #expect(try root.entries().map(\.kind) == [.fifo])
    }

    @Test(.enabled(if: geteuid() == 0, "creating a device node needs root"))
    func refusesADeviceNode() throws {
        let tmp = TemporaryDirectory()
        tmp.mkdir("root")
        // A copy of /dev/null (character device 1:3).
        let made = mknod(tmp.absolute("root/dev.toml"), S_IFCHR | 0o666, dev_t(259))  // makedev(1, 3)
        try #require(made == 0, "mknod failed: errno \(errno)")
        let root = try tmp.confined("root")
        let error = specError { () throws(SpecError) in try root.readFile("dev.toml") }
        #expect(error?.kind == .notRegularFile)
        #expect(error?.message.contains("character device") == true)
    }

    @Test func refusesASocket() throws {
        let tmp = TemporaryDirectory()
        tmp.mkdir("root")
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = tmp.absolute("root/sock")
        try #require(path.utf8.count < MemoryLayout.size(ofValue: address.sun_path))
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        let root = try tmp.confined("root")
        #expect(specError { () throws(SpecError) in try root.readFile("sock") }?.message.contains("socket") == true)
    }

    @Test(.timeLimit(.minutes(5)))
    func refusesA100MiBFileQuicklyWithoutReadingIt() throws {
        let tmp = TemporaryDirectory()
        tmp.mkdir("root")
        // A real 100 MiB file, written in 1 MiB chunks.
        let path = tmp.absolute("root/huge.toml")
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        try #require(fd >= 0)
        let chunk = [UInt8](repeating: 0x61, count: 1 << 20)
        for _ in 0..<100 { _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
        close(fd)
        let root = try tmp.confined("root")
        let start = ContinuousClock.now
        let error = specError { () throws(SpecError) in try root.readFile("huge.toml") }
        #expect(error?.kind == .tooLarge)
        #expect(error?.message.contains("10485760") == true)
        #expect(ContinuousClock.now - start < .seconds(1))
        // A smaller cap applies the same way; a file at the cap is fine.
        tmp.write("root/small", bytes: [UInt8](repeating: 1, count: 100))
        #expect(try root.readFile("small", limit: 100).count == 100)
        #expect(specError { () throws(SpecError) in try root.readFile("small", limit: 99) }?.kind == .tooLarge)
    }

    @Test func listsEntriesWithTheirKindsWithoutFollowing() throws {
        let tmp = TemporaryDirectory()
        tmp.write("root/b.toml", "")
        tmp.mkdir("root/a")
        tmp.symlink("root/c", to: "/etc")
        tmp.mkfifo("root/d")
        tmp.write("root/B", "")
        let root = try tmp.confined("root")
        let entries = try root.entries()
        #expect(entries.map(\.name) == ["B", "a", "b.toml", "c", "d"])  // byte order
        #expect(entries.map(\.kind) == [.regular, .directory, .regular, .symlink, .fifo])
        #expect(entries.allSatisfy { $0.hasValidName })
        #expect(specError { () throws(SpecError) in try root.entries(limit: 4) }?.kind == .tooLarge)
        #expect(specError { () throws(SpecError) in try root.entries("missing") }?.kind == .notFound)
    }

    @Test func reportsNamesThatAreNotUTF8() throws {
        let tmp = TemporaryDirectory()
        tmp.mkdir("root")
        let name: [UInt8] = Array(tmp.absolute("root/").utf8) + [0x66, 0xFF, 0x6F, 0]
        let fd = name.withUnsafeBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                open($0, O_WRONLY | O_CREAT, 0o644)
            }
        }
        try #require(fd >= 0)
        close(fd)
        let entries = try tmp.confined("root").entries()
        #expect(entries.count == 1)
        #expect(entries[0].hasValidName == false)
        #expect(entries[0].kind == .regular)
    }

    @Test func writesAtomicallyAndReplacesSymlinksWithoutFollowing() throws {
        let tmp = TemporaryDirectory()
        tmp.write("outside.txt", "original")
        tmp.mkdir("root/dir")
        tmp.symlink("root/dir/store.toml", to: tmp.absolute("outside.txt"))
        let root = try tmp.confined("root")
        try root.writeFile("dir/store.toml", contents: Array("[metadata]\n".utf8), mode: 0o600)
        #expect(tmp.read("outside.txt") == "original")
        #expect(try root.kind(of: "dir/store.toml") == .regular)
        #expect(tmp.read("root/dir/store.toml") == "[metadata]\n")
        var st = stat()
        #expect(stat(tmp.absolute("root/dir/store.toml"), &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        // No temporary files are left behind.
        #expect(try root.entries("dir").map(\.name) == ["store.toml"])
        // Replacing an existing file.
        try root.writeFile("dir/store.toml", contents: Array("x = 1\n".utf8))
        #expect(tmp.read("root/dir/store.toml") == "x = 1\n")
        // A directory at the target is not replaced.
        tmp.mkdir("root/dir/adir/inner")
        #expect(specError { () throws(SpecError) in try root.writeFile("dir/adir", contents: []) } != nil)
        #expect(try root.entries("dir").map(\.name) == ["adir", "store.toml"])
    }

    @Test func createsDirectoriesRenamesAndRemoves() throws {
        let tmp = TemporaryDirectory()
        tmp.mkdir("root")
        let root = try tmp.confined("root")
        try root.createDirectory("a/b/c")
        try root.createDirectory("a/b/c")  // existing is fine
        #expect(try root.kind(of: "a/b/c") == .directory)
        #expect(specError { () throws(SpecError) in try root.createDirectory("x/y", intermediates: false) }?.kind == .notFound)
        try root.writeFile("a/b/c/f", contents: [1, 2, 3])
        try root.rename("a/b/c", to: "a/b/c.ignore")
        #expect(try root.readFile("a/b/c.ignore/f") == [1, 2, 3])
        try root.remove("a/b/c.ignore/f")
        try root.remove("a/b/c.ignore", directory: true)
        #expect(try root.kind(of: "a/b/c.ignore") == nil)
    }

    /// The README's bound, through the scan of a buildpack's layers (which lists with the
    /// default limit): 100,000 entries are read, one more is that buildpack's error.
    /// The entries go to a tmpfs (/dev/shm): on a loaded disk creating them takes ten times longer.
    @Test func aDirectoryOfMoreThan100000EntriesIsRefused() throws {
        let path = "/dev/shm/stockade-entries-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let dir = try ConfinedDirectory(path: path)
        func create(_ name: String) throws {
            let fd = open(path + "/" + name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            try #require(fd >= 0, "create \(name): errno \(errno)")
            close(fd)
        }
        for i in 0..<99_999 { try create("f\(i)") }
        try create("ok.toml")
        #expect(try BuildpackLayers.scan(dir, buildpack: "t/bp@1").layers.map(\.name) == ["ok"])
        try create("one-more")
        let error = specError { () throws(SpecError) in try BuildpackLayers.scan(dir, buildpack: "t/bp@1") }
        #expect(error?.kind == .tooLarge && error?.message.contains("100001 entries, more than the limit of 100000") == true,
                "\(String(describing: error))")
    }
}
