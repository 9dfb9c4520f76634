import CLinux
import Foundation
import Glibc
import SystemCalls
import Synchronization
import SystemPackage
import Testing

/// The system-call layer on real files and directories.
@Suite("system calls")
final class SystemCallsTests {
    let directory: String = {
        var template = Array((NSTemporaryDirectory() + "/systemcalls-test.XXXXXX").utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }()

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    func open(_ path: String, _ flags: Int32 = O_RDONLY | O_CLOEXEC) throws -> FileDescriptor {
        FileDescriptor(rawValue: try systemCall { Glibc.open(path, flags) }.get())
    }

    @Test func readAllStopsPastTheLimit() throws {
        let file = directory + "/data"
        try Data(repeating: 0x61, count: 300_000).write(to: URL(fileURLWithPath: file))
        let fd = try open(file)
        defer { try? fd.close() }
        let bounded = try fd.readAll(limit: 100_000, chunk: 4096)
        #expect(bounded.exceeded)
        #expect(bounded.bytes.count > 100_000 && bounded.bytes.count <= 100_000 + 4096)
        // The same file under a limit it fits: all of it, not exceeded.
        let whole = try open(file)
        defer { try? whole.close() }
        let all = try whole.readAll(limit: 300_000)
        #expect(!all.exceeded && all.bytes.count == 300_000)
    }

    @Test func directoryEntriesAreSortedRawAndBounded() throws {
        for name in ["b", "a", "c"] { FileManager.default.createFile(atPath: directory + "/" + name, contents: nil) }
        // A name that is not UTF-8 comes back as its bytes.
        let raw: [UInt8] = Array((directory + "/").utf8) + [0xFF, 0x41, 0]
        let made = raw.withUnsafeBufferPointer { Glibc.open(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), O_CREAT | O_WRONLY | O_CLOEXEC, 0o600) }
        #expect(made >= 0)
        close(made)
        let fd = try open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { try? fd.close() }
        let entries = try fd.directoryEntries()
        #expect(entries.map(\.bytes) == [[0x61], [0x62], [0x63], [0xFF, 0x41]])
        #expect(entries.allSatisfy { $0.type == UInt8(DT_REG) })
        // A second read of the same descriptor starts from the beginning again.
        #expect(try fd.directoryEntries().count == 4)
        #expect(throws: Errno.fileTooLarge) { try fd.directoryEntries(limit: 3) }
    }

