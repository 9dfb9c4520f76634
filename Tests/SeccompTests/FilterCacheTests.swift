import Glibc
import Testing
@testable import Seccomp
import JSON

/// The on-disk cache of compiled filters hands back only what was compiled
/// from the very same bytes, and only from files nobody else could write.
@Suite final class FilterCacheTests {
    let directory: String
    let cache: FilterCache

    init() {
        var template = Array("/tmp/stockade-cache-XXXXXX".utf8CString)
        directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        cache = FilterCache(directory: directory + "/nested/seccomp")
    }

    deinit {
        chmod(cache.directory, 0o700)
        for name in ["/nested/seccomp", "/nested", ""] {
            if let dir = opendir(directory + name), name == "/nested/seccomp" {
                while let entry = readdir(dir) {
                    let file = withUnsafePointer(to: &entry.pointee.d_name) {
                        $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                    }
                    unlink(directory + name + "/" + file)
                }
                closedir(dir)
            }
            rmdir(directory + name)
        }
    }

    func compile(_ source: ProfileSource, counting calls: inout Int) throws -> CompiledProfile {
        try cache.compiled(kind: "profile", source: source.bytes) { () throws(ProfileLoadError) in
            calls += 1
            return try SeccompCompiler.compile(source, cache: nil)
        }
    }

    @Test func aSecondCompileOfTheSameBytesIsServedFromDisk() throws {
        let source = try ProfileSource.resolve("default")
        var calls = 0
        let first = try compile(source, counting: &calls)
        let second = try compile(source, counting: &calls)
        #expect(calls == 1)
        #expect(second.program == first.program && second.warnings == first.warnings && second.filterFlags == first.filterFlags)
        var st = stat()
        #expect(stat(cache.directory, &st) == 0 && st.st_mode & 0o777 == 0o700)
    }

    @Test func differentBytesNeverShareAnEntry() throws {
        let strict = try ProfileSource.resolve("strict")
        let standard = try ProfileSource.resolve("default")
        var calls = 0
        let a = try compile(strict, counting: &calls)
        // Plant the strict entry under the default profile's file name: a
        // colliding name must still be a miss, because the key is compared whole.
        let strictName = FilterCache.fileName(FilterCache.key(kind: "profile", source: strict.bytes))
        let defaultName = FilterCache.fileName(FilterCache.key(kind: "profile", source: standard.bytes))
        #expect(rename(cache.directory + "/" + strictName, cache.directory + "/" + defaultName) == 0)
        let b = try compile(standard, counting: &calls)
        #expect(calls == 2)
        #expect(a.program != b.program)
    }

    @Test func entriesOthersCouldWriteAreIgnored() throws {
        let source = try ProfileSource.resolve("strict")
        var calls = 0
        _ = try compile(source, counting: &calls)
        let name = cache.directory + "/" + FilterCache.fileName(FilterCache.key(kind: "profile", source: source.bytes))
        chmod(name, 0o622)
        _ = try compile(source, counting: &calls)
        #expect(calls == 2, "a group- or world-writable entry is not trusted")
        chmod(cache.directory, 0o777)
        _ = try compile(source, counting: &calls)
        _ = try compile(source, counting: &calls)
        #expect(calls == 4, "nor is any entry in a directory others can write")
    }

    @Test func aCorruptEntryIsAMissNotAnError() throws {
        let source = try ProfileSource.resolve("strict")
        var calls = 0
        _ = try compile(source, counting: &calls)
        let name = cache.directory + "/" + FilterCache.fileName(FilterCache.key(kind: "profile", source: source.bytes))
        #expect(truncate(name, 100) == 0)
        let again = try compile(source, counting: &calls)
        #expect(calls == 2 && again.program.instructionCount > 0)
    }

    @Test func anUnwritableCacheOnlyCostsTime() throws {
        let readOnly = FilterCache(directory: "/proc/stockade-cannot-be-here")
        let source = try ProfileSource.resolve("strict")
        let compiled = try readOnly.compiled(kind: "profile", source: source.bytes) { () throws(ProfileLoadError) in
            try SeccompCompiler.compile(source, cache: nil)
        }
        #expect(compiled.program.instructionCount > 0)
    }
}
