import Foundation
import StockadeTestSupport
import Testing

/// Real sandboxes, asserted from inside, for every kind of invoker.
@Suite struct IsolationTests {
    let fx = Fixture.shared

    @Test(arguments: Invoker.all)
    func runsAsTheStackUserWithNoOtherGroups(_ invoker: Invoker) {
        let r = fx.exec([], ["/bin/sh", "-c", "id -u; id -g; id -G; id -un; echo $HOME"], as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.lines == ["1000", "1000", "1000", "cnb", "/home/cnb"], "\(r)")
    }

    @Test(arguments: Invoker.all)
    func hasNoCapabilitiesNoNewPrivsAndSeccomp(_ invoker: Invoker) {
        let r = fx.exec([], ["/bin/sh", "-c", "cat /proc/self/status"], as: invoker)
        #expect(r.status == 0, "\(r)")
        var fields: [String: String] = [:]
        for line in r.lines {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2 { fields[parts[0]] = parts[1] }
        }
        for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            #expect(fields[cap] == "0000000000000000", "\(cap) = \(fields[cap] ?? "missing")")
        }
        #expect(fields["NoNewPrivs"] == "1")
        // NOROOT, NO_SETUID_FIXUP, KEEP_CAPS (off), NO_CAP_AMBIENT_RAISE, each locked.
        let bits = fx.exec([], ["/probe", "securebits"], as: invoker)
        #expect(bits.lines.first == "securebits=0xef", "\(bits)")
        #expect(fields["Seccomp"] == "2")
        #expect(fields["Seccomp_filters"] == "2", "the profile and the hardening baseline")
    }

    @Test(arguments: Invoker.all)
    func seesOnlyItsOwnProcessesInANewSession(_ invoker: Invoker) {
        let r = fx.exec([], ["/bin/sh", "-c", "echo $$; cut -d' ' -f6 /proc/$$/stat; ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '"], as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.lines.count == 3, "\(r)")
        guard r.lines.count == 3 else { return }
        #expect(r.lines[0] == "2", "the command is pid 2 under the sandbox's init")
        #expect(r.lines[1] == "2", "the command leads its own session (no TIOCSTI into the caller's terminal)")
        let pids = r.lines[2].split(separator: " ").compactMap { Int($0) }
        #expect(pids.first == 1 && pids.allSatisfy { $0 < 10 }, "only sandbox pids: \(pids)")
    }

    @Test(arguments: Invoker.all)
    func hostSecretsAndPrivateDirectoriesAreAbsent(_ invoker: Invoker) {
        let script = "ls -A /; echo --; ls -A /home; echo --; ls -A /etc"
        let r = fx.exec([], ["/bin/sh", "-c", script], as: invoker)
        #expect(r.status == 0, "\(r)")
        let sections = r.stdout.components(separatedBy: "--\n").map { $0.split(separator: "\n").map(String.init) }
        guard sections.count == 3 else { Issue.record("\(r)"); return }
        for hidden in ["root", "var", "run", "srv", "mnt", "media", "boot", "sys", "opt", "work"] {
            #expect(!sections[0].contains(hidden), "/\(hidden) is visible")
        }
        #expect(sections[1] == ["cnb"])
        for secret in ["shadow", "gshadow", "sudoers", "sudoers.d", "ssh", "subuid", "subgid", "machine-id"] {
            #expect(!sections[2].contains(secret), "/etc/\(secret) is visible")
        }
        #expect(sections[2].contains("passwd") && sections[2].contains("ld.so.cache"))
    }

    @Test(arguments: Invoker.all)
    func readOnlyBindsAreReadOnlyAllTheWayDown(_ invoker: Invoker) throws {
        let data = fx.makeDirectory("ro")
        try FileManager.default.createDirectory(atPath: data + "/sub/deeper", withIntermediateDirectories: true)
        try "original\n".write(toFile: data + "/sub/deeper/file", atomically: true, encoding: .utf8)
        chmod(data + "/sub/deeper/file", 0o666)
        chmod(data + "/sub", 0o777)
        chmod(data + "/sub/deeper", 0o777)
        let r = fx.exec(["--ro-bind", "\(data):/data"],
                        ["/probe", "write:/data/new", "write:/data/sub/deeper/file", "write:/data/sub/created", "read:/data/sub/deeper/file"],
                        as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.probes["write:/data/new"] == "EROFS")
        #expect(r.probes["write:/data/sub/deeper/file"] == "EROFS")
        #expect(r.probes["write:/data/sub/created"] == "EROFS")
        #expect(r.probes["read:/data/sub/deeper/file"] == "ok")
        let mounts = fx.exec(["--ro-bind", "\(data):/data", "--bind", "\(data)/sub:/rw"], ["/bin/sh", "-c", "grep -E ' /(data|rw) ' /proc/self/mountinfo"], as: invoker)
        for line in mounts.lines {
            let options = line.split(separator: " ")[5].split(separator: ",")
            #expect(options.contains("nosuid") && options.contains("nodev"), "\(line)")
            #expect(options.contains(line.contains(" /data ") ? "ro" : "rw"), "\(line)")
        }
        #expect(mounts.lines.count == 2, "\(mounts)")
        #expect(try String(contentsOfFile: data + "/sub/deeper/file", encoding: .utf8) == "original\n")
        #expect(!FileManager.default.fileExists(atPath: data + "/sub/created"))
    }

    @Test(arguments: Invoker.all)
    func writableBindsBelongToTheMappedHostId(_ invoker: Invoker) {
        let out = fx.makeDirectory("rw", mode: 0o777)
        let r = fx.exec(["--bind", "\(out):/out"], ["/probe", "write:/out/made"], as: invoker)
        #expect(r.probes["write:/out/made"] == "ok", "\(r)")
        #expect(fx.owner(of: out + "/made") == invoker.hostStackUID)
        #expect(fx.owner(of: out + "/made") != 0)
    }

    @Test(arguments: Invoker.all)
    func dangerousSyscallsFailUnderTheDefaultProfile(_ invoker: Invoker) {
        let r = fx.exec([], ["/probe", "mount", "unshare-user", "unshare-mount", "clone-newuser", "ptrace-attach", "keyctl",
                             "add-key", "setns", "bpf", "io-uring", "chroot", "clone3", "tiocsti", "tiocsti-high",
                             "tioclinux", "fork", "socket-inet", "socket-unix"], as: invoker)
        #expect(r.status == 0, "\(r)")
        let expected = ["mount": "EPERM", "unshare-user": "EPERM", "unshare-mount": "EPERM", "clone-newuser": "EPERM",
                        "ptrace-attach": "EPERM", "keyctl": "EPERM", "add-key": "EPERM", "setns": "EPERM",
                        "bpf": "EPERM", "io-uring": "EPERM", "chroot": "EPERM",
                        // libc falls back from clone3 to clone, whose flags the filter can see
                        "clone3": "ENOSYS",
                        // CVE-2017-5226 and CVE-2019-10063: the high bits must not hide TIOCSTI
                        "tiocsti": "EPERM", "tiocsti-high": "EPERM", "tioclinux": "EPERM",
                        "fork": "ok", "socket-inet": "ok", "socket-unix": "ok"]
        #expect(r.probes == expected)
    }

    @Test(arguments: Invoker.all)
    func aForeignSyscallArchitectureKillsTheProcess(_ invoker: Invoker) {
        let r = fx.exec([], ["/probe", "int80"], as: invoker)
        #expect(r.status == 128 + SIGSYS, "\(r)")
        let unconfined = fx.exec(["--profile", "unconfined"], ["/probe", "int80"], as: invoker)
        #expect(unconfined.lines == ["int80: ok"], "without a filter the i386 entry point works: \(unconfined)")
    }

    @Test(arguments: Invoker.all)
    func strictProfileAllowsOnlyUnixSockets(_ invoker: Invoker) {
        let r = fx.exec(["--profile", "strict"], ["/probe", "socket-inet", "socket-unix", "fork", "ptrace-attach", "mount"], as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.probes == ["socket-inet": "EPERM", "socket-unix": "ok", "fork": "ok", "ptrace-attach": "EPERM", "mount": "EPERM"])
    }

    @Test(arguments: Invoker.all)
    func landlockKeepsSignalsInsideTheSandbox(_ invoker: Invoker) throws {
        let release = try String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)
        let parts = release.split(separator: ".").compactMap { Int($0.prefix { $0.isNumber }) }
        try #require(parts.count >= 2 && (parts[0], parts[1]) >= (6, 12), "Landlock signal scoping needs Linux 6.12")
        // pid 1 is the sandbox's init, running as the same stack user: only
        // Landlock's signal scope stands between the command and it.
        let r = fx.exec(["--profile", "unconfined"], ["/probe", "kill-init"], as: invoker)
        #expect(r.probes["kill-init"] == "EPERM", "\(r)")
    }

    @Test(arguments: Invoker.all)
    func networkNoneHasOnlyLoopbackAndItWorks(_ invoker: Invoker) {
        let r = fx.exec([], ["/bin/sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; /probe loopback"], as: invoker)
        #expect(r.lines.filter { !$0.hasPrefix("port: ") } == ["lo", "loopback: ok"], "\(r)")
        let host = fx.exec(["--network", "host"], ["/bin/sh", "-c", "tail -n +3 /proc/net/dev | wc -l"], as: invoker)
        #expect((Int(host.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 1, "host network: \(host)")
    }

    @Test(arguments: Invoker.all)
    func inheritedDescriptorsDoNotReachTheCommand(_ invoker: Invoker) {
        let quoted = (invoker.prefix + [fx.stockade, "exec", "--", "/bin/ls", "/proc/self/fd"]).map { "'\($0)'" }.joined(separator: " ")
        let r = Fixture.run(["/bin/sh", "-c", "exec 7</etc/hostname 9</etc/hostname; exec \(quoted)"])
        #expect(r.status == 0, "\(r)")
        #expect(Set(r.lines).isSubset(of: ["0", "1", "2", "3"]), "descriptors inside: \(r.lines)")
    }
}
