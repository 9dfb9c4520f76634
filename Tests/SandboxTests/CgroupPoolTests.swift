import Foundation
import StockadeTestSupport
import Testing
@testable import Sandbox

/// The pool of a run's emptied cgroups against real cgroups of this host (root: v1). A task
/// the test itself puts into a cgroup stands for one a sandbox left behind.
@Suite struct CgroupPoolTests {
    let fx = Fixture.shared
    let limits = ResourceLimits(memory: 64 << 20, pids: 32)

    func enforcement() throws -> LimitEnforcement {
        guard fx.isRoot else { try skip("only root has cgroups on this host") }
        let enforcement = LimitEnforcement.detect()
        guard !enforcement.controllers.isEmpty else { try skip("no cgroup here: \(enforcement.summary)") }
        return enforcement
    }

    /// A `sleep` moved into every directory of `cgroup`, as a task a sandbox left would be.
    func occupy(_ cgroup: SandboxCgroup) throws -> Process {
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["300"]
        try sleeper.run()
        for directory in Set(cgroup.directories.values) {
            try "\(sleeper.processIdentifier)".write(toFile: directory + "/cgroup.procs", atomically: false, encoding: .utf8)
        }
        return sleeper
    }

    /// SIGKILL: the test process may hold SIGTERM blocked, and its children inherit that.
    func stop(_ sleeper: Process) {
        kill(sleeper.processIdentifier, SIGKILL)
        sleeper.waitUntilExit()
    }

    func end(_ sleeper: Process, _ cgroup: SandboxCgroup) {
        stop(sleeper)
        #expect(cgroup.removal.remove(), "\(cgroup.directories) removed once its task is gone")
    }

    @Test func anEmptiedCgroupIsReusedAndRemovedWithThePool() throws {
        let pool = CgroupPool()
        let first = try #require(try SandboxCgroup.create(try enforcement(), limits: limits, pool: pool))
        first.release()
        #expect(pool.count == 1)
        let second = try #require(try SandboxCgroup.create(try enforcement(), limits: limits, pool: pool))
        #expect(second.directories == first.directories, "taken from the pool")
        second.release()
        pool.drain()
        for directory in first.directories.values {
            #expect(!FileManager.default.fileExists(atPath: directory), "\(directory) is left after drain()")
        }
        let late = try #require(try SandboxCgroup.create(try enforcement(), limits: limits, pool: pool))
        late.release()
        #expect(pool.count == 0 && !FileManager.default.fileExists(atPath: late.directories.values.first!),
                "a sandbox ending after drain() removes its own cgroup")
    }

    @Test func aCgroupStillHoldingATaskIsNotPooled() throws {
        let pool = CgroupPool()
        let held = try #require(try SandboxCgroup.create(try enforcement(), limits: limits, pool: pool))
        let sleeper = try occupy(held)
        held.release()
        #expect(pool.count == 0, "a cgroup with a task goes back to no pool")
        let next = try #require(try SandboxCgroup.create(try enforcement(), limits: limits, pool: pool))
        #expect(next.directories != held.directories)
        next.release()
        end(sleeper, held)
        pool.drain()
    }

    /// Without a memory limit: v1's `memory.force_empty` would refuse a cgroup with tasks on its
    /// own (EBUSY), a second wall this test would not tell from the first.
    @Test func aPooledCgroupATaskEnteredIsNotTaken() throws {
        let pool = CgroupPool()
        let limits = ResourceLimits(pids: 32)
        let pooled = try #require(try SandboxCgroup.create(try enforcement(), limits: limits, pool: pool))
        pooled.release()
        #expect(pool.count == 1)
        let sleeper = try occupy(pooled)
        let next = try #require(try SandboxCgroup.create(try enforcement(), limits: limits, pool: pool))
        #expect(next.directories != pooled.directories, "checked again when taken")
        #expect(pool.count == 0)
        next.release()
        stop(sleeper)
        // The take already gave it up for removal; the kernel refused while the task ran.
        #expect(CgroupRemoval(directories: Set(pooled.directories.values).sorted()).remove())
        pool.drain()
    }
}
