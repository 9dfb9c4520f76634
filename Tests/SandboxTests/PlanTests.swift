import Glibc
import Testing
@testable import Sandbox

/// The pure parts of planning: id maps, the /etc files, destinations.
@Suite struct PlanTests {
    let user = StackUser(uid: 1000, gid: 1000)
    let subuid = "alice:100000:65536\n1002:200000:65536\nroot:500000:65536\n"

    @Test func rootWithoutASubordinateRangeUsesTheReservedRange() throws {
        let m = try IdentityMapping.choose(for: user, euid: 0, egid: 0, userName: nil, subuid: nil, subgid: nil, helpers: nil)
        #expect(m.hostUID(1000) == UInt32(2_147_419_112))
        #expect(m.hostUID(0) == UInt32(0x7FFF_0000), "inside root is never host root")
        #expect(m.method == .direct && !m.denySetgroups)
        #expect(m.setupIdentity == .init(uid: 0, gid: 0))
    }

    @Test func rootUsesItsOwnSubordinateRange() throws {
        let byName = try IdentityMapping.choose(for: user, euid: 0, egid: 0, userName: "root", subuid: subuid, subgid: subuid, helpers: nil)
        #expect(byName.hostUID(1000) == 501_000)
        let byUID = try IdentityMapping.choose(for: user, euid: 0, egid: 0, userName: nil,
                                               subuid: "0:500000:65536", subgid: "0:500000:65536", helpers: nil)
        #expect(byUID.hostUID(1000) == 501_000)
    }

    /// The zygote's run namespace maps the invoker's own ids above the range; where they lie in
    /// it the maps would overlap and the helpers refuse, so those sandboxes are not nested.
    @Test func nestedMapsAreTheRangeFromZeroUnlessTheInvokersIdsLieInIt() {
        let helpers = IdentityMapping.Method.subordinateHelpers(newuidmap: "/u", newgidmap: "/g")
        let range = IdentityMapping.Range(inside: 0, outside: 400_000_000, count: 65536)
        let apart = IdentityMapping(uids: [range], gids: [range], method: helpers, denySetgroups: false, setupIdentity: nil)
        #expect(apart.nestedMaps?.uid == "0 0 65536" && apart.nestedMaps?.gid == "0 0 65536")
        let own = IdentityMapping.Range(inside: 0, outside: geteuid() > 10 ? geteuid() - 10 : 0, count: 65536)
        let overlapping = IdentityMapping(uids: [own], gids: [range], method: helpers, denySetgroups: false, setupIdentity: nil)
        #expect(overlapping.nestedMaps == nil)
        let direct = IdentityMapping(uids: [range], gids: [range], method: .direct, denySetgroups: false, setupIdentity: nil)
        #expect(direct.nestedMaps == nil, "root and a single id write maps themselves")
    }

    @Test func anUnprivilegedUserWithARangeUsesTheHelpers() throws {
        let m = try IdentityMapping.choose(for: user, euid: 1001, egid: 1001, userName: "alice", subuid: subuid, subgid: subuid,
                                           helpers: ("/usr/bin/newuidmap", "/usr/bin/newgidmap"))
        #expect(m.hostUID(1000) == 101_000 && m.hostGID(1000) == 101_000)
        #expect(m.hostUID(0) != 1001, "the invoking user's own uid is not mapped")
        #expect(m.method == .subordinateHelpers(newuidmap: "/usr/bin/newuidmap", newgidmap: "/usr/bin/newgidmap"))
        let byUID = try IdentityMapping.choose(for: user, euid: 1002, egid: 1002, userName: "bob", subuid: subuid, subgid: subuid,
                                               helpers: ("/u", "/g"))
        #expect(byUID.hostUID(1000) == 201_000)
    }

    @Test func withoutHelpersOrRangeTheStackUserIsTheInvoker() throws {
        for helpers in [nil, ("/u", "/g")] as [(String, String)?] {
            let m = try IdentityMapping.choose(for: user, euid: 1003, egid: 1004, userName: "carol", subuid: subuid, subgid: subuid,
                                               helpers: helpers)
            #expect(m.uids == [.init(inside: 1000, outside: 1003, count: 1)])
            #expect(m.gids == [.init(inside: 1000, outside: 1004, count: 1)])
            #expect(m.denySetgroups && m.setupIdentity == nil)
        }
    }

    @Test func aStackUserOutsideTheRangeIsAnError() {
        #expect(throws: SandboxError.self) {
            try IdentityMapping.choose(for: StackUser(uid: 70000, gid: 70000), euid: 0, egid: 0, userName: nil,
                                       subuid: nil, subgid: nil, helpers: nil)
        }
    }

    @Test func passwdAndGroupNameTheStackUser() {
        #expect(FilesystemLayout.passwd(base: "", user: user) ==
            "root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000:cnb:/home/cnb:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
        #expect(FilesystemLayout.group(base: "root:x:0:", user: user) == "root:x:0:\ncnb:x:1000:\n")
        #expect(FilesystemLayout.passwd(base: "app:x:1000:1000::/app:/bin/sh\n", user: user) == "app:x:1000:1000::/app:/bin/sh\n")
        #expect(FilesystemLayout.passwd(base: "", user: StackUser(uid: 0, gid: 0)).split(separator: "\n").count == 2)
    }

    @Test(arguments: [("/work", "/work"), ("/a//b/", "/a/b"), ("/layers/x", "/layers/x")])
    func destinationsAreNormalized(_ input: String, _ expected: String) throws {
        #expect(try FilesystemLayout.validDestination(input) == expected)
    }

    @Test(arguments: ["relative", "/", "/proc", "/proc/sys", "/a/../etc", "/a/./b"])
    func unsafeDestinationsAreRejected(_ input: String) {
        #expect(throws: SandboxError.self) { try FilesystemLayout.validDestination(input) }
    }

    @Test func theLayoutEndsReadOnlyAndListsWhatIsWritable() throws {
        let plan = SandboxPlan(command: ["/bin/true"], mounts: [.tmpfs(destination: "/scratch")], syscallFilter: .unconfined)
        let layout = try FilesystemLayout.plan(plan)
        #expect(layout.steps.last == MountStep(destination: "/", action: .remountReadOnly(recursive: false)))
        #expect(layout.writablePaths == ["/dev", "/dev/shm", "/dev/pts", "/tmp", "/home/cnb", "/scratch"])
        #expect(!layout.steps.contains { $0.destination.hasPrefix("/etc/shadow") })
        #expect(layout.steps.contains { $0.destination == "/proc" && $0.action == .proc })
    }

    @Test func terminationFollowsTheShellConvention() {
        #expect(Termination.exited(3).exitCode == 3)
        #expect(Termination.signaled(9).exitCode == 137)
        #expect(Termination.timedOut.exitCode == 124)
    }
}
