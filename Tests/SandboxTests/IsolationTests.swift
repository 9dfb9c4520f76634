import Foundation
import StockadeTestSupport
import Testing

/// Real sandboxes, asserted from inside, for every kind of invoker.
@Suite struct IsolationTests {
    let fx = Fixture.shared

    @Test(arguments: Invoker.all)
    func runsAsTheStackUserWithNoOtherGroups(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let r = fx.exec([], ["/bin/sh", "-c", "id -u; id -g; id -G; id -un; echo $HOME"], as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.lines == ["1000", "1000", "1000", "cnb", "/home/cnb"], "\(r)")
    }

    @Test(arguments: Invoker.all)
    func hasNoCapabilitiesNoNewPrivsAndSeccomp(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
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
    func seesOnlyItsOwnProcessesInANewSession(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let r = fx.exec([], ["/bin/sh", "-c", "echo $$; cut -d' ' -f6 /proc/$$/stat; ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '"], as: invoker)
        #expect(r.status == 0, "\(r)")
        try #require(r.lines.count == 3, "\(r)")
        #expect(r.lines[0] == "2", "the command is pid 2 under the sandbox's init")
        #expect(r.lines[1] == "2", "the command leads its own session (no TIOCSTI into the caller's terminal)")
        let pids = r.lines[2].split(separator: " ").compactMap { Int($0) }
        #expect(pids.first == 1 && pids.allSatisfy { $0 < 10 }, "only sandbox pids: \(pids)")
    }

    /// A marker file planted in each host directory that must stay invisible, removed afterwards.
    /// Only root may write most of them; the suite user that cannot plants where it can.
    static func plantMarkers(in directories: [String]) -> (name: String, planted: [String]) {
        let name = "stockade-marker-" + UUID().uuidString.prefix(8)
        var planted: [String] = []
        for directory in directories where FileManager.default.createFile(atPath: directory + "/" + name, contents: Data("secret\n".utf8)) {
            planted.append(directory + "/" + name)
        }
        return (name, planted)
    }

    static let hiddenHostDirectories = ["/home", "/root", "/tmp", "/var", "/var/tmp", "/run", "/srv", "/mnt", "/media", "/boot", "/opt", "/etc", "/dev/shm"]

    @Test(arguments: Invoker.all)
    func hostSecretsAndPrivateDirectoriesAreAbsent(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let markers = Self.plantMarkers(in: Self.hiddenHostDirectories)
        defer { for path in markers.planted { unlink(path) } }
        #expect(markers.planted.contains("/home/" + markers.name) || !fx.isRoot, "\(markers.planted)")
        let script = "ls -A /; echo --; ls -A /home; echo --; ls -A /etc; echo --; "
            + "find / -path /proc -prune -o -name '\(markers.name)' -print 2>/dev/null; true"
        let r = fx.exec([], ["/bin/sh", "-c", script], as: invoker)
        #expect(r.status == 0, "\(r)")
        let sections = r.stdout.components(separatedBy: "--\n").map { $0.split(separator: "\n").map(String.init) }
        try #require(sections.count == 4, "\(r)")
        // Exactly the sandbox's own entries, the probe and the host's system links.
        let fm = FileManager.default
        let links = ["bin", "lib", "lib32", "lib64", "libx32", "sbin"].filter { (try? fm.attributesOfItem(atPath: "/" + $0)) != nil }
        #expect(Set(sections[0]) == Set(["dev", "etc", "home", "probe", "proc", "tmp", "usr"] + links), "\(sections[0])")
        #expect(sections[1] == ["cnb"], "the host's /home holds \(markers.name)")
        // The host's /etc gives only what programs need to run, resolve names and check certificates
        // (spelled out here, not read from FilesystemLayout, so that a change there shows).
        let allowed = ["alternatives", "ca-certificates", "gai.conf", "host.conf", "hosts", "ld.so.cache", "ld.so.conf",
                       "ld.so.conf.d", "localtime", "nsswitch.conf", "os-release", "protocols", "resolv.conf", "services", "ssl"]
        let present = allowed.filter { fm.fileExists(atPath: "/etc/" + $0) }
        #expect(Set(sections[2]) == Set(present + ["passwd", "group"]), "\(sections[2])")
        for secret in ["shadow", "gshadow", "sudoers", "ssh", "subuid", "subgid", "machine-id", markers.name] {
            #expect(!sections[2].contains(secret), "/etc/\(secret) is visible")
        }
        #expect(sections[3].isEmpty, "host markers visible inside: \(sections[3])")
    }

    /// Each mask and the file to write through it; nil: the mask itself when it is a file, else
    /// the first regular file beneath it.
    static let procMasks: [(mask: String, file: String?)] = [
        ("/proc/sys", "/proc/sys/kernel/hostname"), ("/proc/sysrq-trigger", nil), ("/proc/irq", "/proc/irq/default_smp_affinity"),
        ("/proc/bus", nil), ("/proc/fs", nil),
    ]

    /// Writing as the stack user to a kernel tunable is EACCES from permissions alone; EROFS
    /// shows the read-only mount. The control: procfs itself is writable, so EROFS is the mask's.
    @Test(arguments: Invoker.all, procMasks.map(\.mask))
    func procTunablesAreReadOnly(_ invoker: Invoker, _ mask: String) throws {
        try invoker.requireAvailable()
        guard access(mask, F_OK) == 0 else {
            try skip("this host's kernel has no \(mask) to mask")
        }
        let file = Self.procMasks.first { $0.mask == mask }?.file
        // The first regular file beneath the mask, as the sandbox sees it (a truncating open of it
        // meets the read-only mount before any permission check).
        let target = file ?? (mask == "/proc/sysrq-trigger" ? mask : "$(find \(mask) -type f 2>/dev/null | head -n 1)")
        let script = "t=\(target); [ -n \"$t\" ] || { echo 'no file'; exit 3; }; /probe write:$t | sed 's/^[^:]*:[^:]*: /mask: /'; "
            + "grep ' \(mask) ' /proc/self/mountinfo | cut -d' ' -f6; grep ' /proc ' /proc/self/mountinfo | cut -d' ' -f6"
        let r = fx.exec([], ["/bin/sh", "-c", script], as: invoker)
        try #require(r.status == 0, "\(r)")
        #expect(r.lines.first == "mask: EROFS", "\(r)")
        #expect(r.lines.count == 3 && r.lines[1].split(separator: ",").contains("ro"), "\(mask) is no read-only mount: \(r)")
        #expect(r.lines.count == 3 && r.lines[2].split(separator: ",").contains("rw"), "/proc itself is writable: \(r)")
    }

    @Test(arguments: Invoker.all)
    func devHoldsOnlyTheListedNodes(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let r = fx.exec([], ["/bin/sh", "-c", "ls -A /dev; echo --; ls -A /dev/pts /dev/shm; echo --; "
                                 + "for n in full null random tty urandom zero; do stat -c '%n %F %t:%T' /dev/$n; done"], as: invoker)
        #expect(r.status == 0, "\(r)")
        let sections = r.stdout.components(separatedBy: "--\n").map { $0.split(separator: "\n").map(String.init) }
        try #require(sections.count == 3, "\(r)")
        #expect(sections[0] == ["fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"],
                "\(sections[0])")
        // A new devpts instance (no host terminal in it) and an empty private /dev/shm.
        #expect(sections[1] == ["/dev/pts:", "ptmx", "/dev/shm:"], "\(sections[1])")
        let host = Fixture.run(["/bin/sh", "-c", "for n in full null random tty urandom zero; do stat -c '%n %F %t:%T' /dev/$n; done"])
        #expect(sections[2] == host.lines, "the nodes are the host's own devices: \(r)")
    }

