import Foundation
import StockadeTestSupport
import Testing

/// Every buildpack's sandbox gets the command's limits, and a limit that stops one is named with it.
@Suite struct ResourceLimitBuildTests {
    let fx = Fixture.shared

    static let hog = "dd if=/dev/zero of=/dev/null bs=512M count=1"

    /// Root holds the build in a memory cgroup and names the limit (exit 53); the unprivileged
    /// invokers have RLIMIT_AS only: the allocation fails all the same, as an ordinary build failure (51).
    @Test(arguments: Invoker.all)
    func aBuildpackAllocatingTooMuchIsStoppedAndNamed(_ invoker: Invoker) throws {
        let hog = try fx.scriptBuildpack(id: "test/hog", build: Self.hog)
        let r = fx.stockade(["build", "--memory", "128M", "--buildpack", hog, "--path", fx.makeDirectory("app")], as: invoker)
        let errorLine = r.stderr.split(separator: "\n").first { $0.hasPrefix("stockade: error: ") }.map(String.init) ?? ""
        #expect(errorLine.contains("test/hog@0.0.1"), "\(r)")
        if invoker == .suiteUser && fx.isRoot {
            #expect(r.status == 53, "\(r)")
            #expect(errorLine.contains("memory limit 128 MiB reached"), "\(r)")
        } else {
            #expect(r.status == 51, "\(r)")
        }
        let control = fx.stockade(["build", "--memory", "2G", "--buildpack", hog, "--path", fx.makeDirectory("app")], as: invoker)
        #expect(control.status == 0, "\(control)")
    }

    @Test func aDetectStoppedByALimitNamesIt() throws {
        guard fx.isRoot else { return }
        let hog = try fx.scriptBuildpack(id: "test/hungry-detect", detect: Self.hog, build: "exit 0")
        let r = fx.stockade(["detect", "--memory", "128M", "--buildpack", hog, "--path", fx.makeDirectory("app")], as: .suiteUser)
        #expect(r.status == 21, "\(r)")
        #expect((r.stdout + r.stderr).contains("memory limit 128 MiB reached"), "\(r)")
        #expect(r.stderr.contains("test/hungry-detect"), "\(r)")
    }

    // MARK: - a run's cgroups are pooled: the next tenant inherits no verdict

    /// The sandbox's own memory cgroup as /proc/self/cgroup names it (as root: a pooled one's name is reused).
    static let ownMemoryCgroup = "grep ':memory:' /proc/self/cgroup | cut -d: -f3"

    /// A build of `first`, then `second`, which exits 7 after its own checks: that must be
    /// an ordinary failure (51) naming no limit, whatever `first` ran into.
    func buildAfter(_ first: String, then second: String, limits: [String], tmpdir: String? = nil,
                    as invoker: Invoker) throws -> (Outcome, String) {
        let a = try fx.scriptBuildpack(id: "test/first-tenant", build: "echo \"cgroup $(\(Self.ownMemoryCgroup))\"\n" + first + "\nexit 0")
        let b = try fx.scriptBuildpack(id: "test/next-tenant", build: "echo \"cgroup $(\(Self.ownMemoryCgroup))\"\n" + second + "\nexit 7")
        let r = Fixture.run(invoker.prefix + ["env"] + (tmpdir.map { ["TMPDIR=" + $0] } ?? []) + [fx.stockade, "build"] + limits
                            + ["--buildpack", a, "--buildpack", b, "--path", fx.makeDirectory("app")])
        let errorLine = r.stderr.split(separator: "\n").first { $0.hasPrefix("stockade: error: ") }.map(String.init) ?? ""
        #expect(r.status == 51, "\(r)")
        #expect(errorLine.contains("test/next-tenant") && errorLine.hasSuffix("bin/build exited with 7"), "\(r)")
        let verdicts = r.stderr.split(separator: "\n").filter { !$0.hasPrefix("stockade: limits: ") }
        #expect(!verdicts.contains { $0.contains("limit") }, "no limit of the first tenant is the next one's: \(r)")
        if invoker == .suiteUser && fx.isRoot {
            let names = r.lines.filter { $0.contains("] cgroup ") }.map { $0.split(separator: " ").last.map(String.init) ?? "" }
            #expect(names.count == 2, "\(r)")
        }
        return (r, errorLine)
    }

