import Foundation
import StockadeTestSupport
import Testing

/// The sandbox without namespaces, where the kernel refuses a user namespace. Two places
/// refuse one here: Stockade's own sandbox (stockade inside `stockade exec`, as in a pod
/// under a runtime's default seccomp profile: clone3 ENOSYS, CLONE_NEWUSER EPERM), and
/// `no-userns`, the same refusal on the host with root's capabilities kept, for the path
/// where root runs the command as the stack user.
@Suite struct FallbackTests {
    let fx = Fixture.shared

    /// `no-userns`, built once beside the probe.
    static let noUserns: String = {
        let path = Fixture.shared.dir + "/no-userns"
        let cc = Fixture.run(["cc", "-static", "-O1", "-o", path, Fixture.shared.repo + "/Tests/Fixtures/no-userns.c"])
        precondition(cc.status == 0, "cannot build no-userns: \(cc)")
        chmod(path, 0o755)
        return path
    }()

    /// The directories of stockade's RUNPATH (a debug build's Swift runtime), bound at their own
    /// paths so that stockade starts inside a sandbox.
    static let runtimeBinds: [String] = {
        let dynamic = Fixture.run(["readelf", "-d", Fixture.shared.stockade]).stdout
        guard let line = dynamic.split(separator: "\n").first(where: { $0.contains("(RUNPATH)") || $0.contains("(RPATH)") }),
              let open = line.firstIndex(of: "["), let close = line.lastIndex(of: "]") else { return [] }
        return line[line.index(after: open)..<close].split(separator: ":").map(String.init)
            .filter { $0.hasPrefix("/") && FileManager.default.fileExists(atPath: $0) }
            .flatMap { ["--ro-bind", "\($0):\($0)"] }
    }()

    /// `stockade exec` with stockade at /stockade and the probe at /probe, running `command`.
    func outer(_ options: [String] = [], _ command: [String], as invoker: Invoker) -> Outcome {
        fx.stockade(["exec"] + Self.runtimeBinds + ["--ro-bind", "\(fx.stockade):/stockade", "--ro-bind", "\(fx.probe):/probe"]
                    + options + ["--"] + command, as: invoker)
    }

    /// A shell script in the outer sandbox.
    func outerScript(_ options: [String] = [], _ script: String, as invoker: Invoker) -> Outcome {
        outer(options, ["/bin/sh", "-c", script], as: invoker)
    }

    static func warnings(_ r: Outcome) -> [String] {
        r.stderr.split(separator: "\n").map(String.init).filter { $0.contains("warning: user namespaces are unavailable") }
    }

    @Test(arguments: Invoker.all)
    func nestedRunsACommandAfterOneWarning(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let r = outer([], ["/stockade", "exec", "--", "/bin/sh", "-c", "echo hello; id -u"], as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.lines == ["hello", "1000"], "the outer sandbox's stack user runs it: \(r)")
        let warnings = Self.warnings(r)
        #expect(warnings.count == 1, "\(r)")
        #expect(warnings.first?.contains("Lost: private mounts; a private pid space") == true, "\(r)")
        #expect(!r.stderr.contains("clone3"), "clone3's ENOSYS falls back to clone: \(r)")
    }

