import Foundation
import StockadeTestSupport
import Testing

/// Each failure a person can cause: one line on stderr and its own exit code.
@Suite struct ErrorTests {
    let fx = Fixture.shared

    func expectOneLine(_ r: Outcome, status: Int32, mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == status, "\(r)", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("stockade: error: ") && r.stderr.contains(text), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
    }

    @Test(arguments: Invoker.all)
    func commandNotFoundOrNotExecutable(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        expectOneLine(fx.exec([], ["no-such-command"], as: invoker), status: 127, mentioning: "command not found in the sandbox: no-such-command")
        expectOneLine(fx.exec([], ["/no/such/path"], as: invoker), status: 127, mentioning: "/no/such/path")
        expectOneLine(fx.exec([], ["/etc/passwd"], as: invoker), status: 126, mentioning: "cannot execute /etc/passwd")
    }

    @Test(arguments: Invoker.all)
    func missingPaths(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        expectOneLine(fx.stockade(["exec", "--rootfs", "/no/rootfs", "--", "true"], as: invoker), status: 66, mentioning: "rootfs /no/rootfs")
        expectOneLine(fx.stockade(["exec", "--bind", "/no/source:/x", "--", "true"], as: invoker), status: 66, mentioning: "bind source /no/source")
        expectOneLine(fx.stockade(["exec", "--chdir", "/nowhere", "--", "/bin/true"], as: invoker), status: 66, mentioning: "working directory /nowhere")
        expectOneLine(fx.stockade(["exec", "--profile", "/no/profile.json", "--", "true"], as: invoker), status: 66, mentioning: "/no/profile.json")
    }

    @Test func invalidProfilesNameTheFileAndThePath() throws {
        let dir = fx.makeDirectory("profiles")
        let bad = dir + "/bad.json"
        try #"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOPE"}]}"#
            .write(toFile: bad, atomically: true, encoding: .utf8)
        expectOneLine(fx.stockade(["exec", "--profile", bad, "--", "/bin/true"], as: .suiteUser), status: 65, mentioning: "\(bad): $.syscalls[0].action")
        let broken = dir + "/broken.json"
        try #"{"defaultAction": "#.write(toFile: broken, atomically: true, encoding: .utf8)
        expectOneLine(fx.stockade(["exec", "--profile", broken, "--", "/bin/true"], as: .suiteUser), status: 65, mentioning: broken)
    }

    @Test func unknownSyscallNamesWarnAndAreSkipped() throws {
        let dir = fx.makeDirectory("profiles")
        let profile = dir + "/unknown.json"
        let builtin = try String(contentsOfFile: fx.repo + "/profiles/default.json", encoding: .utf8)
        try builtin.replacingOccurrences(of: "\"getpid\"", with: "\"getpid\", \"no_such_syscall\"")
            .write(toFile: profile, atomically: true, encoding: .utf8)
        let r = fx.stockade(["exec", "--profile", profile, "--", "/bin/true"], as: .suiteUser)
        #expect(r.status == 0, "\(r)")
        #expect(r.stderr.contains("stockade: warning: ") && r.stderr.contains("no_such_syscall"), "\(r)")
    }

    @Test func unconfinedWarns() {
        let r = fx.stockade(["exec", "--profile", "unconfined", "--", "/bin/true"], as: .suiteUser)
        #expect(r.status == 0)
        #expect(r.stderr.hasPrefix("stockade: warning: --profile unconfined"))
    }

    @Test func badUsageExits64() {
        let r = fx.stockade(["exec", "--user", "cnb", "--", "/bin/true"], as: .suiteUser)
        #expect(r.status == 64, "\(r)")
        #expect(r.stderr.contains("--user takes UID:GID"))
        #expect(fx.stockade(["exec"], as: .suiteUser).status == 64)
        #expect(fx.stockade(["exec", "--bind", "/tmp:/proc/x", "--", "/bin/true"], as: .suiteUser).status == 64)
    }

    /// A user namespace whose max_user_namespaces is 0 stands in for a host
    /// that disabled them; root can arrange that without touching the host.
    /// Without --require-namespaces the fallback runs instead (FallbackTests); here
    /// only root is mapped, so it cannot become the stack user and says so.
    @Test(.enabled(if: Fixture.shared.isRoot, "needs root to create the restricted user namespace"))
    func userNamespacesDisabledNamesTheSysctl() throws {
        func run(_ options: String) -> Outcome {
            Fixture.run(["unshare", "--user", "--map-root-user", "/bin/sh", "-c",
                         "echo 0 > /proc/sys/user/max_user_namespaces && exec '\(fx.stockade)' exec \(options) -- /bin/true"])
        }
        expectOneLine(run("--require-namespaces"), status: 69, mentioning: "user.max_user_namespaces")
        let fallback = run("")
        #expect(fallback.status == 77 && fallback.stderr.contains("stack user 1000:1000 has no id in this process's user namespace"),
                "\(fallback)")
    }
}
