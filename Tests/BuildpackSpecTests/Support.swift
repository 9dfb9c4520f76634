import Foundation
import Glibc
import Testing
@testable import BuildpackSpec

/// A real temporary directory, removed when the value goes away.
final class TemporaryDirectory {
    let path: String

    init() {
        var template = Array((NSTemporaryDirectory() + "/buildpackspec-test.XXXXXX").utf8CString)
        let result = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(result != nil, "mkdtemp failed")
        path = String(cString: result!)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func url(_ relative: String) -> URL { URL(fileURLWithPath: path).appendingPathComponent(relative) }
    func absolute(_ relative: String) -> String { relative.isEmpty ? path : path + "/" + relative }

    @discardableResult
    func write(_ relative: String, _ text: String) -> String {
        write(relative, bytes: Array(text.utf8))
    }

    @discardableResult
    func write(_ relative: String, bytes: [UInt8]) -> String {
        let full = absolute(relative)
        try! FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: full, contents: Data(bytes))
        return full
    }

    func mkdir(_ relative: String) {
        try! FileManager.default.createDirectory(atPath: absolute(relative), withIntermediateDirectories: true)
    }

    func symlink(_ relative: String, to target: String) {
        let full = absolute(relative)
        try! FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        precondition(Glibc.symlink(target, full) == 0)
    }

    func mkfifo(_ relative: String) {
        precondition(Glibc.mkfifo(absolute(relative), 0o644) == 0)
    }

    func read(_ relative: String) -> String? {
        guard let data = FileManager.default.contents(atPath: absolute(relative)) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    func confined(_ relative: String = "") throws(SpecError) -> ConfinedDirectory {
        try ConfinedDirectory(path: absolute(relative))
    }
}

/// The test fixtures in `Tests/Fixtures/buildpackspec`.
enum Fixtures {
    static let root: String = {
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/buildpackspec").path
    }()

    static func directory(_ relative: String = "") throws(SpecError) -> ConfinedDirectory {
        try ConfinedDirectory(path: relative.isEmpty ? root : root + "/" + relative)
    }
}

/// Runs `body` and returns the `SpecError` it throws (failing the test if it throws nothing).
func specError<T>(_ body: () throws(SpecError) -> T, sourceLocation: SourceLocation = #_sourceLocation) -> SpecError? {
    do {
        _ = try body()
        Issue.record("expected a SpecError", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

extension GroupElement {
    static func bp(_ id: String, _ version: String = "v1", optional: Bool = false) -> GroupElement {
        GroupElement(id: id, version: version, optional: optional)
    }
}

extension DetectPlan {
    static func plan(provides: [String] = [], requires: [String] = [], or: [DetectPlan.Sections] = []) -> DetectPlan {
        DetectPlan(provides: provides.map(Provide.init), requires: requires.map { Require(name: $0) }, or: or)
    }
}

extension DetectPlan.Sections {
    static func sections(provides: [String] = [], requires: [String] = []) -> DetectPlan.Sections {
        DetectPlan.Sections(provides: provides.map(Provide.init), requires: requires.map { Require(name: $0) })
    }
}