    @Test(arguments: Invoker.all)
    func tmpIsPrivateAndTheHostsIsNeverVisible(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let markers = Self.plantMarkers(in: ["/tmp"])
        defer { for path in markers.planted { unlink(path) } }
        try #require(!markers.planted.isEmpty)
        let written = "written-" + markers.name
        let first = fx.exec([], ["/bin/sh", "-c", "ls -A /tmp; echo --; grep ' /tmp ' /proc/self/mountinfo | sed 's/.* - //' | cut -d' ' -f1; "
                                    + "echo inside > /tmp/\(written) && cat /tmp/\(written)"], as: invoker)
        #expect(first.status == 0, "\(first)")
        #expect(first.lines == ["--", "tmpfs", "inside"], "an empty tmpfs of its own: \(first)")
        // Neither the host nor the next sandbox sees what this one wrote.
        #expect(!FileManager.default.fileExists(atPath: "/tmp/" + written))
        let second = fx.exec([], ["/bin/sh", "-c", "ls -A /tmp"], as: invoker)
        #expect(second.status == 0 && second.stdout.isEmpty, "\(second)")
    }

    /// Abstract unix sockets live in the network namespace, so the test shares the host's
    /// (`--network host`): only Landlock's scope then stands between the command and a host
    /// listener. Controls: the host reaches that listener, and inside one sandbox a listener and
    /// a child of it talk.
    @Test(arguments: Invoker.all)
    func abstractUnixSocketsStayInsideTheSandbox(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let name = "stockade-test-" + UUID().uuidString.prefix(8)
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try #require(listener >= 0)
        defer { close(listener) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let length = withUnsafeMutableBytes(of: &address.sun_path) { path in
            for (i, byte) in name.utf8.enumerated() { path[i + 1] = byte }
            return socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + 1 + name.utf8.count)
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, 8) == 0 }
        }
        try #require(bound, "bind: \(errno)")
        let host = Fixture.run([fx.probe, "abstract-connect:" + name])
        #expect(host.lines == ["abstract-connect:\(name): ok"], "the host reaches its own listener: \(host)")
        let r = fx.exec(["--network", "host"], ["/probe", "abstract-connect:" + name, "abstract-pair:" + name + "-inside",
                                                "abstract-connect:" + name + "-nobody"], as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.probes["abstract-connect:" + name] == "EPERM", "\(r)")
        #expect(r.probes["abstract-pair:" + name + "-inside"] == "ok", "\(r)")
        #expect(r.probes["abstract-connect:" + name + "-nobody"] == "ECONNREFUSED", "\(r)")
    }

    /// A tmpfs mounted beneath the bind's source, on the host, as root: the read-only flag must
    /// reach it too.
    @Test(arguments: Invoker.all)
    func readOnlyBindsAreReadOnlyAllTheWayDown(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let data = fx.makeDirectory("ro")
        try FileManager.default.createDirectory(atPath: data + "/sub/deeper", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: data + "/sub/mnt", withIntermediateDirectories: true)
        try "original\n".write(toFile: data + "/sub/deeper/file", atomically: true, encoding: .utf8)
        chmod(data + "/sub/deeper/file", 0o666)
        chmod(data + "/sub", 0o777)
        chmod(data + "/sub/deeper", 0o777)
        guard fx.isRoot else { try skip("mounting a tmpfs beneath the source needs root") }
        let mounted = Fixture.run(["mount", "-t", "tmpfs", "-o", "mode=0777", "stockade-test", data + "/sub/mnt"])
        try #require(mounted.status == 0, "\(mounted)")
        defer { _ = Fixture.run(["umount", data + "/sub/mnt"]) }
        try "beneath\n".write(toFile: data + "/sub/mnt/file", atomically: true, encoding: .utf8)
        chmod(data + "/sub/mnt/file", 0o666)
        let r = fx.exec(["--ro-bind", "\(data):/data"],
                        ["/probe", "write:/data/new", "write:/data/sub/deeper/file", "write:/data/sub/created", "read:/data/sub/deeper/file",
                         "write:/data/sub/mnt/file", "write:/data/sub/mnt/created", "read:/data/sub/mnt/file"],
                        as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.probes == ["write:/data/new": "EROFS", "write:/data/sub/deeper/file": "EROFS", "write:/data/sub/created": "EROFS",
                             "read:/data/sub/deeper/file": "ok", "write:/data/sub/mnt/file": "EROFS",
                             "write:/data/sub/mnt/created": "EROFS", "read:/data/sub/mnt/file": "ok"], "\(r)")
        // Control: the same submount through a writable bind is writable, so EROFS above is the flag's.
        let writable = fx.exec(["--bind", "\(data)/sub/mnt:/rw"], ["/probe", "write:/rw/control"], as: invoker)
        #expect(writable.probes["write:/rw/control"] == "ok", "\(writable)")
        let mounts = fx.exec(["--ro-bind", "\(data):/data", "--bind", "\(data)/sub:/rw"],
                             ["/bin/sh", "-c", "grep -E ' /(data|rw)[ /]' /proc/self/mountinfo"], as: invoker)
        for line in mounts.lines {
            let options = line.split(separator: " ")[5].split(separator: ",")
            #expect(options.contains("nosuid") && options.contains("nodev"), "\(line)")
            #expect(options.contains(line.contains(" /data") ? "ro" : "rw"), "\(line)")
        }
        #expect(mounts.lines.count == 4, "/data, /data/sub/mnt, /rw, /rw/mnt: \(mounts)")
        #expect(try String(contentsOfFile: data + "/sub/deeper/file", encoding: .utf8) == "original\n")
        #expect(try String(contentsOfFile: data + "/sub/mnt/file", encoding: .utf8) == "beneath\n")
        #expect(!FileManager.default.fileExists(atPath: data + "/sub/created"))
        #expect(!FileManager.default.fileExists(atPath: data + "/sub/mnt/created"))
    }

    @Test(arguments: Invoker.all)
    func writableBindsBelongToTheMappedHostId(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let out = fx.makeDirectory("rw", mode: 0o777)
        let r = fx.exec(["--bind", "\(out):/out"], ["/probe", "write:/out/made"], as: invoker)
        #expect(r.probes["write:/out/made"] == "ok", "\(r)")
        #expect(fx.owner(of: out + "/made") == invoker.hostStackUID)
        #expect(fx.owner(of: out + "/made") != 0)
    }

    /// Each call in a process of its own (one that succeeds, as unshare does unconfined, must not
    /// lend its new namespace to the next), under the default profile and, as the control,
    /// unconfined: a denial counts only where the control gets another answer.
    @Test(arguments: Invoker.all)
    func dangerousSyscallsFailUnderTheDefaultProfile(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let expected = ["mount": "EPERM", "unshare-user": "EPERM", "unshare-mount": "EPERM", "clone-newuser": "EPERM",
                        "ptrace-attach": "EPERM", "keyctl": "EPERM", "add-key": "EPERM", "setns": "EPERM",
                        "bpf": "EPERM", "io-uring": "EPERM", "chroot": "EPERM",
                        // libc falls back from clone3 to clone, whose flags the filter can see
                        "clone3": "ENOSYS",
                        // CVE-2017-5226 and CVE-2019-10063: the high bits must not hide TIOCSTI
                        "tiocsti": "EPERM", "tiocsti-high": "EPERM", "tioclinux": "EPERM",
                        "fork": "ok", "socket-inet": "ok", "socket-unix": "ok"]
        let script = expected.keys.sorted().map { "/probe \($0)" }.joined(separator: "; ")
        let confined = fx.exec([], ["/bin/sh", "-c", script], as: invoker)
        let control = fx.exec(["--profile", "unconfined"], ["/bin/sh", "-c", script], as: invoker)
        #expect(confined.status == 0 && control.status == 0, "\(confined)\n\(control)")
        #expect(confined.probes == expected, "\(confined)")
        let denials = expected.filter { $0.value != "ok" }.keys
        // Refused by the kernel alone here (no capability in the sandbox's namespace): mount,
        // unshare(CLONE_NEWNS), chroot. These prove nothing about the profile.
        let pinned = Set(denials.filter { control.probes[$0] != nil && control.probes[$0] != confined.probes[$0] })
        let filterOnly: Set = ["ptrace-attach", "keyctl", "add-key", "setns", "bpf", "clone3", "tiocsti", "tiocsti-high", "tioclinux"]
        #expect(pinned.isSuperset(of: filterOnly), "unconfined, these got the same answer: \(filterOnly.subtracting(pinned).sorted())\n\(control)")
    }

    @Test(arguments: Invoker.all)
    func aForeignSyscallArchitectureKillsTheProcess(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let r = fx.exec([], ["/probe", "int80"], as: invoker)
        #expect(r.status == 128 + SIGSYS, "\(r)")
        let unconfined = fx.exec(["--profile", "unconfined"], ["/probe", "int80"], as: invoker)
        #expect(unconfined.lines == ["int80: ok"], "without a filter the i386 entry point works: \(unconfined)")
    }

    @Test(arguments: Invoker.all)
    func strictProfileAllowsOnlyUnixSockets(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let r = fx.exec(["--profile", "strict"], ["/probe", "socket-inet", "socket-unix", "fork", "ptrace-attach", "mount"], as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.probes == ["socket-inet": "EPERM", "socket-unix": "ok", "fork": "ok", "ptrace-attach": "EPERM", "mount": "EPERM"])
    }

    @Test(arguments: Invoker.all)
    func landlockKeepsSignalsInsideTheSandbox(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let release = try String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)
        let parts = release.split(separator: ".").compactMap { Int($0.prefix { $0.isNumber }) }
        try #require(parts.count >= 2 && (parts[0], parts[1]) >= (6, 12), "Landlock signal scoping needs Linux 6.12")
        // pid 1 is the sandbox's init, running as the same stack user: only
        // Landlock's signal scope stands between the command and it.
        let r = fx.exec(["--profile", "unconfined"], ["/probe", "kill-init"], as: invoker)
        #expect(r.probes["kill-init"] == "EPERM", "\(r)")
    }

    @Test(arguments: Invoker.all)
    func networkNoneHasOnlyLoopbackAndItWorks(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let r = fx.exec([], ["/bin/sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; /probe loopback"], as: invoker)
        #expect(r.lines.filter { !$0.hasPrefix("port: ") } == ["lo", "loopback: ok"], "\(r)")
        let host = fx.exec(["--network", "host"], ["/bin/sh", "-c", "tail -n +3 /proc/net/dev | wc -l"], as: invoker)
        #expect((Int(host.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 1, "host network: \(host)")
    }

    @Test(arguments: Invoker.all)
    func inheritedDescriptorsDoNotReachTheCommand(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let quoted = (invoker.prefix + [fx.stockade, "exec", "--", "/bin/ls", "/proc/self/fd"]).map { "'\($0)'" }.joined(separator: " ")
        let r = Fixture.run(["/bin/sh", "-c", "exec 7</etc/hostname 9</etc/hostname; exec \(quoted)"])
        #expect(r.status == 0, "\(r)")
        #expect(Set(r.lines).isSubset(of: ["0", "1", "2", "3"]), "descriptors inside: \(r.lines)")
    }
}
