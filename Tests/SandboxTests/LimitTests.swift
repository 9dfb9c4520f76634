import Foundation
import StockadeTestSupport
import Synchronization
import Testing

/// Memory, pids, cpu and tmpfs limits of real sandboxes, as each invoker can have them.
/// Root on this host (cgroup v1 hybrid) gets a cgroup per sandbox: memory (tmpfs pages included),
/// pids and cpu quota, and a line naming a limit that was hit. `stockade-sub` and `stockade-plain`
/// have no delegated cgroup: memory is RLIMIT_AS per process plus tmpfs sizes, pids is
/// RLIMIT_NPROC (counted per uid in the sandbox's own user namespace), cpu is not enforced.
@Suite struct LimitTests {
    let fx = Fixture.shared

    /// Whether the invoker gets cgroups here: root, on v1 or a delegated v2.
    func hasCgroups(_ invoker: Invoker) -> Bool { invoker == .suiteUser && fx.isRoot }

    /// `stockade ARGS` with the config files pointed at test files (or at nothing).
    func stockade(_ args: [String], as invoker: Invoker, system: String? = nil, userHome: String? = nil) -> Outcome {
        let env = ["env", "STOCKADE_CONFIG=\(system ?? fx.dir + "/no-such-config.toml")",
                   "XDG_CONFIG_HOME=\(userHome ?? fx.dir + "/no-such-xdg")"]
        return Fixture.run(invoker.prefix + env + [fx.stockade] + args)
    }

    func exec(_ options: [String], _ script: String, as invoker: Invoker, system: String? = nil, userHome: String? = nil) -> Outcome {
        stockade(["exec"] + options + ["--", "/bin/sh", "-c", script], as: invoker, system: system, userHome: userHome)
    }

