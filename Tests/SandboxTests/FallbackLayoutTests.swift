import Foundation
import Testing
@testable import Sandbox

/// How the fallback turns a plan's views into host paths: what is translated, what is not,
/// and what Landlock is told. (What the kernel then enforces: FallbackTests.)
@Suite struct FallbackLayoutTests {
    @Test func viewsBecomeTheHostPathsBehindThem() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("fallback-layout-\(UUID().uuidString)").path
        let app = base + "/app", own = base + "/own", other = base + "/other"
        for directory in [app, own, other] { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        defer { try? FileManager.default.removeItem(atPath: base) }
        let plan = SandboxPlan(command: ["/layers/own/bin/run", "/workspace/x", "--to=/workspace", "workspace"],
                               environment: ["PATH=/layers/own/bin:/layers/other/bin:/usr/bin", "HOME=/home/cnb", "TMPDIR=/elsewhere",
                                             "CNB_LAYERS_DIR=/layers/own", "NOTE=/workspaces"],
                               mounts: [.tmpfs(destination: "/layers"),
                                        .bind(source: app, destination: "/workspace", readOnly: false),
                                        .bind(source: own, destination: "/layers/own", readOnly: false),
                                        .bind(source: other, destination: "/layers/other", readOnly: true)],
                               workingDirectory: "/workspace", syscallFilter: .unconfined)
        let layout = try FallbackLayout.plan(plan, owner: nil)
        defer { FallbackLayout.removeScratch(layout.scratch) }

        #expect(layout.command == [own + "/bin/run", app + "/x", "--to=/workspace", "workspace"],
                "whole paths only; the longest view (/layers/own inside the /layers tmpfs) wins")
        #expect(layout.workingDirectory == app)
        let environment = Dictionary(layout.environment.map { entry -> (String, String) in
            let eq = entry.firstIndex(of: "=")!
            return (String(entry[..<eq]), String(entry[entry.index(after: eq)...]))
        }, uniquingKeysWith: { _, last in last })
        #expect(environment["PATH"] == "\(own)/bin:\(other)/bin:/usr/bin", "each part of a list")
        #expect(environment["CNB_LAYERS_DIR"] == own)
        #expect(environment["NOTE"] == "/workspaces", "a longer name is not beneath the view")
        let home = try #require(environment["HOME"]), tmp = try #require(environment["TMPDIR"])
        #expect(home.hasPrefix(layout.scratch + "/") && tmp.hasPrefix(layout.scratch + "/") && home != tmp)
        #expect(layout.environment.filter { $0.hasPrefix("TMPDIR=") }.count == 1)
        #expect(layout.searchPath == environment["PATH"])

        #expect(Set([app, own, home, tmp]).isSubset(of: Set(layout.writable)), "\(layout.writable)")
        #expect(!layout.writable.contains(other) && layout.readable.contains(other), "a read-only view is read-only")
        #expect(layout.readable.contains("/usr") && !layout.readable.contains("/") && !layout.readable.contains("/etc"))
        #expect(!layout.readable.contains("/etc/shadow") && layout.readable.contains("/etc/passwd"))
    }

    @Test func aRootFilesystemNeedsNamespaces() throws {
        let plan = SandboxPlan(command: ["/bin/true"], rootfs: "/", syscallFilter: .unconfined)
        #expect(throws: SandboxError.self) { try FallbackLayout.plan(plan, owner: nil) }
        do {
            _ = try FallbackLayout.plan(plan, owner: nil)
        } catch {
            #expect(error.kind == .userNamespacesUnavailable && error.message.contains("root filesystem"))
        }
    }

    @Test func asRootTheStackUserIsNeverRoot() throws {
        let plan = SandboxPlan(command: ["/bin/true"], user: StackUser(uid: 0, gid: 0), syscallFilter: .unconfined)
        do {
            _ = try FallbackLayout.plan(plan, owner: (0, 0))
            Issue.record("stack user 0 was accepted")
        } catch {
            #expect(error.kind == .userNamespacesUnavailable && error.message.contains("host's root"))
        }
    }
}
