import Foundation
import Synchronization
import StockadeTestSupport
import Testing

/// `--audit FILE`: what the command executed, connected to and was denied,
/// one JSON object a line, and profiles learned from what it did.
@Suite struct AuditTests {
    let fx = Fixture.shared

    /// A fresh log path every invoker can create.
    func logPath() -> String { fx.makeDirectory("audit", mode: 0o777) + "/events.jsonl" }

    func events(_ path: String) -> [[String: Any]] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map { line in
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object != nil, "not a JSON object: \(line)")
            return object ?? [:]
        }
    }

    func args(_ event: [String: Any]) -> [String: Any] { event["args"] as? [String: Any] ?? [:] }

    @Test(arguments: Invoker.all)
    func anExecIsOneEventWithItsArgv(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let log = logPath()
        let r = fx.exec(["--audit", log], ["/bin/sh", "-c", "/bin/echo hi"], as: invoker)
        #expect(r.status == 0 && r.stdout == "hi\n", "\(r)")
        let all = events(log)
        let echo = all.filter { $0["syscall"] as? String == "execve" && args($0)["path"] as? String == "/bin/echo" }
        #expect(echo.count == 1, "\(all)")
        #expect(args(echo.first ?? [:])["argv"] as? [String] == ["/bin/echo", "hi"])
        #expect(echo.first?["outcome"] as? String == "allowed")
        #expect((echo.first?["pid"] as? Int ?? 0) >= 2, "pids are the sandbox's own")
        #expect(all.allSatisfy { ($0["sandbox"] as? String)?.count == 8 && ($0["time"] as? String)?.hasSuffix("Z") == true })
        #expect(r.stderr.contains("audit: executed: /bin/echo, /bin/sh"), "\(r.stderr)")
    }

    @Test(arguments: Invoker.all)
    func aConnectionShowsItsAddressAndPort(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let log = logPath()
        let r = fx.exec(["--audit", log], ["/probe", "loopback"], as: invoker)
        #expect(r.probes["loopback"] == "ok", "\(r)")
        let port = r.lines.first { $0.hasPrefix("port: ") }.flatMap { Int($0.dropFirst(6)) }
        let connects = events(log).filter { $0["syscall"] as? String == "connect" }
        #expect(connects.count == 1, "\(events(log))")
        let address = args(connects.first ?? [:])
        #expect(address["family"] as? String == "inet" && address["address"] as? String == "127.0.0.1")
        #expect(address["port"] as? Int == port && port != nil)
        #expect(r.stderr.contains("connected to: inet:127.0.0.1:\(port ?? 0)"), "\(r.stderr)")
    }

    @Test(arguments: Invoker.all)
    func aDeniedSyscallIsNeverSilent(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let log = logPath()
        let r = fx.exec(["--audit", log], ["/probe", "mount", "unshare-user", "getpid-after"], as: invoker)
        #expect(r.probes["mount"] == "EPERM" && r.probes["unshare-user"] == "EPERM", "\(r)")
        let denied = events(log).filter { $0["outcome"] as? String == "denied" }
        let names = Set(denied.compactMap { $0["syscall"] as? String })
        #expect(names.isSuperset(of: ["mount", "unshare"]), "\(denied)")
        #expect(denied.allSatisfy { $0["errno"] as? Int == 1 && $0["errnoName"] as? String == "EPERM" })
        #expect(r.stderr.contains("audit: denied: "), "\(r.stderr)")
    }

    @Test(arguments: Invoker.all)
    func fiftyChildrenExecingAreAllRecorded(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let log = logPath()
        let r = fx.exec(["--audit", log], ["/bin/sh", "-c", "i=0; while [ $i -lt 50 ]; do /bin/true & i=$((i+1)); done; wait"], as: invoker)
        #expect(r.status == 0, "\(r)")
        let trues = events(log).filter { $0["syscall"] as? String == "execve" && args($0)["path"] as? String == "/bin/true" }
        #expect(trues.count == 50)
        #expect(Set(trues.compactMap { $0["pid"] as? Int }).count == 50, "each from its own process")
    }

    @Test(.timeLimit(.minutes(5)))
    func anUnwritableLogFailsTheRunButNeverTheCommandsAnswers() {
        // /dev/full takes the open but fails every write with ENOSPC.
        let r = fx.exec(["--audit", "/dev/full"], ["/bin/sh", "-c", "/bin/echo still answered; exit 3"], as: .suiteUser)
        #expect(r.stdout == "still answered\n", "\(r)")
        #expect(r.status == 71, "\(r)")
        #expect(r.stderr.contains("audit events could not be written to /dev/full"), "\(r.stderr)")
    }

    @Test(.timeLimit(.minutes(5)))
    func killingTheSandboxMidBurstNeitherHangsNorCrashes() {
        let log = logPath()
        let r = fx.exec(["--audit", log, "--timeout", "1"], ["/bin/sh", "-c", "while :; do /bin/true; done"], as: .suiteUser)
        #expect(r.status == 124, "\(r)")
        #expect(!r.stderr.contains("Fatal error"))
        #expect(events(log).count > 10, "the burst was recorded until the kill")
    }

    @Test(arguments: Invoker.all)
    func aLearnedProfileRunsItsWorkloadAndDeniesTheRest(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let profile = fx.makeDirectory("learned", mode: 0o777) + "/profile.json"
        let script = "echo learned > /tmp/out && cat /tmp/out"
        let learn = fx.stockade(["profile", "learn", "--output", profile, "--", "/bin/sh", "-c", script], as: invoker)
        #expect(learn.status == 0 && learn.stdout == "learned\n", "\(learn)")
        let text = try String(contentsOfFile: profile, encoding: .utf8)
        #expect(text.contains("\"execve\"") && text.contains("\"defaultAction\": \"SCMP_ACT_ERRNO\""), "\(text)")
        let again = fx.stockade(["exec", "--profile", profile, "--", "/bin/sh", "-c", script], as: invoker)
        #expect(again.status == 0 && again.stdout == "learned\n", "\(again)")
        // ls stats and reads directories; the script never did. The profile's EPERM is what ls
        // reports (exit 2, "serious trouble"); under the default profile the same ls works.
        let other = fx.stockade(["exec", "--profile", profile, "--", "/bin/ls", "/"], as: invoker)
        #expect(other.status == 2 && other.stderr.contains("/bin/ls: cannot access '/': Operation not permitted"), "\(other)")
        let control = fx.stockade(["exec", "--", "/bin/ls", "/"], as: invoker)
        #expect(control.status == 0 && control.lines.contains("usr"), "\(control)")
    }

    @Test func checkListsWhatTheDefaultProfileDenies() throws {
        let dir = fx.makeDirectory("check")
        let path = dir + "/wide.json"
        try #"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "mount", "ptrace"], "action": "SCMP_ACT_ALLOW"}]}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let r = fx.stockade(["profile", "check", path], as: .suiteUser)
        #expect(r.status == 0, "\(r)")
        #expect(r.lines.contains("  mount") && r.lines.contains("  ptrace") && !r.lines.contains("  read"), "\(r)")
        let bad = fx.stockade(["profile", "check", dir + "/missing.json"], as: .suiteUser)
        #expect(bad.status == 66)
    }

    /// Refuses sendmsg with MSG_OOB and observes every sendmsg.
    static let outOfBandProfile = """
        {"defaultAction": "SCMP_ACT_ALLOW",
         "syscalls": [{"names": ["sendmsg"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                       "args": [{"index": 2, "value": 1, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]}],
         "x-stockade": {"audit": [{"names": ["sendmsg"]}]}}
        """

    /// The listener is handed over with sendmsg on descriptor 1023; a command's own sendmsg
    /// there is the profile's to decide, audited or not, and it is logged.
    @Test(arguments: Invoker.all)
    func theListenerHandoffNeverWidensTheProfile(_ invoker: Invoker) throws {
        let profile = fx.makeDirectory("oob", mode: 0o755) + "/profile.json"
        try Self.outOfBandProfile.write(toFile: profile, atomically: true, encoding: .utf8)
        chmod(profile, 0o644)
        let probes = ["sendmsg-oob-1023", "sendmsg-1023", "sendmsg-oob"]
        let plain = fx.exec(["--profile", profile], ["/probe"] + probes, as: invoker)
        let log = logPath()
        let audited = fx.exec(["--profile", profile, "--audit", log], ["/probe"] + probes, as: invoker)
        for r in [plain, audited] {
            #expect(r.status == 0, "\(r)")
            #expect(r.probes["sendmsg-oob-1023"] == "EPERM" && r.probes["sendmsg-oob"] == "EPERM", "\(r)")
            #expect(r.probes["sendmsg-1023"] == "ok", "\(r)")
        }
        let onHandoff = events(log).filter {
            $0["syscall"] as? String == "sendmsg" && (args($0)["values"] as? [Int])?.first == 1023
        }
        let outOfBand = onHandoff.filter { ((args($0)["values"] as? [Int])?[2] ?? 0) & 1 == 1 }
        #expect(outOfBand.count == 1 && outOfBand.first?["outcome"] as? String == "denied", "\(events(log))")
        #expect(onHandoff.count == 2 && onHandoff.contains { $0["outcome"] as? String == "allowed" }, "\(events(log))")
    }

    /// Learning lets through what the hardening baseline allows, and observes it: a sendmsg on
    /// the handoff descriptor ends up in the learned profile like any other call.
    @Test(arguments: Invoker.all)
    func learningObservesCallsOnTheHandoffDescriptor(_ invoker: Invoker) throws {
        let profile = fx.makeDirectory("learned", mode: 0o777) + "/profile.json"
        let r = fx.stockade(["profile", "learn", "--output", profile, "--ro-bind", "\(fx.probe):/probe", "--",
                             "/probe", "sendmsg-oob-1023"], as: invoker)
        #expect(r.status == 0 && r.probes["sendmsg-oob-1023"] == "ok", "\(r)")
        let learned = (try? String(contentsOfFile: profile, encoding: .utf8)) ?? ""
        #expect(learned.contains("\"sendmsg\""), "\(learned)")
    }

    /// The log is read only after the command is done, through a pipe far smaller than its
    /// events: the calls are answered while the log cannot be written (the recorder is blocked
    /// on the pipe, the events wait in its queue), and every queued event still reaches the log
    /// after the last process is gone.
    @Test(.timeLimit(.minutes(5)), arguments: Invoker.all)
    func answersNeverWaitForTheLogAndTheQueueIsDrained(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let directory = fx.makeDirectory("audit-fifo", mode: 0o777)
        let fifo = directory + "/events.fifo"
        #expect(mkfifo(fifo, 0o666) == 0 && chmod(fifo, 0o666) == 0)
        // Open for reading first, without blocking, so stockade's open for writing succeeds.
        let reader = open(fifo, O_RDONLY | O_NONBLOCK)
        try #require(reader >= 0)
        let done = directory + "/done"
        let collected = Mutex<[UInt8]>([])
        let drained = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            // Nothing is read before the command has made its last call.
            while !FileManager.default.fileExists(atPath: done) { usleep(10_000) }
            _ = fcntl(reader, F_SETFL, 0)
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(reader, &buffer, buffer.count)
                if n <= 0 { break }
                collected.withLock { $0 += buffer[0..<n] }
            }
            close(reader)
            drained.signal()
        }
        let files = 1000
        let script = "i=0; while [ $i -lt \(files) ]; do : > /w/f$i; i=$((i+1)); done; : > /w/done"
        let r = fx.exec(["--bind", "\(directory):/w", "--audit", fifo], ["/bin/sh", "-c", script], as: invoker)
        #expect(r.status == 0, "\(r)")
        drained.wait()
        let lines = String(decoding: collected.withLock { $0 }, as: UTF8.self).split(separator: "\n")
        #expect(lines.count > 65536 / 100, "more than the pipe holds: \(lines.count) lines")
        let opens = lines.filter { $0.contains("\"syscall\":\"openat\"") && $0.contains("\"path\":\"/w/f") }
        #expect(opens.count == files, "\(opens.count) of \(files)")
        #expect(summarizedEvents(r) == lines.count, "\(r.stderr)")
    }

    /// The total `audit: N events` of the summary on stderr.
    func summarizedEvents(_ r: Outcome) -> Int? {
        r.stderr.split(separator: "\n").first { $0.hasPrefix("stockade: audit: ") && $0.contains(" events: ") }
            .flatMap { Int($0.dropFirst("stockade: audit: ".count).prefix { $0 != " " }) }
    }

    /// Far more events than a tiny log holds: the log stays within its cap and ends with the
    /// count of what it left out, every event is still counted, every call still answered.
    @Test(arguments: Invoker.all)
    func aLogStaysWithinItsSizeCapAndCountsWhatItDrops(_ invoker: Invoker) {
        let log = logPath()
        let script = "i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done; exec /probe mount"
        let r = fx.exec(["--audit", log, "--audit-max-bytes", "4K"], ["/bin/sh", "-c", script], as: invoker)
        #expect(r.status == 0 && r.probes["mount"] == "EPERM", "\(r)")
        let size = ((try? FileManager.default.attributesOfItem(atPath: log))?[.size] as? Int) ?? Int.max
        #expect(size <= 4096, "\(size) bytes")
        let lines = events(log)
        let last = lines.last ?? [:]
        #expect(Set(last.keys) == ["type", "time", "dropped", "droppedBySize", "droppedByRate", "maxBytes", "maxEventsPerSecond"])
        #expect(last["type"] as? String == "dropped" && last["maxBytes"] as? Int == 4096, "\(last)")
        let dropped = last["dropped"] as? Int ?? 0
        #expect(dropped > 0 && last["droppedBySize"] as? Int == dropped, "\(last)")
        #expect(summarizedEvents(r) == lines.count - 1 + dropped, "\(r.stderr)")
        #expect(r.stderr.contains("audit: \(dropped) events not written: the log reached its size or rate cap"), "\(r.stderr)")
    }

    @Test(arguments: Invoker.all)
    func aLogStaysWithinItsRateCap(_ invoker: Invoker) {
        let log = logPath()
        let script = "i=0; while [ $i -lt 100 ]; do /bin/true; i=$((i+1)); done"
        let r = fx.exec(["--audit", log, "--audit-max-rate", "1"], ["/bin/sh", "-c", script], as: invoker)
        #expect(r.status == 0, "\(r)")
        let lines = events(log)
        let last = lines.last ?? [:]
        let dropped = last["droppedByRate"] as? Int ?? 0
        #expect(last["type"] as? String == "dropped" && dropped > 0 && last["dropped"] as? Int == dropped, "\(last)")
        #expect(summarizedEvents(r) == lines.count - 1 + dropped, "\(r.stderr)")
    }

    @Test func auditCapsMustLeaveRoomForTheirRecord() {
        for args in [["--audit-max-bytes", "100"], ["--audit-max-rate", "0"], ["--audit-max-bytes", "lots"]] {
            let r = fx.exec(["--audit", logPath()] + args, ["/bin/true"], as: .suiteUser)
            #expect(r.status == 64, "\(args): \(r)")
        }
    }
}