    /// A config file readable by every invoker.
    func config(_ text: String) -> String {
        let path = fx.makeDirectory("config") + "/config.toml"
        try! text.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o644)
        return path
    }

    /// An XDG_CONFIG_HOME holding `text` as stockade/config.toml.
    func userConfig(_ text: String) -> String {
        let home = fx.makeDirectory("xdg")
        try! FileManager.default.createDirectory(atPath: home + "/stockade", withIntermediateDirectories: true)
        try! text.write(toFile: home + "/stockade/config.toml", atomically: true, encoding: .utf8)
        chmod(home + "/stockade", 0o755)
        chmod(home + "/stockade/config.toml", 0o644)
        return home
    }

    static func maxProcesses(_ limits: String) -> String? {
        limits.split(separator: "\n").first { $0.hasPrefix("Max processes") }
            .map { $0.split(separator: " ", omittingEmptySubsequences: true)[2] }.map(String.init)
    }

    // MARK: - memory

    @Test(arguments: Invoker.all)
    func anAllocationAboveTheMemoryLimitFails(_ invoker: Invoker) {
        // dd's buffer is one 512 MiB allocation, written to in full.
        let hog = "dd if=/dev/zero of=/dev/null bs=512M count=1"
        let r = exec(["--memory", "128M"], hog, as: invoker)
        #expect(r.status != 0, "\(r)")
        if hasCgroups(invoker) {
            #expect(r.status == 137, "the memory cgroup's OOM killer: \(r)")
            #expect(r.stderr.contains("stockade: error: the command was killed: memory limit 128 MiB reached"), "\(r)")
        } else {
            #expect(r.stderr.contains("memory exhausted") || r.stderr.contains("Cannot allocate"), "RLIMIT_AS: \(r)")
        }
        let control = exec(["--memory", "2G"], hog, as: invoker)
        #expect(control.status == 0, "without a low limit the allocation succeeds: \(control)")
    }

    @Test(arguments: Invoker.all)
    func tmpfsWritesBeyondTheMemoryLimitFail(_ invoker: Invoker) {
        for place in ["/tmp", "/dev/shm", "$HOME", "/scratch"] {
            let fill = "dd if=/dev/zero of=\(place)/fill bs=1M count=256 2>&1"
            let r = exec(["--memory", "128M", "--tmpfs", "/scratch"], fill, as: invoker)
            #expect(r.status != 0, "\(place): \(r)")
            // Under a memory cgroup the pages are charged there: the writer may be killed before the tmpfs is full.
            #expect(r.stdout.contains("No space left") || (hasCgroups(invoker) && r.status == 137), "\(place): \(r)")
            let control = exec(["--memory", "2G", "--tmpfs", "/scratch"], fill, as: invoker)
            #expect(control.status == 0, "\(place) holds 256 MiB with a 2 GiB limit: \(control)")
        }
    }

    @Test(arguments: Invoker.all)
    func everyTmpfsIsSizedWithinTheMemoryLimit(_ invoker: Invoker) {
        let r = exec(["--memory", "256M", "--tmpfs", "/scratch"], "df -k /tmp /dev/shm $HOME /scratch | tail -n +2", as: invoker)
        #expect(r.status == 0, "\(r)")
        let sizes = r.lines.compactMap { line in line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { UInt64($0) } }
        #expect(sizes.count == 4, "\(r)")
        // Charged to the cgroup, each may take the whole limit; with rlimits only, together they fit in it.
        let total = sizes.reduce(0, +)
        if hasCgroups(invoker) {
            #expect(sizes.allSatisfy { $0 <= 256 * 1024 }, "\(sizes)")
        } else {
            #expect(total <= 256 * 1024, "\(sizes)")
        }
    }

    // MARK: - pids

    @Test(arguments: Invoker.all)
    func aSandboxCannotHoldMoreProcessesThanItsLimit(_ invoker: Invoker) {
        let spawn = "i=0; while [ $i -lt 200 ]; do sleep 60 & i=$((i+1)); echo $i; done; echo held-all"
        let r = exec(["--pids", "64"], spawn, as: invoker)
        #expect(!r.stdout.contains("held-all"), "\(r)")
        #expect((r.lines.last.flatMap { Int($0) } ?? 0) < 64, "\(r)")
        if hasCgroups(invoker) {
            #expect(r.stderr.contains("process limit of 64 reached"), "\(r)")
        }
        let control = exec(["--pids", "1000"], spawn, as: invoker)
        #expect(control.stdout.contains("held-all"), "200 processes fit under 1000: \(control)")
    }

    /// RLIMIT_NPROC counts in each sandbox's own user namespace: two sandboxes of the same
    /// host uid, each under the limit, together above it, both hold their processes.
    @Test(arguments: Invoker.all)
    func eachSandboxCountsItsOwnProcesses(_ invoker: Invoker) {
        let hold = "i=0; while [ $i -lt 15 ]; do sleep 5 & i=$((i+1)); done; sleep 1; echo held"
        let outcomes = Mutex<[Outcome]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            let r = exec(["--pids", "20"], hold, as: invoker)
            outcomes.withLock { $0.append(r) }
        }
        for r in outcomes.withLock({ $0 }) { #expect(r.lines == ["held"], "\(r)") }
    }

    @Test(arguments: Invoker.all)
    func ulimitInsideSaysThePidsLimit(_ invoker: Invoker) {
        let given = exec(["--pids", "64"], "cat /proc/self/limits", as: invoker)
        #expect(Self.maxProcesses(given.stdout) == "64", "\(given)")
        let standard = exec([], "cat /proc/self/limits", as: invoker)
        #expect(Self.maxProcesses(standard.stdout) == "4096", "the default: \(standard)")
        #expect(standard.stderr.isEmpty, "no limits line when nothing was asked for: \(standard)")
    }

    // MARK: - cpu

    /// Where a v1 controller is mounted and the suite's own cgroup in it.
    static func v1Directory(_ controller: String) -> String? {
        guard let mounts = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8),
              let membership = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return nil }
        let name = Substring(controller)
        var mountPoint: String?
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count > 3, fields[2] == "cgroup", fields[3].split(separator: ",").contains(name) { mountPoint = String(fields[1]) }
        }
        var own: String?
        for line in membership.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            if fields.count == 3, fields[1].split(separator: ",").contains(name) { own = String(fields[2]) }
        }
        guard let mountPoint, let own else { return nil }
        return mountPoint + (own == "/" ? "" : own)
    }

    /// The cgroup a sandbox sees itself in: relative to the supervisor's, its cgroup namespace's root.
    static let ownCgroup = "grep ':%@:' /proc/self/cgroup | cut -d: -f3"

    @Test(arguments: Invoker.all)
    func theCpuQuotaIsTheSandboxsOwn(_ invoker: Invoker) throws {
        guard hasCgroups(invoker) else {
            let r = exec(["--cpus", "0.5"], "true", as: invoker)
            #expect(r.status == 0, "\(r)")
            #expect(r.stderr.contains("cpu not enforced"), "said, not pretended: \(r)")
            return
        }
        let cpu = try #require(Self.v1Directory("cpu"))
        let script = "d=/cg$(\(String(format: Self.ownCgroup, "cpu"))); cat $d/cpu.cfs_quota_us $d/cpu.cfs_period_us"
        let r = exec(["--cpus", "0.5", "--ro-bind", "\(cpu):/cg"], script, as: invoker)
        #expect(r.lines == ["50000", "100000"], "\(r)")
        #expect(r.stderr.contains("stockade: limits: cgroup v1 (memory, pids, cpu)"), "\(r)")
    }

    /// A user given a cgroup v1 subtree (the directories its own, its process moved in) gets a
    /// cgroup per sandbox as root does. Its pid 1 joins before it takes its set-up identity: on
    /// v1 a non-root opener's `tasks` admits only a process with the opener's uid.
    @Test(arguments: [Invoker.subordinateUser, .plainUser])
    func aUserWithADelegatedV1CgroupGetsOneForEachSandbox(_ invoker: Invoker) throws {
        guard fx.isRoot else { return }
        let ids = Fixture.run(invoker.prefix + ["id", "-u"])
        let uid = try #require(ids.lines.first, "\(ids)")
        let name = "stockade-test-" + UUID().uuidString.prefix(8)
        let delegated = try ["memory", "pids"].map { try #require(Self.v1Directory($0)) + "/" + name }
        for directory in delegated {
            #expect(mkdir(directory, 0o755) == 0)
            #expect(Fixture.run(["chown", "-R", "\(uid):\(uid)", directory]).status == 0)
        }
        defer {
            for directory in delegated {
                rmdir(directory + "/stockade")
                rmdir(directory)
            }
        }
        let join = delegated.map { "echo $$ > \($0)/tasks" }.joined(separator: "; ")
        let inside = "cat /cg$(\(String(format: Self.ownCgroup, "memory")))/memory.limit_in_bytes"
        let command = invoker.prefix + [fx.stockade, "exec", "--memory", "64M", "--ro-bind", "\(delegated[0]):/cg",
                                        "--", "/bin/sh", "-c", inside]
        let r = Fixture.run(["/bin/sh", "-c", join + "; exec \"$@\"", "sh"] + command)
        #expect(r.status == 0, "\(r)")
        #expect(r.lines == ["\(64 << 20)"], "the sandbox's own memory cgroup, beneath the user's: \(r)")
        for directory in delegated {
            let left = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/stockade"))?.filter { $0.first?.isNumber == true }
            #expect(left == [], "\(directory)/stockade: \(left ?? [])")
        }
    }

    // MARK: - defaults and cleanup

    @Test func theDefaultMemoryLimitIsHalfOfRAM() throws {
        guard fx.isRoot else { return }
        let memory = try #require(Self.v1Directory("memory"))
        let meminfo = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
        let kib = try #require(meminfo.split(separator: "\n").first { $0.hasPrefix("MemTotal:") }?
            .split(separator: " ").dropFirst().first.flatMap { UInt64($0) })
        let script = "cat /cg$(\(String(format: Self.ownCgroup, "memory")))/memory.limit_in_bytes; df -k /tmp | tail -1"
        let r = exec(["--ro-bind", "\(memory):/cg"], script, as: .suiteUser)
        #expect(r.lines.first == "\(kib * 1024 / 2)", "\(r)")
        let tmpSize = r.lines.last?.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { UInt64($0) }
        #expect((tmpSize ?? .max) <= kib / 2 + 4, "/tmp within the default limit: \(r)")
    }

    @Test func noCgroupIsLeftAndStaleOnesAreCollected() throws {
        guard fx.isRoot else { return }
        let parents = ["memory", "pids", "cpu"].compactMap { Self.v1Directory($0).map { $0 + "/stockade" } }
        #expect(parents.count == 3)
        // A cgroup whose supervisor is gone: pid 4194303 exceeds this host's pid_max or does not run.
        let stale = parents[1] + "/4194303.1.1"
        mkdir(parents[1], 0o755)
        #expect(mkdir(stale, 0o755) == 0)
        let r = exec(["--cpus", "1"], String(format: Self.ownCgroup, "pids"), as: .suiteUser)
        let name = try #require(r.lines.first?.split(separator: "/").last.map(String.init), "\(r)")
        #expect(name.split(separator: ".").count == 3, "named after its supervisor: \(name)")
        for parent in parents {
            #expect(!FileManager.default.fileExists(atPath: parent + "/" + name), "\(parent)/\(name) is left")
        }
        #expect(!FileManager.default.fileExists(atPath: stale), "the stale cgroup is collected")
    }

    // MARK: - configuration

    @Test(arguments: Invoker.all)
    func flagsOverrideTheUsersFileWhichOverridesTheOperators(_ invoker: Invoker) {
        let system = config("[limits]\npids = 100\n")
        let user = userConfig("[limits]\npids = 80\n")
        let onlySystem = exec([], "cat /proc/self/limits", as: invoker, system: system)
        #expect(Self.maxProcesses(onlySystem.stdout) == "100", "\(onlySystem)")
        #expect(onlySystem.stderr.hasPrefix("stockade: limits: "), "a configured limit is announced once: \(onlySystem)")
        #expect(onlySystem.stderr.split(separator: "\n").count == 1, "\(onlySystem)")
        let both = exec([], "cat /proc/self/limits", as: invoker, system: system, userHome: user)
        #expect(Self.maxProcesses(both.stdout) == "80", "\(both)")
        let flag = exec(["--pids", "70"], "cat /proc/self/limits", as: invoker, system: system, userHome: user)
        #expect(Self.maxProcesses(flag.stdout) == "70", "\(flag)")
    }

    @Test func aFlagAboveTheOperatorsMaximumIsRefused() {
        let system = config("[maximum]\nmemory = \"256M\"\npids = 500\n")
        let r = exec(["--memory", "512M"], "true", as: .suiteUser, system: system)
        #expect(r.status == 64, "\(r)")
        #expect(r.stderr == "stockade: error: --memory 512M is above the maximum 256 MiB set in \(system)\n", "\(r)")
        // The user's file can neither raise the maximum nor ask for more as a default.
        let raising = userConfig("[maximum]\nmemory = \"1G\"\n")
        let raised = exec(["--memory", "512M"], "true", as: .suiteUser, system: system, userHome: raising)
        #expect(raised.status == 64, "\(raised)")
        let asking = userConfig("[limits]\npids = 1000\n")
        let asked = exec([], "true", as: .suiteUser, system: system, userHome: asking)
        #expect(asked.status == 64, "\(asked)")
        #expect(asked.stderr.contains("the configured pids 1000 is above the maximum 500"), "\(asked)")
        // Within the maximum it runs; with no value given, the default is lowered to the maximum.
        let within = exec(["--memory", "128M"], "cat /proc/self/limits", as: .suiteUser, system: system)
        #expect(within.status == 0, "\(within)")
        #expect(Self.maxProcesses(within.stdout) == "500", "the default 4096 lowered to the maximum: \(within)")
    }

    @Test func theOperatorCanForbidTheHostNetworkAndChooseProfiles() {
        let system = config("[network]\nallow-host = false\n[profiles]\nexec = \"unconfined\"\n")
        let refused = exec(["--network", "host"], "true", as: .suiteUser, system: system)
        #expect(refused.status == 64, "\(refused)")
        #expect(refused.stderr == "stockade: error: --network host is not allowed by \(system)\n", "\(refused)")
        let reopening = userConfig("[network]\nallow-host = true\n")
        #expect(exec(["--network", "host"], "true", as: .suiteUser, system: system, userHome: reopening).status == 64)
        let seccomp = exec([], "grep '^Seccomp:' /proc/self/status", as: .suiteUser, system: system)
        #expect(seccomp.lines == ["Seccomp:\t0"], "the configured exec profile: \(seccomp)")
        let flag = exec(["--profile", "default"], "grep '^Seccomp:' /proc/self/status", as: .suiteUser, system: system)
        #expect(flag.lines == ["Seccomp:\t2"], "the flag wins: \(flag)")
    }

    /// Every documented key is accepted; disk and the audit caps are read for the disk budget and the audit.
    @Test func theDocumentedExampleIsAValidConfig() {
        let system = config("""
            [limits]
            memory = "4G"
            pids = 4096
            cpus = 2.0
            disk = "20G"
            [maximum]
            memory = "8GiB"
            pids = 8192
            cpus = 2
            disk = "50G"
            [profiles]
            exec = "default"
            run = "default"
            detect = "strict"
            build = "default"
            [audit]
            max-bytes = "100M"
            max-rate = 1000
            [network]
            allow-host = true
            """)
        let r = exec([], "true", as: .suiteUser, system: system)
        #expect(r.status == 0, "\(r)")
    }

    @Test(arguments: [
        ("[limits]\npids = \n", ":2:"),
        ("# limits\n[limits]\npids = \"many\"\n", ":3: limits.pids: must be a positive integer"),
        ("[limits]\nmemory = \"lots\"\n", ":2: limits.memory: must be a size"),
        ("[limits]\nswap = 1\n", ":2: limits.swap: unknown key"),
        ("[limit]\npids = 1\n", ":1: limit: unknown table"),
        ("[limits]\ndisk = -1\n", ":2: limits.disk: must be a size"),
        ("[audit]\nmax-rate = 0\n", ":2: audit.max-rate: must be a positive number"),
        ("[network]\nallow-host = \"yes\"\n", ":2: network.allow-host: must be true or false"),
    ])
    func aBrokenConfigIsOneLineWithFileAndLineAndExit78(_ text: String, _ expected: String) {
        let system = config(text)
        let r = exec([], "true", as: .suiteUser, system: system)
        #expect(r.status == 78, "\(r)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(r)")
        #expect(r.stderr.hasPrefix("stockade: error: configuration: \(system)"), "\(r)")
        #expect(r.stderr.contains(expected), "\(r)")
    }
}