    @Test func openat2BeneathRefusesToClimbOut() throws {
        let fd = try open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { try? fd.close() }
        #expect(throws: Errno.improperLink) {
            try fd.openat2("..", flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC, resolve: RESOLVE_BENEATH)
        }
        // Control: without the confinement the same path opens.
        let parent = try fd.openat2("..", flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC, resolve: 0)
        try parent.close()
    }

    @Test func aTemporaryFileAppearsWholeUnderItsName() throws {
        let dir = try open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { try? dir.close() }
        let file = FileDescriptor(rawValue: try systemCall { openat(dir.rawValue, ".", LinuxFlags.O_TMPFILE | O_WRONLY | O_CLOEXEC, 0o644) }.get())
        defer { try? file.close() }
        try file.writeAll(Array("whole".utf8))
        #expect(!FileManager.default.fileExists(atPath: directory + "/named"))
        try file.linkTemporaryFile(as: "named", in: dir)
        #expect(try String(contentsOfFile: directory + "/named", encoding: .utf8) == "whole")
        #expect(throws: Errno.fileExists) { try file.linkTemporaryFile(as: "named", in: dir) }
    }

    @Test func removeTreeFollowsNoLinkAndTakesReadOnlyDirectoriesAndRawNames() throws {
        // Outside the tree: what its links point at must survive.
        let outside = directory + "/outside"
        try FileManager.default.createDirectory(atPath: outside + "/kept", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: outside + "/kept/file", contents: Data("x".utf8))
        let tree = directory + "/tree"
        try FileManager.default.createDirectory(atPath: tree + "/a/b", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: tree + "/a/b/file", contents: Data("y".utf8))
        try FileManager.default.createSymbolicLink(atPath: tree + "/a/toDirectory", withDestinationPath: outside + "/kept")
        try FileManager.default.createSymbolicLink(atPath: tree + "/toFile", withDestinationPath: outside + "/kept/file")
        #expect(mkfifo(tree + "/a/fifo", 0o600) == 0)
        // A name that is not UTF-8, in a directory its owner made read-only.
        let raw: [UInt8] = Array((tree + "/a/b/").utf8) + [0xFF, 0x41, 0]
        let made = raw.withUnsafeBufferPointer { Glibc.open(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), O_CREAT | O_WRONLY | O_CLOEXEC, 0o600) }
        #expect(made >= 0)
        close(made)
        #expect(chmod(tree + "/a/b", 0o500) == 0)
        try removeTree(atPath: tree)
        #expect(!FileManager.default.fileExists(atPath: tree))
        #expect(try String(contentsOfFile: outside + "/kept/file", encoding: .utf8) == "x")
        // Gone already: nothing to do, not an error.
        try removeTree(atPath: tree)
        // A link at the top is removed as itself.
        try FileManager.default.createSymbolicLink(atPath: tree, withDestinationPath: outside)
        try removeTree(atPath: tree)
        #expect(FileManager.default.fileExists(atPath: outside + "/kept/file"))
    }

    @Test func removeTreeRefusesATreeDeeperThanAnyPath() throws {
        let dir = try open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { try? dir.close() }
        // 2049 levels, made through descriptors since no path reaches that deep.
        #expect(mkdirat(dir.rawValue, "d", 0o700) == 0)
        var level = try systemCall { openat(dir.rawValue, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }.get()
        var middle: Int32 = -1
        for depth in 1...2048 {
            #expect(mkdirat(level, "d", 0o700) == 0)
            let next = try systemCall { openat(level, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }.get()
            if depth == 1024 { middle = level } else { close(level) }
            level = next
        }
        close(level)
        #expect(throws: FileError("open", directory + "/d" + String(repeating: "/d", count: 2048), .fileNameTooLong)) {
            try dir.removeTree("d", path: directory + "/d")
        }
        // Control: cut in two at half depth, each half goes.
        #expect(renameat(middle, "d", dir.rawValue, "lower") == 0)
        close(middle)
        try dir.removeTree("lower", path: directory + "/lower")
        try dir.removeTree("d", path: directory + "/d")
        #expect(try dir.directoryEntries().isEmpty)
    }

    @Test func aSharedLibraryGivesItsFunctionsAndSaysWhatIsMissing() throws {
        let libc = try SharedLibrary("libc.so.6")
        let processID = try libc.symbol("getpid", as: (@convention(c) () -> Int32).self)
        #expect(processID() == getpid())
        do {
            _ = try libc.symbol("stockade_no_such_function", as: (@convention(c) () -> Void).self)
            Issue.record("a function that does not exist was found")
        } catch {
            #expect(error.message.contains("stockade_no_such_function"))
        }
        do {
            _ = try SharedLibrary("libstockade-absent.so.1")
            Issue.record("a library that does not exist was loaded")
        } catch {
            #expect(error.message.contains("libstockade-absent.so.1"))
        }
    }

    @Test func theWorkingDirectoryMakesPathsAbsolute() throws {
        let here = FileManager.default.currentDirectoryPath
        #expect(try currentDirectory() == here)
        #expect(absolutePath("a/b") == here + "/a/b")
        #expect(absolutePath("/a/b") == "/a/b")
    }

    /// Whether a rename lands inside a walk is chance, so each retried call runs beside a bare one
    /// under the same race, until the bare ones have met EAGAIN 50 times (a count, not a time):
    /// without the retry the retried calls would have met it about as often. A run in which the
    /// race never happens fails rather than passing untested. Eight `..`: a walk of a realistic
    /// length (with sixty-four, a tight rename loop can refuse hundreds of walks in a row).
    @Test func openat2RetriesWhenARenameRacesItsWalk() throws {
        let dir = try open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { try? dir.close() }
        #expect(mkdirat(dir.rawValue, "sub", 0o700) == 0)
        #expect(mkdirat(dir.rawValue, "moving", 0o700) == 0)
        // Every `..` is a point where the kernel checks whether a rename raced the walk.
        let path = Array(repeating: "sub/..", count: 8).joined(separator: "/") + "/sub"
        final class Flag: Sendable { let raised = Atomic<Bool>(false) }
        let stop = Flag()
        let renamer = DispatchGroup()
        let raw = dir.rawValue
        DispatchQueue.global().async(group: renamer) {
            while !stop.raised.load(ordering: .relaxed) {
                renameat(raw, "moving", raw, "moved")
                renameat(raw, "moved", raw, "moving")
            }
        }
        defer {
            stop.raised.store(true, ordering: .relaxed)
            renamer.wait()
        }
        var how = open_how()
        how.flags = UInt64(O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        how.resolve = UInt64(RESOLVE_BENEATH)
        var raced = 0
        for _ in 0..<1_000_000 where raced < 50 {
            let bare = clinux_openat2(dir.rawValue, path, &how)
            if bare >= 0 { close(bare) } else if errno == EAGAIN { raced += 1 }
            try dir.openat2(path, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC, resolve: RESOLVE_BENEATH).close()
        }
        #expect(raced > 0, "no rename raced a bare walk: the retry went untested")
    }

    @Test func aFailedCallCarriesItsErrno() {
        let result = systemCall { Glibc.open("/nonexistent/stockade", O_RDONLY) }
        #expect(result == .failure(.noSuchFileOrDirectory))
        #expect(SearchPath.default.split(separator: ":").contains("/usr/bin"))
    }
}
