import Foundation
import Testing

/// Who starts stockade. The suite's own user always; when that is root, also
/// two unprivileged host users, because both are real deployments: one with
/// a subordinate id range (newuidmap) and one without.
public enum Invoker: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case suiteUser
    case subordinateUser
    case plainUser

    public var testDescription: String { rawValue }

    static let subordinateName = "stockade-sub"
    static let plainName = "stockade-plain"
    /// Far from useradd's automatic allocations, so the test range is ours alone.
    static let subordinateStart: UInt32 = 300_000_000

    /// Every invoker, always: a test case whose invoker cannot run here is skipped with the
    /// reason in the output (`requireAvailable`), never left out in silence.
    public static var all: [Invoker] { allCases }

    /// Skips (cancels) the current test case when this invoker cannot run here: only a suite
    /// running as root can create the unprivileged users and their id ranges.
    public func requireAvailable() throws {
        guard self == .suiteUser || Fixture.shared.isRoot else {
            let user = self == .subordinateUser ? Self.subordinateName : Self.plainName
            try skip("the \(rawValue) invoker (\(user)) is created only when the suite runs as root")
        }
    }

    /// The host uid that the stack user 1000 shows up as for this invoker.
    public var hostStackUID: UInt32 {
        switch self {
        case .suiteUser: Fixture.shared.isRoot ? 0x7FFF_0000 + 1000 : (Self.ownSubordinateStart().map { $0 + 1000 } ?? getuid())
        case .subordinateUser: Self.subordinateStart + 1000
        case .plainUser: Fixture.shared.plainUID
        }
    }

    /// The start of the running user's own range in /etc/subuid, when the suite runs as a user with one.
    static func ownSubordinateStart() -> UInt32? {
        guard access("/usr/bin/newuidmap", X_OK) == 0, let entry = getpwuid(getuid()),
              let text = try? String(contentsOfFile: "/etc/subuid", encoding: .utf8) else { return nil }
        let names = [String(cString: entry.pointee.pw_name), String(getuid())]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":")
            if fields.count == 3, names.contains(String(fields[0])), let start = UInt32(fields[1]) { return start }
        }
        return nil
    }

    /// argv prefix that runs a program as this invoker, with no supplementary groups.
    public var prefix: [String] {
        switch self {
        case .suiteUser: []
        case .subordinateUser: ["setpriv", "--reuid=\(Self.subordinateName)", "--regid=\(Self.subordinateName)", "--clear-groups", "--"]
        case .plainUser: ["setpriv", "--reuid=\(Self.plainName)", "--regid=\(Self.plainName)", "--clear-groups", "--"]
        }
    }
}

/// Skips the current test, or test case when parameterized, saying why: a warning in the
/// output (a cancellation alone shows as a pass), then the cancellation.
public func skip(_ reason: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Never {
    Issue.record(Comment(rawValue: "skipped: " + reason), severity: .warning, sourceLocation: sourceLocation)
    try Test.cancel(Comment(rawValue: "skipped: " + reason), sourceLocation: sourceLocation)
}

public struct Outcome: CustomStringConvertible, Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }

    public var lines: [String] { stdout.split(separator: "\n").map(String.init) }
    public var description: String { "status \(status)\nstdout:\n\(stdout)\nstderr:\n\(stderr)" }

    /// `probe` output as name → result.
    public var probes: [String: String] {
        var result: [String: String] = [:]
        for line in lines {
            guard let colon = line.range(of: ": ") else { continue }
            result[String(line[..<colon.lowerBound])] = String(line[colon.upperBound...])
        }
        return result
    }
}

/// Built once per test process: a world-readable copy of stockade, a static
/// probe binary, the unprivileged users when running as root.
public final class Fixture: Sendable {
    public static let shared = Fixture()

    public let dir: String
    public let stockade: String
    public let probe: String
    /// The static launcher that exported images carry, beside `stockade`.
    public let launcher: String
    public let isRoot: Bool
    public let plainUID: UInt32
    public let repo: String
    /// A copy of the repository's examples readable by every invoker: the
    /// checkout itself may sit in a directory only its owner can enter.
    public let examples: String

