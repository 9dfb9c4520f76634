import CSandbox
import Foundation
import StockadeTestSupport
import Testing
@testable import Sandbox

/// The zygote's side of a request: a plan whose pointers hold the supervisor's addresses,
/// moved onto its own copy of the arena. Whatever the bytes, it reads nothing outside them.
@Suite struct ZygoteRequestTests {
    /// A plan as the supervisor builds one: every kind of pointer the zygote moves.
    static func plan(in arena: CArena) -> stk_spawn_plan {
        var plan = stk_spawn_plan()
        plan.namespaced = 1
        plan.hostname = arena.string("sandbox")
        let mounts = arena.array(of: stk_mount.self, count: 3)
        mounts[0].kind = STK_MOUNT_BIND.rawValue
        mounts[0].source = arena.string("/usr")
        mounts[0].dest = arena.string("/usr")
        mounts[1].kind = STK_MOUNT_FILE.rawValue
        mounts[1].dest = arena.string("/etc/passwd")
        mounts[1].data = arena.bytes([0x63, 0x6e, 0x62, 0xff])
        mounts[1].data_len = 4
        mounts[2].kind = STK_MOUNT_SYMLINK.rawValue
        mounts[2].dest = arena.string("/bin")
        mounts[2].data = arena.string("usr/bin")
        plan.mounts = UnsafePointer(mounts)
        plan.mount_count = 3
        plan.scratch_fds = arena.array(of: Int32.self, count: 3)
        plan.staging = arena.string("/tmp")
        plan.workdir = arena.string("/workspace")
        plan.writable_paths = arena.strings(["/tmp", "/workspace"])
        plan.writable_count = 2
        plan.argv = arena.strings(["/cnb/buildpack/bin/detect", "/platform", "/plan.toml"])
        plan.envp = arena.strings(["PATH=/usr/bin", "CNB_BUILDPACK_DIR=/cnb/buildpack"])
        plan.search_path = arena.string("/usr/bin")
        let limits = arena.array(of: stk_rlimit.self, count: 2)
        limits[1].soft = 7
        plan.rlimits = UnsafePointer(limits)
        plan.rlimit_count = 2
        plan.profile = stk_bpf(instructions: UnsafeRawPointer(arena.bytes([UInt8](repeating: 6, count: 16))), count: 2, flags: 0)
        plan.baseline = stk_bpf(instructions: UnsafeRawPointer(arena.bytes([UInt8](repeating: 9, count: 8))), count: 1, flags: 0)
        return plan
    }

    /// The zygote's copy of `arena` and the request over it.
    static func request(_ plan: stk_spawn_plan, _ arena: CArena, into buffer: UnsafeMutableRawPointer) -> Zygote.Request {
        buffer.copyMemory(from: arena.base, byteCount: arena.used)
        return Zygote.Request(plan: plan, origin: UInt(bitPattern: arena.base), used: arena.used, buffer: buffer)
    }

