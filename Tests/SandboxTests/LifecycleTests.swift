import Foundation
import StockadeTestSupport
import Testing

/// Exit status, signals, timeouts and the end of every process in the sandbox.
@Suite struct LifecycleTests {
    let fx = Fixture.shared

    @Test(arguments: Invoker.all)
    func exitStatusAndSignalsPropagate(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        #expect(fx.exec([], ["/bin/sh", "-c", "exit 42"], as: invoker).status == 42)
        #expect(fx.exec([], ["/bin/sh", "-c", "kill -KILL $$"], as: invoker).status == 128 + SIGKILL)
        #expect(fx.exec([], ["/bin/sh", "-c", "kill -SEGV $$"], as: invoker).status == 128 + SIGSEGV)
        #expect(fx.exec([], ["/bin/true"], as: invoker).status == 0)
    }

    @Test(arguments: Invoker.all)
    func aDetachedGrandchildDiesWithTheCommand(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let marker = String(Int.random(in: 100_000...999_999))
        let r = fx.exec([], ["/bin/sh", "-c", "setsid /bin/sleep \(marker) </dev/null >/dev/null 2>&1 & echo started"], as: invoker)
        #expect(r.status == 0 && r.lines == ["started"], "\(r)")
        #expect(Fixture.processes(mentioning: "sleep \(marker)").isEmpty)
    }

    @Test(arguments: Invoker.all)
    func aTimeoutKillsTheWholeTree(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let marker = String(Int.random(in: 100_000...999_999))
        let r = fx.exec(["--timeout", "0.5"], ["/bin/sh", "-c", "setsid /bin/sleep \(marker) & /bin/sleep \(marker)"], as: invoker)
        #expect(r.status == 124, "\(r)")
        #expect(r.stderr.contains("timed out after 0.5 s"), "\(r)")
        #expect(Fixture.processes(mentioning: "sleep \(marker)").isEmpty)
    }

    /// `stockade exec -- command` started in the background, its stdout going to a file.
    func running(_ command: [String], timeout: String? = nil, as invoker: Invoker) throws -> (Process, String) {
        let out = fx.dir + "/background-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = invoker.prefix + [fx.stockade, "exec"] + (timeout.map { ["--timeout", $0] } ?? []) + ["--"] + command
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = FileHandle.nullDevice
        try process.run()
        return (process, out)
    }

    @Test(arguments: Invoker.all)
    func theSandboxDiesWithItsSupervisor(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let marker = String(Int.random(in: 100_000...999_999))
        let (process, _) = try running(["/bin/sh", "-c", "setsid /bin/sleep \(marker) & echo ready; /bin/sleep \(marker)"],
                                       as: invoker)
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, Fixture.processes(mentioning: "sleep \(marker)").count < 3 { usleep(20_000) }
        #expect(Fixture.processes(mentioning: "sleep \(marker)").count == 3, "the shell and both sleeps are running")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        // PDEATHSIG kills pid 1, and the kernel then kills the rest of the namespace.
        let gone = Date().addingTimeInterval(5)
        while Date() < gone, !Fixture.processes(mentioning: "sleep \(marker)").isEmpty { usleep(20_000) }
        #expect(Fixture.processes(mentioning: "sleep \(marker)").isEmpty)
    }

    /// Each forwarded signal in turn, the next sent only once the command wrote down the last;
    /// TERM last, on which it exits. `--timeout` ends a command that never got one.
    @Test(arguments: Invoker.all)
    func terminationSignalsReachTheCommand(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let signals: [(String, Int32)] = [("INT", SIGINT), ("HUP", SIGHUP), ("QUIT", SIGQUIT), ("USR1", SIGUSR1), ("USR2", SIGUSR2), ("TERM", SIGTERM)]
        let traps = signals.map { "trap 'echo got-\($0.0)\($0.0 == "TERM" ? "; exit 7" : "")' \($0.0)" }.joined(separator: "; ")
        let (process, out) = try running(["/bin/sh", "-c", traps + "; echo ready; while :; do sleep 0.05; done"],
                                         timeout: "60", as: invoker)
        func waitFor(_ line: String) {
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline, process.isRunning,
                  !((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").contains(Substring(line)) {
                usleep(20_000)
            }
        }
        waitFor("ready")
        for (name, number) in signals {
            kill(process.processIdentifier, number)
            waitFor("got-" + name)
        }
        process.waitUntilExit()
        #expect(process.terminationStatus == 7)
        let got = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        #expect(got == ["ready"] + signals.map { "got-" + $0.0 }, "\(got)")
    }

    @Test(arguments: Invoker.all)
    func limitsHostnameEnvironmentAndWorkingDirectory(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let r = fx.exec(["--max-open-files", "64", "--max-processes", "300", "--cpu-seconds", "30", "--max-memory", "2G",
                         "--max-file-size", "1M", "--hostname", "buildbox", "--tmpfs", "/work", "--chdir", "/work",
                         "--clear-env", "--env", "GREETING=hi there"],
                        ["/bin/sh", "-c", "grep -E '^Max (open files|processes|cpu time|address space|file size)' /proc/self/limits | tr -s ' ' | cut -d' ' -f1-5; uname -n; pwd; /usr/bin/env | sort"],
                        as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.lines == ["Max cpu time 30 30", "Max file size 1048576 1048576", "Max processes 300 300 processes",
                            "Max open files 64 64", "Max address space 2147483648 2147483648", "buildbox", "/work",
                            "GREETING=hi there", "HOME=/home/cnb", "LOGNAME=cnb", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PWD=/work", "USER=cnb"],
                "\(r)")
    }

    @Test(arguments: Invoker.all)
    func aRootfsIsUsedReadOnlyWithTheStackUserAdded(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let rootfs = fx.makeDirectory("rootfs")
        let fm = FileManager.default
        for dir in ["bin", "etc", "usr/lib"] { try fm.createDirectory(atPath: rootfs + "/" + dir, withIntermediateDirectories: true) }
        try fm.copyItem(atPath: fx.probe, toPath: rootfs + "/bin/probe")
        try "root:x:0:0:root:/root:/bin/sh\n".write(toFile: rootfs + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\n".write(toFile: rootfs + "/etc/group", atomically: true, encoding: .utf8)
        try "ID=stockade-test\n".write(toFile: rootfs + "/usr/lib/os-release", atomically: true, encoding: .utf8)
        try fm.createSymbolicLink(atPath: rootfs + "/etc/os-release", withDestinationPath: "../usr/lib/os-release")
        for path in ["", "/bin", "/etc", "/usr", "/usr/lib"] { chmod(rootfs + path, 0o755) }
        for path in ["/etc/passwd", "/etc/group", "/usr/lib/os-release"] { chmod(rootfs + path, 0o644) }
        let r = fx.stockade(["exec", "--rootfs", rootfs, "--", "/bin/probe", "cat:/etc/passwd", "cat:/etc/os-release",
                             "write:/bin/new", "write:/etc/hosts", "read:/usr/bin/sh"], as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000:cnb:/home/cnb:/bin/sh\n"), "\(r)")
        #expect(r.stdout.contains("ID=stockade-test"))
        #expect(r.probes["write:/bin/new"] == "EROFS")
        #expect(r.probes["write:/etc/hosts"] == "EROFS")
        #expect(r.probes["read:/usr/bin/sh"] == "ENOENT", "the host's /usr must not leak into a rootfs sandbox")
    }
}