    private init() {
        isRoot = geteuid() == 0
        repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let fm = FileManager.default
        let base = fm.temporaryDirectory.appendingPathComponent("stockade-tests-\(getpid())").path
        try? fm.removeItem(atPath: base)
        try! fm.createDirectory(atPath: base, withIntermediateDirectories: true)
        chmod(base, 0o755)
        dir = base
        let exe = (try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        // CI runs some suites again against the release binary, built with other optimizations.
        let built = ProcessInfo.processInfo.environment["STOCKADE_UNDER_TEST"].map { URL(fileURLWithPath: $0).standardizedFileURL.path }
            ?? URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("stockade").path
        stockade = base + "/stockade"
        try! fm.copyItem(atPath: built, toPath: stockade)
        chmod(stockade, 0o755)
        // Exported images take the launcher from beside the stockade binary.
        let builtLauncher = URL(fileURLWithPath: built).deletingLastPathComponent().appendingPathComponent("stockade-launcher").path
        precondition(fm.fileExists(atPath: builtLauncher),
                     "\(builtLauncher) is missing: `swift build --product stockade-launcher` first (make test does)")
        launcher = base + "/stockade-launcher"
        try! fm.copyItem(atPath: builtLauncher, toPath: launcher)
        chmod(launcher, 0o755)
        probe = base + "/probe"
        let cc = Fixture.run(["cc", "-static", "-O1", "-o", probe, repo + "/Tests/Fixtures/probe.c"])
        precondition(cc.status == 0, "cannot build the probe: \(cc)")
        chmod(probe, 0o755)
        examples = base + "/examples"
        let copied = Fixture.run(["cp", "-R", repo + "/examples", examples])
        precondition(copied.status == 0, "cannot copy the examples: \(copied)")
        _ = Fixture.run(["chmod", "-R", "a+rX", examples])
        var plain: UInt32 = 0
        if isRoot {
            Fixture.ensureUser(Invoker.subordinateName)
            Fixture.ensureUser(Invoker.plainName)
            Fixture.setSubordinateRange(for: Invoker.subordinateName, start: Invoker.subordinateStart)
            Fixture.setSubordinateRange(for: Invoker.plainName, start: nil)
            plain = UInt32(Fixture.run(["id", "-u", Invoker.plainName]).stdout.trimmingCharacters(in: .whitespacesAndNewlines))!
        }
        plainUID = plain
        // The shared fixture lives as long as the test process.
        atexit { try? FileManager.default.removeItem(atPath: Fixture.shared.dir) }
    }

    private static func ensureUser(_ name: String) {
        if run(["id", "-u", name]).status != 0 {
            let r = run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
            precondition(r.status == 0, "useradd \(name): \(r)")
        }
    }

    /// Rewrites the user's lines in /etc/subuid and /etc/subgid: one range, or none.
    private static func setSubordinateRange(for name: String, start: UInt32?) {
        for file in ["/etc/subuid", "/etc/subgid"] {
            let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            var lines = text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix(name + ":") }
            if let start { lines.append("\(name):\(start):65536") }
            try! (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
            chmod(file, 0o644)
        }
    }

    /// A fresh directory under the fixture, readable by every invoker.
    public func makeDirectory(_ name: String, mode: mode_t = 0o755) -> String {
        let path = dir + "/" + name + "-" + UUID().uuidString.prefix(8)
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, mode)
        return path
    }

    public static func run(_ argv: [String], stdinFD: Int32? = nil) -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = argv
        let out = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        let err = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out); try? FileManager.default.removeItem(at: err) }
        process.standardOutput = try! FileHandle(forWritingTo: out)
        process.standardError = try! FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        try! process.run()
        process.waitUntilExit()
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return Outcome(status: status,
                       stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                       stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    /// `stockade ARGS` as `invoker`.
    public func stockade(_ args: [String], as invoker: Invoker) -> Outcome {
        Fixture.run(invoker.prefix + [stockade] + args)
    }

    /// `stockade exec OPTIONS -- COMMAND` with the probe at /probe.
    public func exec(_ options: [String] = [], _ command: [String], as invoker: Invoker) -> Outcome {
        stockade(["exec", "--ro-bind", "\(probe):/probe"] + options + ["--"] + command, as: invoker)
    }

    /// Host processes whose command line mentions `marker`.
    public static func processes(mentioning marker: String) -> [String] {
        let fm = FileManager.default
        var found: [String] = []
        for entry in (try? fm.contentsOfDirectory(atPath: "/proc")) ?? [] where Int(entry) != nil {
            guard let data = fm.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let line = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            if line.contains(marker) && !line.contains("stockade") && !line.contains("setpriv") { found.append("\(entry): \(line)") }
        }
        return found
    }

    public func owner(of path: String) -> UInt32? {
        var st = stat()
        return stat(path, &st) == 0 ? st.st_uid : nil
    }
}
