import Foundation
import Sandbox
import Testing

/// Which mechanism `LimitEnforcement.detect` picks and where it puts cgroups, on directory trees
/// laid out like /sys/fs/cgroup. This host is cgroup v1 hybrid, so v2 is exercised only here:
/// the path logic, not the kernel's enforcement.
@Suite struct CgroupDecisionTests {
    let root: String

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("cgroup-tree-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    func file(_ path: String, _ text: String) throws {
        let full = root + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: false, encoding: .utf8)
    }

    func directory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: root + path, withIntermediateDirectories: true)
    }

    static let scope = "/user.slice/user-1000.slice/user@1000.service/app.slice/build.scope"
    static let unifiedMounts = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n"

    /// A delegated v2 scope: its controllers, its (empty) subtree_control, its procs.
    func delegatedScope(controllers: String, enabled: String = "") throws -> String {
        let dir = "/sys/fs/cgroup" + Self.scope
        try file(dir + "/cgroup.controllers", controllers + "\n")
        try file(dir + "/cgroup.subtree_control", enabled)
        try file(dir + "/cgroup.procs", "")
        return root + dir
    }

    @Test func aDelegatedV2ScopeWithControllersEnabledHoldsTheSandboxes() throws {
        let dir = try delegatedScope(controllers: "cpuset cpu io memory pids", enabled: "cpu memory pids\n")
        let probe = CgroupProbe(mounts: Self.unifiedMounts, membership: "0::\(Self.scope)\n", root: root, pid: 4242, euid: 1000)
        let decided = LimitEnforcement.detect(probe)
        #expect(decided == .cgroupV2(parent: dir, controllers: [.memory, .pids, .cpu]))
        #expect(decided.summary.hasPrefix("cgroup v2 (memory, pids, cpu)"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/4242.0.supervisor"), "no leaf needed")
    }

    @Test func controllersAreEnabledForTheChildrenWhenNotYet() throws {
        let dir = try delegatedScope(controllers: "memory pids")
        let probe = CgroupProbe(mounts: Self.unifiedMounts, membership: "0::\(Self.scope)\n", root: root, pid: 4242, euid: 1000)
        #expect(LimitEnforcement.detect(probe) == .cgroupV2(parent: dir, controllers: [.memory, .pids]))
        let written = try String(contentsOfFile: dir + "/cgroup.subtree_control", encoding: .utf8)
        #expect(written == "+memory +pids")
        #expect(LimitEnforcement.detect(probe).summary.contains("not enforced: cpu"))
    }

    @Test func aCgroupPathKeepsItsColons() throws {
        let scope = "/user.slice/run-u7:build.scope"
        let dir = "/sys/fs/cgroup" + scope
        try file(dir + "/cgroup.controllers", "memory pids\n")
        try file(dir + "/cgroup.subtree_control", "memory pids\n")
        try file(dir + "/cgroup.procs", "")
        let probe = CgroupProbe(mounts: "sysfs /sys sysfs rw 0 0\n" + Self.unifiedMounts,
                                membership: "1:name=systemd:/\n0::\(scope)\n", root: root, pid: 4242, euid: 1000)
        #expect(LimitEnforcement.detect(probe) == .cgroupV2(parent: root + dir, controllers: [.memory, .pids]))
    }

    @Test func rootOnV2UsesAChildOfTheRootCgroupNotItsSessionScope() throws {
        try file("/sys/fs/cgroup/cgroup.subtree_control", "cpuset cpu io memory pids\n")
        try file("/sys/fs/cgroup/stockade/cgroup.subtree_control", "")
        let probe = CgroupProbe(mounts: Self.unifiedMounts, membership: "0::/user.slice/user-0.slice/session-1.scope\n",
                                root: root, pid: 4242, euid: 0)
        #expect(LimitEnforcement.detect(probe) == .cgroupV2(parent: root + "/sys/fs/cgroup/stockade", controllers: [.memory, .pids, .cpu]))
        let written = try String(contentsOfFile: root + "/sys/fs/cgroup/stockade/cgroup.subtree_control", encoding: .utf8)
        #expect(written == "+memory +pids +cpu")
    }

    @Test func aHybridHostWithAnEmptyUnifiedTreeFallsToV1BeneathTheInvokersOwnCgroups() throws {
        try file("/sys/fs/cgroup/unified/cgroup.controllers", "\n")
        for controller in ["memory", "pids", "cpu"] { try directory("/sys/fs/cgroup/\(controller)/process_api/x") }
        let mounts = """
            cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
            cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
            cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
            cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
            """
        let membership = "8:pids:/process_api/x\n4:memory:/process_api/x\n1:cpu:/\n0::/\n"
        let decided = LimitEnforcement.detect(CgroupProbe(mounts: mounts, membership: membership, root: root))
        #expect(decided == .cgroupV1(parents: [
            .memory: root + "/sys/fs/cgroup/memory/process_api/x/stockade",
            .pids: root + "/sys/fs/cgroup/pids/process_api/x/stockade",
            .cpu: root + "/sys/fs/cgroup/cpu/stockade",
        ]))
        #expect(FileManager.default.fileExists(atPath: root + "/sys/fs/cgroup/memory/process_api/x/stockade"))
    }

    @Test func aCombinedCpuHierarchyIsFoundByItsOptions() throws {
        try directory("/sys/fs/cgroup/cpu,cpuacct")
        let mounts = "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,cpu,cpuacct 0 0\n"
        let decided = LimitEnforcement.detect(CgroupProbe(mounts: mounts, membership: "3:cpu,cpuacct:/\n", root: root))
        #expect(decided == .cgroupV1(parents: [.cpu: root + "/sys/fs/cgroup/cpu,cpuacct/stockade"]))
        #expect(decided.summary.contains("not enforced: memory, pids"))
    }

    @Test func withoutAnyCgroupOnlyRlimitsHold() {
        let decided = LimitEnforcement.detect(CgroupProbe(mounts: "proc /proc proc rw 0 0\n", membership: "0::/\n", root: root))
        #expect(decided == .rlimits(reason: "no cgroup delegated"))
        #expect(decided.summary.contains("cpu not enforced"))
    }

    @Test func staleCgroupsOfDeadSupervisorsAreCollectedAndLiveOnesKept() throws {
        try directory("/sys/fs/cgroup/pids")
        let parent = root + "/sys/fs/cgroup/pids/stockade"
        // A live supervisor (its start time matches) and a dead one; only ours are named so.
        try file("/proc/777/stat", "777 (stockade) S 1 777 777 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 0 0")
        for name in ["777.12345.800", "777.999.801", "888.1.2", "not-ours", "777.12345.supervisor"] {
            try directory("/sys/fs/cgroup/pids/stockade/" + name)
        }
        _ = LimitEnforcement.detect(CgroupProbe(mounts: "cgroup /sys/fs/cgroup/pids cgroup rw,pids 0 0\n",
                                                membership: "8:pids:/\n", root: root))
        let left = try FileManager.default.contentsOfDirectory(atPath: parent).sorted()
        #expect(left == ["777.12345.800", "777.12345.supervisor", "not-ours"])
    }
}
