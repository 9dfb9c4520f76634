import Foundation
import StockadeTestSupport
import Testing

/// `exec.d`: programs that run before the process and set variables through fd 3.
@Suite struct ExecDTests {
    @Test(arguments: Invoker.all)
    func execDOutputIsAppliedInOrderAndPerType(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let image = try LaunchImage(metadata: buildpack()
            + process("web", ["/usr/bin/env"]) + process("worker", ["/usr/bin/env"]))
        try image.write("test_bp/tools/env/VAR", "from-env")
        try image.script("test_bp/tools/exec.d/10-set", """
            printf 'FROM_EXECD = "yes"\\nSAW = "%s"\\nCWD = "%s"\\nSTDIN = "%s"\\n' "$VAR" "$(pwd)" "$(cat)" >&3
            """)
        try image.script("test_bp/tools/exec.d/20-chain", #"echo "CHAINED = \"$FROM_EXECD-again\"" >&3"#)
        try image.script("test_bp/tools/exec.d/web/30-web", #"echo 'WEB_EXECD = "web"' >&3; echo 'VAR = "replaced"' >&3"#)

        let web = image.launch(["/cnb/process/web"], as: invoker)
        #expect(web.status == 0, "\(web)")
        let env = web.environment
        #expect(env["FROM_EXECD"] == "yes")
        #expect(env["SAW"] == "from-env", "exec.d runs after the env files")
        #expect(env["CWD"] == "/workspace")
        #expect(env["STDIN"] == "", "stdin is /dev/null")
        #expect(env["CHAINED"] == "yes-again", "each program sees the ones before")
        #expect(env["WEB_EXECD"] == "web")
        #expect(env["VAR"] == "replaced", "exec.d overrides")

        let worker = image.launch(["/cnb/process/worker"], as: invoker)
        #expect(worker.status == 0, "\(worker)")
        #expect(worker.environment["FROM_EXECD"] == "yes")
        #expect(worker.environment["WEB_EXECD"] == nil, "exec.d/web is for web alone")
        #expect(worker.environment["VAR"] == "from-env")
    }

    static let failures: [(body: String, expected: String)] = [
        ("exit 3", "exited with 3"),
        ("kill -9 $$", "killed by signal 9"),
        ("echo 'X = 1' >&3", "X to an integer"),
        ("echo '[table]' >&3", "table to a table"),
        ("echo 'not toml' >&3", "fd 3"),
        ("echo 'X = \"\\u0000\"' >&3", "fd 3"),
        ("head -c 2000000 /dev/zero | tr '\\0' a >&3", "more than 1048576 bytes"),
    ]

    @Test(arguments: failures)
    func aFailingExecDIsOneClearError(_ body: String, _ expected: String) throws {
        let image = try LaunchImage(metadata: buildpack() + process("web", ["/bin/echo", "ran"]))
        try image.script("test_bp/tools/exec.d/broken", body)
        let r = image.launch(["/cnb/process/web"])
        #expect(r.isOneLineLauncherError, "\(r)")
        #expect(r.stderr.contains("/layers/test_bp/tools/exec.d/broken"), "\(r)")
        #expect(r.stderr.contains(expected), "\(r)")
        #expect(!r.stdout.contains("ran"), "the process does not start")
    }

    @Test func aProgramThatCannotRunIsAnError() throws {
        let image = try LaunchImage(metadata: buildpack() + process("web", ["/bin/echo", "ran"]))
        try image.write("test_bp/tools/exec.d/not-executable", "#!/bin/sh\n")
        let r = image.launch(["/cnb/process/web"])
        #expect(r.isOneLineLauncherError, "\(r)")
        #expect(r.stderr.contains("cannot run /layers/test_bp/tools/exec.d/not-executable: Permission denied"), "\(r)")
    }
}
