import CSeccomp
import Glibc
import StockadeTestSupport
import Testing
@testable import Seccomp
import JSON

/// The user-space evaluator against the kernel, and the audit filters under real seccomp.
/// Each batch runs in an exit test's process (see ``runBatch(_:answer:_:)``): the kernel's
/// results must equal what ``SeccompDecision/decide(_:filters:)`` predicts, call by call.
@Suite struct AuditKernelTests {
    struct Batch: Codable, Sendable, CustomTestStringConvertible {
        var stack: Stack
        var answer: Answer
        var calls: [Call]
        var testDescription: String { "\(calls.count) calls under \(stack), answered by \(answer)" }
    }

    /// Calls a stack kills are checked one by one in ``killsAgree(_:)``.
    private static func batch(_ stack: Stack, _ answer: Answer, _ calls: [Call]) -> Batch {
        let programs = try! stack.programs()
        return Batch(stack: stack, answer: answer, calls: calls.filter {
            let decision = SeccompDecision.decide($0.data(), filters: programs)
            return decision != .kill && decision != .trap
        })
    }

    private static func check(_ batch: Batch) async {
        await #expect(processExitsWith: .exitCode(0), "first differing call: exit status - 10") { [batch] in
            runBatch(batch.stack, answer: batch.answer, batch.calls)
        }
    }

    /// The same calls, in order, so that an exit status of 10 + n names call n.
    static func describe(_ batch: Batch, status: Int32) -> String {
        let index = Int(status) - 10
        return batch.calls.indices.contains(index) ? batch.calls[index].label : "status \(status)"
    }

    // MARK: The evaluator agrees with the kernel

    // Not learn mode: without a listener even exit_group fails there.
    static let fixedBatches: [Batch] = (Stack.normal + [.auditDefault, .auditStrict, .auditDenylist, .auditDefaultHandoff])
        .map { batch($0, .none, Calls.fixed) }

    @Test(arguments: fixedBatches)
    func fixedCallsAgree(_ batch: Batch) async {
        #expect(batch.calls.count > 40)
        await Self.check(batch)
    }

    static let randomBatches: [Batch] = (Stack.normal + [.auditDefault, .auditDenylist]).enumerated().map {
        batch($0.element, .none, Calls.random(200, seed: UInt64(1000 + $0.offset)))
    }

    @Test(arguments: randomBatches)
    func randomCallsAgree(_ batch: Batch) async {
        await Self.check(batch)
    }

    /// A hand-written program that turns getppid's arguments into its errno through every
    /// ALU operation, load, store and jump seccomp accepts.
    @Test func aluOperationsAgree() async {
        var random = SplitMix64(seed: 99)
        let interesting: [Int] = [0, 1, 2, 31, 32, 33, 0x7FFF_FFFF, Int(bitPattern: 0xFFFF_FFFF_FFFF_FFFF),
                                  0x1_0000_0001, 0xDEAD_BEEF]
        var calls: [Call] = []
        for operation in 0..<40 {
            for _ in 0..<6 {
                let a0 = random.next() % 2 == 0 ? interesting[Int(random.next() % 10)] : Int(bitPattern: UInt(random.next()))
                let a1 = random.next() % 2 == 0 ? interesting[Int(random.next() % 10)] : Int(bitPattern: UInt(random.next()))
                calls.append(Call("op \(operation) \(a0) \(a1)", __NR_getppid, [a0, a1, 0, 0, 0, operation]))
            }
        }
        await Self.check(Self.batch(.alu, .none, calls))
    }

    static let kills: [(Stack, Call)] = (Stack.normal + Stack.audit).flatMap { stack in
        let programs = try! stack.programs()
        return Calls.fixed.filter { SeccompDecision.decide($0.data(), filters: programs) == .kill }.map { (stack, $0) }
    }

    @Test func killsAreFound() {
        // The x32 call under every stack, READ_IMPLIES_EXEC under the denylist's.
        #expect(Self.kills.count == Stack.normal.count + Stack.audit.count + 2)
    }

    @Test(arguments: kills)
    func killsAgree(_ stack: Stack, _ call: Call) async {
        await #expect(processExitsWith: .signal(SIGSYS)) { [stack, call] in
            guard let programs = try? stack.programs() else { _exit(2) }
            let args = call.materialized()
            _ = install(programs)
            _ = rawSyscall(call.nr, args[0], args[1], args[2], args[3], args[4], args[5])
            _exit(0)
        }
    }

    // MARK: Audit mode

    /// Without a listener, a notified call fails with ENOSYS: the variant routes it to NOTIFY.
    @Test func auditVariantsWithoutListener() async {
        await #expect(processExitsWith: .exitCode(0)) {
            guard let programs = try? Stack.auditDefault.programs() else { _exit(2) }
            let calls: [(Call, Int32)] = [
                (Call("getpid", __NR_getpid), 0),
                (Call("socket AF_UNIX", __NR_socket, [Int(AF_UNIX), Int(SOCK_STREAM.rawValue), 0]), 0),
                (Call("socket AF_INET", __NR_socket, [Int(AF_INET), Int(SOCK_STREAM.rawValue), 0]), ENOSYS),
                (Call("openat / O_RDONLY", __NR_openat, [Calls.atFdcwd, 0, Int(O_RDONLY)], path: "/"), 0),
                (Call("openat O_WRONLY", __NR_openat, [Calls.atFdcwd, 0, Int(O_WRONLY | O_CREAT)], path: Calls.missing), ENOSYS),
                (Call("mount", __NR_mount, [0, 1, 0, 0, 0]), ENOSYS),  // the baseline's EPERM
                (Call("keyctl", __NR_keyctl, [9999]), ENOSYS),  // the profile's EPERM
                (Call("clone3", __NR_clone3, [0, 0]), ENOSYS),
                (Call("ioctl TIOCGWINSZ", __NR_ioctl, [-1, Int(TIOCGWINSZ), 0]), EBADF),
            ]
            let args = calls.map { $0.0.materialized() }
            _ = install(programs)
            for (index, (call, expected)) in calls.enumerated() {
                let result = rawSyscall(call.nr, args[index][0], args[index][1], args[index][2], 0, 0, 0)
                if (result == -1 ? errno : 0) != expected { _exit(Int32(10 + index)) }
            }
            _exit(0)
        }
    }

    /// With a listener on the variant, every notification reaches it (EXDEV from the test's
    /// supervisor), never the listener-less baseline (which would give ENOSYS).
    static let routedBatches: [Batch] = Stack.audit.enumerated().map {
        batch($0.element, .exdev, Calls.fixed + Calls.random(60, seed: UInt64(2000 + $0.offset)))
    }

    @Test(arguments: routedBatches)
    func notificationsReachTheListener(_ batch: Batch) async {
        await Self.check(batch)
    }

    /// A supervisor answering with the original filters' decision gives every call the result
    /// it has without the audit: the audit changes nothing but who decides.
    static let supervisedBatches: [Batch] = Stack.audit.enumerated().map {
        batch($0.element, .supervisor, Calls.fixed + Calls.random(100, seed: UInt64(3000 + $0.offset)))
    }

    @Test(arguments: supervisedBatches)
    func supervisedAuditKeepsEnforcement(_ batch: Batch) async {
        await Self.check(batch)
    }

    // MARK: Learned profiles

    @Test func learnedProfileRefusesWhatWasNotSeen() async {
        await #expect(processExitsWith: .exitCode(0)) {
            let bytes = SeccompProfile.learned(syscalls: ["getppid", "exit_group", "read", "write"], comment: "test")
            guard let profile = try? SeccompProfile.parse(bytes, origin: "learned"),
                  let program = try? SeccompCompiler.compile(profile).program,
                  let baseline = try? SeccompCompiler.hardeningBaseline else { _exit(2) }
            _ = install([baseline, program])
            if rawSyscall(Int(__NR_getppid), 0, 0, 0, 0, 0, 0) == -1 { _exit(3) }
            if rawSyscall(Int(__NR_getpid), 0, 0, 0, 0, 0, 0) != -1 || errno != EPERM { _exit(4) }
            if rawSyscall(Int(__NR_clone3), 0, 0, 0, 0, 0, 0) != -1 || errno != ENOSYS { _exit(5) }
            _exit(0)
        }
    }
}