    /// The first buildpack's allocation is OOM-killed (it goes on, exit 0); the next one, in the
    /// same run and on root in the same (pooled) cgroup, allocates 96 of its 128 MiB and is not
    /// reported as killed: the OOM count is read as a difference, the charges are emptied.
    @Test(arguments: Invoker.all)
    func anOOMKillIsNotTheNextBuildpacksVerdict(_ invoker: Invoker) throws {
        let (r, _) = try buildAfter(Self.hog + " 2>/dev/null || echo first allocation failed",
                                    then: "dd if=/dev/zero of=/dev/null bs=96M count=1 2>/dev/null && echo full limit",
                                    limits: ["--memory", "128M"], as: invoker)
        #expect(r.stdout.contains("first allocation failed"), "\(r)")
        #expect(r.stdout.contains("[test/next-tenant] full limit"), "\(r)")
        if invoker == .suiteUser && fx.isRoot {
            let names = r.lines.filter { $0.contains("] cgroup ") }.map { $0.split(separator: " ").last.map(String.init) ?? "" }
            #expect(Set(names).count == 1, "the second sandbox reuses the first one's emptied cgroup: \(r)")
            // Named from the sandbox's cgroup namespace, whose root is this process's own cgroup.
            let own = try String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8).split(separator: "\n")
                .map { $0.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false) }
                .first { $0.count == 3 && $0[1].split(separator: ",").contains("memory") }?[2] ?? ""
            let pooled = "/sys/fs/cgroup/memory" + (own == "/" ? "" : String(own)) + (names.first ?? "")
            #expect(names.first?.hasPrefix("/stockade/") == true && !FileManager.default.fileExists(atPath: pooled),
                    "the pool is removed at the end of the run: \(pooled)")
        }
    }

    /// The first buildpack forks until the pids limit refuses; the next one starts 16 processes
    /// under the same limit and is not reported as over it. A cgroup whose (unresettable) peak
    /// reached the limit is not reused.
    @Test(arguments: Invoker.all)
    func aPidsLimitReachedIsNotTheNextBuildpacksVerdict(_ invoker: Invoker) throws {
        let bomb = "sh -c 'i=0; while [ $i -lt 64 ]; do sleep 30 & i=$((i+1)); done' 2>/dev/null; echo first forks stopped"
        let spawn = "i=0; while [ $i -lt 16 ]; do sleep 30 & i=$((i+1)); done; echo started 16"
        // A memory limit too: without one no charge may stay, and the cgroup would never be pooled.
        let (r, _) = try buildAfter(bomb, then: spawn, limits: ["--memory", "256M", "--pids", "24"], as: invoker)
        #expect(r.stdout.contains("first forks stopped"), "\(r)")
        #expect(r.stdout.contains("[test/next-tenant] started 16"), "\(r)")
        if invoker == .suiteUser && fx.isRoot {
            let names = r.lines.filter { $0.contains("] cgroup ") }.map { $0.split(separator: " ").last.map(String.init) ?? "" }
            #expect(Set(names).count == 2, "a cgroup whose pids peak reached the limit is not pooled: \(r)")
        }
    }

    /// The first buildpack leaves 64 MiB in a file of its layers on a tmpfs (the run's TMPDIR):
    /// pages no reclaim frees, charged to its cgroup. The next one must still get its whole
    /// 128 MiB: a cgroup left with charges is removed, not pooled.
    @Test(arguments: Invoker.all)
    func filesLeftOnATmpfsAreNotChargedToTheNextBuildpack(_ invoker: Invoker) throws {
        guard fx.isRoot else { try skip("mounting the tmpfs TMPDIR needs root") }
        let tmp = fx.makeDirectory("tmpfs-tmpdir", mode: 0o777)
        try #require(Fixture.run(["mount", "-t", "tmpfs", "-o", "size=512m,mode=0777", "tmpfs", tmp]).status == 0)
        defer { _ = Fixture.run(["umount", "-l", tmp]) }
        let (r, _) = try buildAfter("head -c 67108864 /dev/zero > \"$1/left-behind\" && echo wrote 64 MiB",
                                    then: "dd if=/dev/zero of=/dev/null bs=96M count=1 2>/dev/null && echo full limit",
                                    limits: ["--memory", "128M"], tmpdir: tmp, as: invoker)
        #expect(r.stdout.contains("[test/first-tenant] wrote 64 MiB"), "\(r)")
        #expect(r.stdout.contains("[test/next-tenant] full limit"), "\(r)")
    }
}