    @Test(arguments: Invoker.all)
    func asRootTheCommandIsTheStackUserOtherwiseTheInvoker(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let r = fx.run(invoker, [Self.noUserns, fx.stockade, "exec", "--", "/bin/sh", "-c", "id -u; id -g; id -G"])
        #expect(r.status == 0, "\(r)")
        let expected = invoker == .suiteUser && fx.isRoot ? ["1000", "1000", "1000"] : [invoker.uid, invoker.gid, invoker.gid]
        #expect(r.lines == expected, "\(r)")
        #expect(Self.warnings(r).count == 1, "\(r)")
        let status = fx.run(invoker, [Self.noUserns, fx.stockade, "exec", "--", "/bin/cat", "/proc/self/status"])
        #expect(status.stdout.contains("NoNewPrivs:\t1") && status.stdout.contains("CapEff:\t0000000000000000")
                && status.stdout.contains("CapBnd:\t0000000000000000") == (invoker == .suiteUser && fx.isRoot), "\(status)")
    }

    @Test(arguments: Invoker.all)
    func writesOnlyBeneathTheWritablePaths(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        // The outer sandbox's stack user may write all of /area; the inner command only /mine.
        let r = outerScript(["--tmpfs", "/area"], """
            mkdir /area/mine /area/other && /probe write:/area/other/outer && \
            /stockade exec --bind /area/mine:/mine --ro-bind /probe:/probe --chdir /mine -- \
                /probe write:f write:/area/other/f read:/area/other/outer write:/area/f
            """, as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.probes["write:/area/other/outer"] == "ok", "the control: the invoker itself may write there: \(r)")
        #expect(r.probes["write:f"] == "ok", "\(r)")
        #expect(r.probes["write:/area/other/f"] == "EACCES", "\(r)")
        #expect(r.probes["write:/area/f"] == "EACCES", "\(r)")
        #expect(r.probes["read:/area/other/outer"] == "EACCES", "reads too are confined to the plan's paths: \(r)")
    }

    @Test(arguments: Invoker.all)
    func asRootWritesOnlyBeneathTheWritablePaths(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let area = fx.makeDirectory("fallback-area", mode: 0o777)
        for name in ["mine", "other"] {
            mkdir(area + "/" + name, 0o777)
            chmod(area + "/" + name, 0o777)
        }
        let control = fx.run(invoker, [fx.probe, "write:\(area)/other/control"])
        #expect(control.probes["write:\(area)/other/control"] == "ok", "\(control)")
        // Paths inside arguments are the host's: the fallback translates whole paths only (here /mine).
        let r = fx.run(invoker, [Self.noUserns, fx.stockade, "exec", "--bind", "\(area)/mine:/mine", "--ro-bind", "\(fx.probe):/probe",
                                 "--chdir", "/mine", "--", "/probe", "write:f", "write:\(area)/other/f", "read:\(area)/other/control", "read:/etc/shadow"])
        #expect(r.status == 0, "\(r)")
        #expect(r.probes["write:f"] == "ok", "\(r)")
        #expect(FileManager.default.fileExists(atPath: area + "/mine/f"), "the view is the host directory")
        #expect(r.probes["write:\(area)/other/f"] == "EACCES", "\(r)")
        #expect(r.probes["read:\(area)/other/control"] == "EACCES", "\(r)")
        #expect(r.probes["read:/etc/shadow"] == "EACCES", "\(r)")
    }

    @Test(arguments: Invoker.all)
    func cannotSignalOutsideNorLeaveItsProcessGroup(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let r = outerScript([], """
            /probe landlock-abi
            sleep 60 & pid=$!
            /probe kill:$pid
            /stockade exec --ro-bind /probe:/probe -- /probe kill:$pid setsid setpgid
            kill $pid
            """, as: invoker)
        #expect(r.status == 0, "\(r)")
        let pid = try #require(r.lines.first { $0.hasPrefix("kill:") }.map { String($0.dropFirst(5).prefix { $0 != ":" }) })
        let kill = r.lines.filter { $0.hasPrefix("kill:\(pid):") }
        #expect(kill.first == "kill:\(pid): ok", "the control: the same uid outside may signal it: \(r)")
        #expect(r.probes["setsid"] == "EPERM" && r.probes["setpgid"] == "EPERM", "\(r)")
        let abi = Int(r.lines.first { $0.hasPrefix("abi=") }?.dropFirst(4) ?? "0") ?? 0
        guard abi >= 6 else { try skip("Landlock ABI \(abi) < 6 has no signal scoping") }
        #expect(kill.count == 2 && kill[1] == "kill:\(pid): EPERM", "\(r)")
    }

    @Test(arguments: Invoker.all)
    func cannotReachAbstractSocketsOrTCPOutside(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        // The listener is up before either connects: python runs both.
        let r = outerScript([], """
            /probe landlock-abi
            /probe loopback
            /stockade exec --ro-bind /probe:/probe -- /probe loopback | sed 's/^/inner /'
            python3 -c '
            import socket, subprocess
            s = socket.socket(socket.AF_UNIX)
            s.bind("\\0stockade-fallback")
            s.listen(4)
            subprocess.run(["/probe", "abstract-connect:stockade-fallback"])
            subprocess.run(["/stockade", "exec", "--ro-bind", "/probe:/probe", "--", "/probe", "abstract-connect:stockade-fallback"])
            '
            """, as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.lines.contains("loopback: ok"), "the control: TCP on loopback outside: \(r)")
        let abi = Int(r.lines.first { $0.hasPrefix("abi=") }?.dropFirst(4) ?? "0") ?? 0
        if abi >= 4 { #expect(r.lines.contains("inner loopback: EACCES"), "--network none refuses TCP: \(r)") }
        let connects = r.lines.filter { $0.hasPrefix("abstract-connect:") }
        #expect(connects.first == "abstract-connect:stockade-fallback: ok", "the control: \(r)")
        guard abi >= 6 else { try skip("Landlock ABI \(abi) < 6 has no abstract-socket scoping") }
        #expect(connects.count == 2 && connects[1] == "abstract-connect:stockade-fallback: EPERM", "\(r)")
    }

    @Test(arguments: Invoker.all)
    func whatTheCommandLeftRunningIsKilled(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        // The pipe to cat stays open for as long as the background shell lives: it ends only
        // when that shell is killed, or after it says it survived.
        let r = outerScript([], """
            /stockade exec -- /bin/sh -c '(sleep 20; echo survived) & echo started' | cat
            """, as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.lines == ["started"], "\(r)")
    }

    @Test(arguments: Invoker.all)
    func whatTheCommandLeftRunningDiesWithStockade(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        // The inner stockade is SIGKILLed once its command has started; the pipe to the reader
        // stays open for as long as anything the command started lives.
        let r = outerScript([], """
            { /stockade exec -- /bin/sh -c '(sleep 20; echo survived) & echo started; exec sleep 30' & echo $! > /tmp/pid; } |
            { read line; echo "$line"; while [ ! -s /tmp/pid ]; do :; done; kill -9 "$(cat /tmp/pid)"; cat; }
            """, as: invoker)
        #expect(r.lines == ["started"], "\(r)")
    }

    @Test(arguments: Invoker.all)
    func requireNamespacesRefuses(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let flag = outer([], ["/stockade", "exec", "--require-namespaces", "--", "/bin/true"], as: invoker)
        #expect(flag.status == 69, "\(flag)")
        #expect(flag.stderr.contains("namespaces are required") && Self.warnings(flag).isEmpty, "\(flag)")

        let config = fx.makeDirectory("config") + "/config.toml"
        try "[sandbox]\nrequire-namespaces = true\n".write(toFile: config, atomically: true, encoding: .utf8)
        chmod(config, 0o644)
        let configured = outer(["--ro-bind", "\(config):/config.toml", "--env", "STOCKADE_CONFIG=/config.toml"],
                               ["/stockade", "exec", "--", "/bin/true"], as: invoker)
        #expect(configured.status == 69, "\(configured)")

        let build = outer(["--ro-bind", "\(fx.examples):/examples"],
                          ["/stockade", "detect", "--require-namespaces", "--builder", "/examples/builder.toml",
                           "--path", "/examples/apps/shell-app"], as: invoker)
        #expect(build.status == 69 && Self.warnings(build).isEmpty, "\(build)")

        // Where namespaces exist the flag changes nothing.
        let host = fx.exec(["--require-namespaces"], ["/bin/true"], as: invoker)
        #expect(host.status == 0, "\(host)")
    }

    @Test(arguments: Invoker.all)
    func nestedBuildsTheShellApp(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let r = outerScript(["--ro-bind", "\(fx.examples):/examples", "--tmpfs", "/out"], """
            /stockade build --builder /examples/builder.toml --path /examples/apps/shell-app --layers /out/layers &&
            cat /out/layers/config/metadata.toml /out/layers/examples_shell/checksum.toml
            """, as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("[examples/shell] shell: tools made"), "\(r)")
        #expect(r.stdout.contains("command = [\"/workspace/app.sh\"]"), "\(r)")
        #expect(r.stdout.contains("launch = true"), "\(r)")
        #expect(Self.warnings(r).count == 1, "\(r)")
    }

    @Test(arguments: Invoker.all)
    func buildsTheShellAppWithoutUserNamespaces(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let layers = fx.makeDirectory("fallback-build", mode: 0o777) + "/layers"
        let r = fx.run(invoker, [Self.noUserns, fx.stockade, "build", "--builder", fx.examples + "/builder.toml",
                                 "--path", fx.examples + "/apps/shell-app", "--layers", layers])
        #expect(r.status == 0, "\(r)")
        let metadata = (try? String(contentsOfFile: layers + "/config/metadata.toml", encoding: .utf8)) ?? ""
        #expect(metadata.contains("command = [\"/workspace/app.sh\"]"), "\(metadata)")
        let owner = fx.owner(of: layers + "/examples_shell/tools/bin/shout")
        #expect(owner == (invoker == .suiteUser && fx.isRoot ? 1000 : UInt32(invoker.uid)), "owned by whoever ran the build")
    }
}

extension Fixture {
    /// `argv` as `invoker`.
    func run(_ invoker: Invoker, _ argv: [String]) -> Outcome { Fixture.run(invoker.prefix + argv) }
}

extension Invoker {
    /// The host uid and gid of this invoker, as `id` prints them.
    var uid: String { Self.id("-u", self) }
    var gid: String { Self.id("-g", self) }

    private static func id(_ flag: String, _ invoker: Invoker) -> String {
        Fixture.run(invoker.prefix + ["id", flag]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