    @Test func aPlanArrivesWholeWithItsDescriptorsInPlace() throws {
        let arena = CArena()
        defer { arena.release() }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: CArena.capacity, alignment: 16)
        defer { buffer.deallocate() }
        var request = Self.request(Self.plan(in: arena), arena, into: buffer)
        let accepted = request.relocate(descriptors: [10, 11, 12, 13])
        #expect(accepted)
        let moved = request.plan
        #expect(Self.inside(moved, buffer, arena.used).isEmpty)
        #expect(String(cString: moved.hostname) == "sandbox" && String(cString: moved.workdir) == "/workspace")
        #expect(String(cString: moved.mounts[0].source) == "/usr" && String(cString: moved.mounts[2].data) == "usr/bin")
        #expect(Array(UnsafeBufferPointer(start: UnsafeRawPointer(moved.mounts[1].data).assumingMemoryBound(to: UInt8.self), count: 4))
                == [0x63, 0x6e, 0x62, 0xff])
        #expect((0..<3).map { String(cString: moved.argv[$0]!) } == ["/cnb/buildpack/bin/detect", "/platform", "/plan.toml"])
        #expect(moved.argv[3] == nil && String(cString: moved.envp[1]!) == "CNB_BUILDPACK_DIR=/cnb/buildpack")
        #expect(moved.rlimits[1].soft == 7 && moved.profile.instructions.load(as: UInt8.self) == 6)
        #expect(moved.stdio == (10, 11, 12) && moved.sync_fd == 13)
    }

    @Test func anythingPointingOutsideTheArenaIsRefused() throws {
        let arena = CArena()
        defer { arena.release() }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: CArena.capacity, alignment: 16)
        defer { buffer.deallocate() }
        let outside = strdup("/elsewhere")!
        defer { free(outside) }
        let cases: [(String, (inout stk_spawn_plan) -> Void)] = [
            ("workdir", { $0.workdir = UnsafePointer(outside) }),
            ("a mount's source", { UnsafeMutablePointer(mutating: $0.mounts)[0].source = UnsafePointer(outside) }),
            ("too many mounts", { $0.mount_count = 1 << 20 }),
            ("a negative count", { $0.rlimit_count = -1 }),
            ("a file's length", { UnsafeMutablePointer(mutating: $0.mounts)[1].data_len = CArena.capacity }),
            ("writable count", { $0.writable_count = 3 }),
            ("a filter's length", { $0.baseline.count = 60_000 }),
            ("an audited plan", { $0.audit_listener = 1 }),
        ]
        for (name, corrupt) in cases {
            var plan = Self.plan(in: arena)
            corrupt(&plan)
            var request = Self.request(plan, arena, into: buffer)
            let accepted = request.relocate(descriptors: [10, 11, 12, 13])
            #expect(!accepted, "\(name)")
        }
        for descriptors in [[10, 11, 12], [10, 11, 12, 13, 14]] as [[Int32]] {
            var request = Self.request(Self.plan(in: arena), arena, into: buffer)
            let accepted = request.relocate(descriptors: descriptors)
            #expect(!accepted, "\(descriptors.count) descriptors")
        }
        // An argument list whose NULL is overwritten, and a string whose NUL is: the
        // last allocation, so nothing after it in the arena can end either.
        let tail = CArena()
        defer { tail.release() }
        var plan = Self.plan(in: tail)
        plan.search_path = tail.string("/last")
        var request = Self.request(plan, tail, into: buffer)
        buffer.storeBytes(of: UInt8(ascii: "x"), toByteOffset: tail.used - 1, as: UInt8.self)
        let accepted = request.relocate(descriptors: [10, 11, 12, 13])
        #expect(!accepted, "unterminated string")
    }

    /// Random words of the arena and of the plan overwritten (with values inside the arena
    /// as often as not): the zygote refuses or accepts, and what it accepts points inside.
    @Test func corruptedPlansNeverLeadOutside() throws {
        var random = SplitMix64(seed: 0x2907)
        let arena = CArena()
        defer { arena.release() }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: CArena.capacity, alignment: 16)
        defer { buffer.deallocate() }
        let base = UInt64(UInt(bitPattern: arena.base))
        var accepted = 0
        for _ in 0..<3000 {
            var plan = Self.plan(in: arena)
            var request = Self.request(plan, arena, into: buffer)
            func word() -> UInt64 {
                switch random.next() % 3 {
                case 0: random.next()
                case 1: base &+ random.next() % UInt64(arena.used + 16)
                default: random.next() % 8
                }
            }
            for _ in 0..<(1 + random.next() % 4) {
                if random.next() % 2 == 0 {
                    let offset = Int(random.next() % UInt64(arena.used / 8)) * 8
                    buffer.storeBytes(of: word(), toByteOffset: offset, as: UInt64.self)
                } else {
                    withUnsafeMutableBytes(of: &plan) { bytes in
                        let offset = Int(random.next() % UInt64(bytes.count / 8)) * 8
                        bytes.storeBytes(of: word(), toByteOffset: offset, as: UInt64.self)
                    }
                    request.plan = plan
                }
            }
            if request.relocate(descriptors: Array(repeating: 3, count: 4)) {
                accepted += 1
                let stray = Self.inside(request.plan, buffer, arena.used)
                #expect(stray.isEmpty, "\(stray)")
            }
        }
        #expect(accepted > 0, "every corruption refused: the check of what is accepted never ran")
    }

    /// The pointers of `plan` that do not lie within `used` bytes at `buffer`, by name.
    static func inside(_ plan: stk_spawn_plan, _ buffer: UnsafeMutableRawPointer, _ used: Int) -> [String] {
        var stray: [String] = []
        func check(_ name: String, _ pointer: UnsafeRawPointer?, _ bytes: Int) {
            guard let pointer else { return }
            let offset = pointer - UnsafeRawPointer(buffer)
            if offset < 0 || offset + bytes > used { stray.append(name) }
        }
        func string(_ name: String, _ pointer: UnsafePointer<CChar>?) {
            check(name, pointer.map(UnsafeRawPointer.init), 1)
            if let pointer, stray.isEmpty { check(name + " end", UnsafeRawPointer(pointer), strlen(pointer) + 1) }
        }
        func strings(_ name: String, _ list: UnsafePointer<UnsafePointer<CChar>?>?) {
            guard let list else { return }
            var index = 0
            while true {
                check("\(name)[\(index)]", UnsafeRawPointer(list + index), 8)
                guard stray.isEmpty, let entry = list[index] else { return }
                string("\(name)[\(index)]", entry)
                index += 1
            }
        }
        string("hostname", plan.hostname)
        string("staging", plan.staging)
        string("workdir", plan.workdir)
        string("search_path", plan.search_path)
        strings("argv", plan.argv)
        strings("envp", plan.envp)
        strings("writable_paths", plan.writable_paths)
        check("mounts", plan.mounts.map(UnsafeRawPointer.init), plan.mount_count * MemoryLayout<stk_mount>.stride)
        if stray.isEmpty, let mounts = plan.mounts {
            for i in 0..<plan.mount_count {
                string("mounts[\(i)].source", mounts[i].source)
                string("mounts[\(i)].dest", mounts[i].dest)
                if mounts[i].kind == STK_MOUNT_FILE.rawValue {
                    check("mounts[\(i)].data", mounts[i].data.map(UnsafeRawPointer.init), mounts[i].data_len)
                } else {
                    string("mounts[\(i)].data", mounts[i].data)
                }
            }
        }
        check("scratch_fds", plan.scratch_fds.map(UnsafeRawPointer.init), max(plan.mount_count, 1) * 4)
        check("rlimits", plan.rlimits.map(UnsafeRawPointer.init), plan.rlimit_count * MemoryLayout<stk_rlimit>.stride)
        for (name, filter) in [("profile", plan.profile), ("baseline", plan.baseline), ("init_filter", plan.init_filter)] where filter.count > 0 {
            check(name, filter.instructions, Int(filter.count) * 8)
        }
        return stray
    }
}
