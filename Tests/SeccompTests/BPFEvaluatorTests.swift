import CSeccomp
import Glibc
import StockadeTestSupport
import Testing
@testable import Seccomp
import JSON

private typealias I = BPFInstruction

private func ins(_ code: UInt16, _ k: UInt32 = 0, _ jt: UInt8 = 0, _ jf: UInt8 = 0) -> I {
    I(code: code, jt: jt, jf: jf, k: k)
}

private func run(_ instructions: [I], _ data: SeccompData = SeccompData(nr: 0)) -> UInt32 {
    BPFInstruction.encode(instructions).evaluate(data)
}

private func returning(_ value: UInt32) -> BPFProgram { BPFInstruction.encode([ins(BPF.retK, value)]) }

private let retA = ins(BPF.retA)
private let killProcess = BPF.retKillProcess

@Suite struct BPFEvaluatorTests {
    // MARK: Instructions

    @Test func loadsReadSeccompDataAsTheKernelLaysItOut() {
        let data = SeccompData(nr: -2, arch: 0xC000_003E, instructionPointer: 0x1122_3344_5566_7788,
                               args: [0xAAAA_AAAA_0000_0001, 2, 3, 4, 5, 0xFFFF_FFFF_8000_0006])
        let expected: [UInt32: UInt32] = [
            0: 0xFFFF_FFFE, 4: 0xC000_003E, 8: 0x5566_7788, 12: 0x1122_3344,
            16: 1, 20: 0xAAAA_AAAA, 24: 2, 28: 0, 48: 5, 56: 0x8000_0006, 60: 0xFFFF_FFFF,
        ]
        for (offset, value) in expected {
            #expect(run([ins(BPF.ldWAbs, offset), retA], data) == value, "offset \(offset)")
        }
        #expect(run([ins(BPF.ldWAbs, 64), retA], data) == killProcess)
        #expect(run([ins(BPF.ldWAbs, 6), retA], data) == killProcess)
        #expect(run([ins(BPF.ldWAbs, 0xFFFF_FFFC), retA], data) == killProcess)
        #expect(run([ins(BPF.ldWLen), retA]) == 64)
        #expect(run([ins(BPF.ldxWLen), ins(BPF.txa), retA]) == 64)
        #expect(SeccompData.nativeAuditArch == 0xC000_003E)  // AUDIT_ARCH_X86_64
        #expect(SeccompData(nr: 1, args: [7]).args == [7, 0, 0, 0, 0, 0])
    }

    @Test func seccompDataFromItsBytes() throws {
        var raw = [UInt8](repeating: 0, count: 64)
        raw.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: Int32(59), toByteOffset: 0, as: Int32.self)
            bytes.storeBytes(of: UInt32(0xC000_003E), toByteOffset: 4, as: UInt32.self)
            bytes.storeBytes(of: UInt64(0x7FFF_0000_1234), toByteOffset: 8, as: UInt64.self)
            for index in 0..<6 { bytes.storeBytes(of: UInt64(index * 100), toByteOffset: 16 + 8 * index, as: UInt64.self) }
        }
        let data = try #require(raw.withUnsafeBytes { SeccompData(bytes: $0) })
        #expect(data == SeccompData(nr: 59, arch: 0xC000_003E, instructionPointer: 0x7FFF_0000_1234,
                                    args: [0, 100, 200, 300, 400, 500]))
        #expect(raw.prefix(63).withUnsafeBytes { SeccompData(bytes: $0) } == nil)
    }

    @Test(arguments: [
        // (operation, A, X or K, result)
        (BPF.add, 0xFFFF_FFFF, 2, 1), (BPF.sub, 1, 2, 0xFFFF_FFFF), (BPF.mul, 0x8000_0001, 4, 4),
        (BPF.div, 100, 7, 14), (BPF.or, 0xF0, 0x0F, 0xFF), (BPF.and, 0xF0, 0x3C, 0x30),
        (BPF.xor, 0xFF, 0x0F, 0xF0), (BPF.lsh, 1, 31, 0x8000_0000), (BPF.rsh, 0x8000_0000, 31, 1),
    ] as [(UInt16, UInt32, UInt32, UInt32)])
    func arithmetic(operation: UInt16, a: UInt32, operand: UInt32, result: UInt32) {
        #expect(run([ins(BPF.ldImm, a), ins(operation, operand), retA]) == result)
        #expect(run([ins(BPF.ldxImm, operand), ins(BPF.ldImm, a), ins(operation | BPF.x), retA]) == result)
    }

    @Test func arithmeticEdges() {
        #expect(run([ins(BPF.ldImm, 5), ins(BPF.neg), retA]) == 0xFFFF_FFFB)
        // Shifts by X use its low five bits, as the kernel's interpreter and JITs do.
        #expect(run([ins(BPF.ldxImm, 33), ins(BPF.ldImm, 1), ins(BPF.lsh | BPF.x), retA]) == 2)
        #expect(run([ins(BPF.ldxImm, 36), ins(BPF.ldImm, 0x100), ins(BPF.rsh | BPF.x), retA]) == 0x10)
        // Dividing by an X of 0 returns 0 from the program, SECCOMP_RET_KILL_THREAD.
        #expect(run([ins(BPF.ldImm, 5), ins(BPF.div | BPF.x), retA]) == BPF.retKillThread)
        // What the kernel refuses to load.
        #expect(run([ins(BPF.ldImm, 5), ins(BPF.div, 0), retA]) == killProcess)
        #expect(run([ins(BPF.ldImm, 5), ins(BPF.lsh, 32), retA]) == killProcess)
        #expect(run([ins(BPF.ldImm, 5), ins(BPF.rsh, 40), retA]) == killProcess)
        #expect(run([ins(BPF.ldImm, 5), ins(BPF.mod, 3), retA]) == killProcess)
        #expect(run([ins(BPF.ldImm, 5), ins(BPF.mod | BPF.x), retA]) == killProcess)
    }

    @Test func registersAndScratchMemory() {
        #expect(run([retA]) == 0)  // A and X start at 0
        #expect(run([ins(BPF.txa), retA]) == 0)
        #expect(run([ins(BPF.ldImm, 9), ins(BPF.tax), ins(BPF.ldImm, 1), ins(BPF.txa), retA]) == 9)
        #expect(run([ins(BPF.ldImm, 7), ins(BPF.st, 15), ins(BPF.ldImm, 0), ins(BPF.ldMem, 15), retA]) == 7)
        #expect(run([ins(BPF.ldxImm, 8), ins(BPF.stx, 0), ins(BPF.ldxMem, 0), ins(BPF.txa), retA]) == 8)
        // A slot read before it is written, or out of range: a program the kernel refuses.
        #expect(run([ins(BPF.ldMem, 3), retA]) == killProcess)
        #expect(run([ins(BPF.st, 16), retA]) == killProcess)
        #expect(run([ins(BPF.st, 1), ins(BPF.ldxMem, 16), retA]) == killProcess)
    }

    @Test func jumps() {
        func branch(_ code: UInt16, a: UInt32, operand: UInt32) -> Bool {
            let k = run([ins(BPF.ldImm, a), ins(code, operand, 0, 1), ins(BPF.retK, 1), ins(BPF.retK, 2)])
            let x = run([ins(BPF.ldxImm, operand), ins(BPF.ldImm, a), ins(code | BPF.x, 0, 0, 1),
                         ins(BPF.retK, 1), ins(BPF.retK, 2)])
            #expect(k == x)
            return k == 1
        }
        #expect(branch(BPF.jeq, a: 5, operand: 5) && !branch(BPF.jeq, a: 5, operand: 6))
        #expect(branch(BPF.jgt, a: 0x8000_0000, operand: 1) && !branch(BPF.jgt, a: 1, operand: 1))  // unsigned
        #expect(branch(BPF.jge, a: 1, operand: 1) && !branch(BPF.jge, a: 0, operand: 1))
        #expect(branch(BPF.jset, a: 6, operand: 2) && !branch(BPF.jset, a: 6, operand: 1))
        #expect(run([ins(BPF.ja, 1), ins(BPF.retK, 1), ins(BPF.retK, 2)]) == 2)
        #expect(run([ins(BPF.ja, 0), ins(BPF.retK, 1)]) == 1)
        // Past the end, or off it: refused.
        #expect(run([ins(BPF.ja, 1), ins(BPF.retK, 1)]) == killProcess)
        #expect(run([ins(BPF.ja, 0xFFFF_FFFF), ins(BPF.retK, 1)]) == killProcess)
        #expect(run([ins(BPF.jeq, 0, 5, 5), ins(BPF.retK, 1)]) == killProcess)
        #expect(run([ins(BPF.ldImm, 1)]) == killProcess)
        #expect(run([]) == killProcess)
        #expect(BPFProgram(bytes: [0x06, 0, 0, 0, 0, 0, 0xFF]).evaluate(SeccompData(nr: 0)) == killProcess)
    }

    @Test(arguments: [
        0x28, 0x30, 0x40, 0x48, 0x50,  // LD H/B ABS, LD W/H/B IND
        0x21, 0xB1,  // LDX W ABS, LDX B MSH
        0x0E,  // RET X
        0x8C, 0x0F, 0xFF, 0x1F, 0x87 | 0x100,
    ] as [UInt16])
    func instructionsSeccompRefusesKill(code: UInt16) {
        #expect(run([ins(code, 0), ins(BPF.retK, BPF.retAllow)]) == killProcess)
    }

    // MARK: Decisions

    @Test func decisionsFollowTheKernelsPrecedence() {
        let errno = { (code: UInt32) in returning(BPF.retErrno | code) }
        let allow = returning(BPF.retAllow), notify = returning(BPF.retUserNotif)
        let trace = returning(BPF.retTrace | 3), log = returning(BPF.retLog), trap = returning(BPF.retTrap)
        let data = SeccompData(nr: 0)
        func decide(_ filters: [BPFProgram]) -> SeccompDecision { SeccompDecision.decide(data, filters: filters) }
        #expect(decide([]) == .allow)
        #expect(decide([allow, allow]) == .allow)
        #expect(decide([allow, errno(5)]) == .errno(5))
        #expect(decide([errno(1), errno(2)]) == .errno(2))  // the newest wins a tie
        #expect(decide([errno(2), errno(1)]) == .errno(1))
        #expect(SeccompDecision.returnValue(data, filters: [errno(1), errno(2)]) == BPF.retErrno | 2)
        #expect(decide([errno(2), notify]) == .errno(2))
        #expect(decide([notify, trace]) == .notify)
        #expect(decide([trace, log]) == .trace)
        #expect(decide([log, allow]) == .log)
        #expect(decide([errno(1), trap]) == .trap)
        #expect(decide([returning(BPF.retKillThread), trap]) == .kill)
        #expect(decide([returning(BPF.retKillProcess), returning(BPF.retKillThread)]) == .kill)
        #expect(decide([returning(0x0001_0000), trap]) == .kill)  // unknown, and stricter than TRAP
        #expect(decide([returning(0x7FFE_0000), errno(1)]) == .errno(1))  // unknown, laxer than ERRNO
        #expect(decide([returning(0x7FFE_0000)]) == .kill)
        #expect(decide([errno(5000)]) == .errno(4095))
        #expect(decide([errno(0)]) == .errno(0))
    }

    // MARK: Robustness

    @Test func randomBytesNeverCrashTheEvaluator() {
        var random = SplitMix64(seed: 0x5EED)
        for _ in 0..<3000 {
            let count = Int(random.next() % 40) * 8 + Int(random.next() % 3)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let data = SeccompData(nr: Int32(truncatingIfNeeded: random.next()), arch: UInt32(truncatingIfNeeded: random.next()),
                                   args: (0..<6).map { _ in random.next() })
            let program = BPFProgram(bytes: bytes)
            #expect(program.evaluate(data) == program.evaluate(data))
        }
    }

    @Test func randomProgramsOfValidInstructionsNeverCrash() {
        let codes: [UInt16] = [
            BPF.ldWAbs, BPF.ldWLen, BPF.ldxWLen, BPF.ldImm, BPF.ldxImm, BPF.ldMem, BPF.ldxMem, BPF.st, BPF.stx,
            BPF.tax, BPF.txa, BPF.ja, BPF.retK, BPF.retA, BPF.neg,
        ] + [BPF.add, BPF.sub, BPF.mul, BPF.div, BPF.or, BPF.and, BPF.lsh, BPF.rsh, BPF.xor,
             BPF.jeq, BPF.jgt, BPF.jge, BPF.jset].flatMap { [$0, $0 | BPF.x] }
        var random = SplitMix64(seed: 42)
        var outcomes = Set<UInt32>()
        for _ in 0..<5000 {
            let count = 1 + Int(random.next() % 30)
            let program = (0..<count).map { _ in
                let code = codes[Int(random.next() % UInt64(codes.count))]
                let k: UInt32 = switch random.next() % 4 {
                case 0: UInt32(random.next() % 64)
                case 1: UInt32(random.next() % 17)
                case 2: UInt32(random.next() % 3)
                default: UInt32(truncatingIfNeeded: random.next())
                }
                return ins(code, k, UInt8(random.next() % 4), UInt8(random.next() % 4))
            } + [ins(BPF.retA)]
            let data = SeccompData(nr: Int32(random.next() % 500), args: (0..<6).map { _ in random.next() })
            outcomes.insert(run(program, data))
        }
        #expect(outcomes.count > 100)
    }

    // MARK: The audit filters, in user space

    @Test func auditBaselineOnlyChangesResults() throws {
        let original = BPFInstruction.decode(try SeccompCompiler.hardeningBaseline)
        let audit = BPFInstruction.decode(try SeccompCompiler.auditBaseline)
        #expect(original.count == audit.count)
        for (before, after) in zip(original, audit) {
            if before.code == BPF.retK {
                let action = before.k & BPF.actionMask
                #expect(after.k == ([BPF.retAllow, BPF.retKillProcess].contains(action) ? before.k : BPF.retUserNotif))
            } else {
                #expect(before == after)
            }
        }
    }

    @Test(arguments: ["default", "strict", "denylist"])
    func auditVariantsNotifyWhatTheFiltersRefuseAndNothingMore(profileName: String) throws {
        let profile = Stack.profile(profileName)
        let original = [try SeccompCompiler.hardeningBaseline, try SeccompCompiler.compile(profile).program]
        let listening = try SeccompCompiler.compileAudit(profile).program
        let audit = [try SeccompCompiler.auditBaseline, listening]
        let learn = [try SeccompCompiler.auditBaseline, try SeccompCompiler.learnFilter]
        var random = SplitMix64(seed: 7)
        let values: [UInt64] = [0, 1, 2, 3, 10, 16, 17, 0x8, 0x2_0000, 0x2_0008, 0xFFFF_FFFF, 0x40_0000,
                                0x1000_0000, 0x2_0000 | 0x1_0000, 0x5412, 0x1_0000_5412, 0x541C, 0x5413, 0x41, 0x42,
                                0x8000_0000_0000_0000]
        var seen = Set<SeccompDecision>()
        for round in 0..<20000 {
            let nr: Int32 = switch round % 50 {
            case 0: 0x4000_0000 | Int32(random.next() % 400)
            default: Int32(random.next() % 480)
            }
            let arch: UInt32 = round % 97 == 0 ? 0x4000_0003 : SeccompData.nativeAuditArch  // i386 now and then
            let data = SeccompData(nr: nr, arch: arch, args: (0..<6).map { _ in
                random.next() % 3 == 0 ? random.next() : values[Int(random.next() % UInt64(values.count))]
            })
            let decision = SeccompDecision.decide(data, filters: original)
            let audited = SeccompDecision.decide(data, filters: audit)
            seen.insert(decision)
            switch decision {
            case .kill, .trap: #expect(audited == decision, "\(data)")
            case .allow, .log: #expect(audited == .allow || audited == .notify, "\(data)")
            case .errno, .notify, .trace: #expect(audited == .notify, "\(data)")
            }
            // A notification must reach the filter with the listener, the newest one.
            if audited == .notify {
                #expect(listening.evaluate(data) & BPF.actionMask == BPF.retUserNotif, "\(data)")
            }
            let baseline = SeccompDecision.decide(data, filters: [try SeccompCompiler.hardeningBaseline])
            #expect(SeccompDecision.decide(data, filters: learn) == (baseline == .kill ? .kill : .notify), "\(data)")
        }
        #expect(seen.contains(.allow) && seen.contains(.kill) && seen.contains(.errno(1)))
    }

    @Test(arguments: [
        // (call, decision under the baseline and the default profile's audit variant)
        (Call("getpid", __NR_getpid), SeccompDecision.allow),
        (Call("openat O_RDONLY", __NR_openat, [-100, 0, Int(O_RDONLY)]), .allow),
        (Call("openat O_RDONLY|O_CREAT", __NR_openat, [-100, 0, Int(O_RDONLY | O_CREAT)]), .allow),
        (Call("openat O_WRONLY", __NR_openat, [-100, 0, Int(O_WRONLY | O_TRUNC)]), .notify),
        (Call("openat O_RDWR", __NR_openat, [-100, 0, Int(O_RDWR)]), .notify),
        (Call("open O_WRONLY", __NR_open, [0, Int(O_WRONLY)]), .notify),
        (Call("open O_RDONLY", __NR_open, [0, Int(O_RDONLY)]), .allow),
        (Call("creat", __NR_creat), .notify),
        (Call("execve", __NR_execve), .notify),
        (Call("connect", __NR_connect), .notify),
        (Call("sendto without address", __NR_sendto, [3, 0, 0, 0, 0, 0]), .allow),
        (Call("sendto with address", __NR_sendto, [3, 0, 0, 0, 0x1000, 16]), .notify),
        (Call("sendmsg", __NR_sendmsg), .allow),
        (Call("socket AF_UNIX", __NR_socket, [1, 1, 0]), .allow),
        (Call("socket AF_INET", __NR_socket, [2, 1, 0]), .notify),
        (Call("ioctl TIOCGWINSZ", __NR_ioctl, [1, Int(TIOCGWINSZ)]), .allow),
        (Call("ioctl TIOCSTI", __NR_ioctl, [1, Int(TIOCSTI)]), .notify),
        (Call("clone", __NR_clone, [Int(SIGCHLD)]), .allow),
        (Call("clone NEWUSER", __NR_clone, [0x1000_0000 | Int(SIGCHLD)]), .notify),
        (Call("clone3", __NR_clone3), .notify),
        (Call("mount", __NR_mount), .notify),
        (Call("personality 0", __NR_personality, [0]), .allow),
        (Call("personality 0x400000", __NR_personality, [0x40_0000]), .notify),
        (Call("x32 getpid", 0x4000_0000 | __NR_getpid), .kill),
    ])
    func defaultAuditDecisions(call: Call, decision: SeccompDecision) throws {
        let profile = try #require(SeccompProfile.builtin("default"))
        let filters = [try SeccompCompiler.auditBaseline, try SeccompCompiler.compileAudit(profile).program]
        #expect(SeccompDecision.decide(call.data(), filters: filters) == decision)
    }

    // MARK: Compiling the audit variants

    @Test(arguments: ["default", "strict"])
    func builtinAuditVariantsCompile(name: String) throws {
        let profile = try #require(SeccompProfile.builtin(name))
        let compiled = try SeccompCompiler.compileAudit(profile)
        #expect(compiled.warnings == [])
        #expect(compiled.notifies)
        #expect(compiled.filterFlags == 0)
        let plain = try SeccompCompiler.compile(profile).program.instructionCount
        let baseline = try SeccompCompiler.auditBaseline.instructionCount
        #expect(compiled.program.instructionCount > plain + baseline)
        #expect(compiled.program.instructionCount < 1500)
        #expect(try SeccompCompiler.compileAudit(profile).program == compiled.program)
    }

    @Test func auditRulesWarnAndMerge() throws {
        let profile = try SeccompProfile.parse(Array("""
            {"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
             "syscalls": [{"names": ["getppid", "getpid", "kill", "socket"], "action": "SCMP_ACT_ALLOW"}],
             "x-stockade": {"audit": [
               {"names": ["kill"], "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
               {"names": ["getppid", "not_a_syscall", "socketcall"]},
               {"names": ["kill", "getppid"]},
               {"names": ["socket"], "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
               {"names": ["socket"], "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}
             ]}}
            """.utf8), origin: "t.json")
        let compiled = try SeccompCompiler.compileAudit(profile)
        #expect(compiled.warnings == [#"unknown syscall "not_a_syscall" in $["x-stockade"].audit[1].names[1]: skipped"#])
        #expect(compiled.filterFlags == 1 << 2)
        let filters = [try SeccompCompiler.auditBaseline, compiled.program]
        func decide(_ nr: Int32, _ args: [UInt64] = []) -> SeccompDecision {
            SeccompDecision.decide(SeccompData(nr: nr, args: args), filters: filters)
        }
        #expect(decide(__NR_getpid) == .allow)
        #expect(decide(__NR_getppid) == .notify)
        #expect(decide(__NR_kill, [1, 15]) == .notify)  // observed without conditions too
        #expect(decide(__NR_socket, [2]) == .notify)
        #expect(decide(__NR_socket, [1]) == .allow)
        #expect(decide(__NR_read) == .notify)  // refused by the profile
    }

    @Test func auditVariantOfAProfileWithoutRules() throws {
        let profile = try SeccompProfile.parse(Array(#"{"defaultAction": "SCMP_ACT_ALLOW"}"#.utf8), origin: "t")
        let compiled = try SeccompCompiler.compileAudit(profile)
        let filters = [try SeccompCompiler.auditBaseline, compiled.program]
        #expect(SeccompDecision.decide(SeccompData(nr: __NR_read), filters: filters) == .allow)
        #expect(SeccompDecision.decide(SeccompData(nr: __NR_clone3), filters: filters) == .notify)
        #expect(SeccompDecision.decide(SeccompData(nr: __NR_mount), filters: filters) == .notify)
    }

    @Test func onlyTheListenerHandoffItselfIsAllowedOutright() throws {
        let handoff = ListenerHandoff(descriptor: 1023, message: 0x7FFC_1230, secret: 0xFEDC_BA98_7654_3210)
        let call = handoff.call
        #expect(call.args[0] == 0xFEDC_BA98_0000_03FF && call.args[1] == 0x7FFC_1230 && call.args[2] == 0x7654_3210_0000_4000)
        /// The handoff's registers with argument `index` changed by `change`.
        func variant(_ index: Int, _ change: (UInt64) -> UInt64) -> SeccompData {
            var data = call
            data.args[index] = change(data.args[index])
            return data
        }
        let nearMisses = [
            variant(0, { $0 & 0xFFFF_FFFF }),  // the descriptor without the secret: what a command can know
            variant(0, { $0 ^ 1 << 40 }), variant(1, { $0 + 8 }), variant(1, { $0 ^ 1 << 60 }),
            variant(2, { $0 | 1 }),  // MSG_OOB
            variant(2, { $0 ^ 1 << 33 }),
        ]

        let learnMode = [try SeccompCompiler.auditBaseline, try SeccompCompiler.learnFilter]
        let learn = [try SeccompCompiler.auditBaseline,
                     try SeccompCompiler.allowingHandoff(try SeccompCompiler.learnFilter, handoff: handoff,
                                                         enforcing: [try SeccompCompiler.hardeningBaseline])]
        #expect(SeccompDecision.decide(call, filters: learn) == .allow)
        #expect(SeccompDecision.decide(call, filters: learnMode) == .notify)
        for data in nearMisses { #expect(SeccompDecision.decide(data, filters: learn) == .notify) }
        #expect(SeccompDecision.decide(SeccompData(nr: __NR_read, args: [1023]), filters: learn) == .notify)
        var foreign = call
        foreign.arch = 0x4000_0003
        #expect(SeccompDecision.decide(foreign, filters: learn) == .kill)

        // A profile that refuses sendmsg with MSG_OOB: the handoff passes, the same call with
        // MSG_OOB is still the profile's to refuse, notified so that it is logged.
        let oob = try SeccompProfile.parse(Array("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["sendmsg"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 2, "value": 1, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]}]}
            """.utf8), origin: "t")
        let enforcing = [try SeccompCompiler.hardeningBaseline, try SeccompCompiler.compile(oob).program]
        let audit = [try SeccompCompiler.auditBaseline,
                     try SeccompCompiler.allowingHandoff(try SeccompCompiler.compileAudit(oob).program,
                                                         handoff: handoff, enforcing: enforcing)]
        #expect(SeccompDecision.decide(call, filters: audit) == .allow)
        #expect(SeccompDecision.decide(variant(2, { $0 | 1 }), filters: audit) == .notify)
        #expect(SeccompDecision.decide(variant(2, { $0 | 1 }), filters: enforcing) == .errno(EPERM))
        #expect(SeccompDecision.decide(SeccompData(nr: __NR_execve), filters: audit) == .allow)

        // A profile that observes sendmsg sees every other sendmsg; one that refuses the handoff cannot be audited.
        let observing = try SeccompProfile.parse(Array("""
            {"defaultAction": "SCMP_ACT_ALLOW", "x-stockade": {"audit": [{"names": ["sendmsg"]}]}}
            """.utf8), origin: "t")
        let observed = [try SeccompCompiler.auditBaseline,
                        try SeccompCompiler.allowingHandoff(try SeccompCompiler.compileAudit(observing).program,
                                                            handoff: handoff, enforcing: [try SeccompCompiler.hardeningBaseline])]
        #expect(SeccompDecision.decide(call, filters: observed) == .allow)
        for data in nearMisses { #expect(SeccompDecision.decide(data, filters: observed) == .notify) }
        let refusing = try SeccompProfile.parse(Array("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["sendmsg"], "action": "SCMP_ACT_ERRNO"}]}
            """.utf8), origin: "t")
        #expect(throws: SeccompCompileError.self) {
            try SeccompCompiler.allowingHandoff(try SeccompCompiler.compileAudit(refusing).program, handoff: handoff,
                                                enforcing: [try SeccompCompiler.compile(refusing).program])
        }
        #expect(try SeccompCompiler.compileAudit(refusing).notifies)
    }

    // MARK: The supervisor's decision cache

    @Test func aCachedDecisionIsAlwaysTheFiltersOwn() throws {
        // The real filters of an audited default sandbox, on calls drawn from a few values so that
        // the same words come back often (hits) and every loaded word varies (misses that must not hit).
        let filters = [try SeccompCompiler.hardeningBaseline,
                       try SeccompCompiler.compile(try #require(SeccompProfile.builtin("default"))).program]
        var cache = DecisionCache(filters: filters)
        var rawCache = DecisionCache(filters: filters)  // fed the kernel's layout, as the supervisor does
        var random = SplitMix64(seed: 11)
        // 0x42: O_RDWR | O_CREAT; 0x1000_0000: CLONE_NEWUSER; 0x5412: TIOCSTI.
        let values: [UInt64] = [0, 1, 2, 0x42, 0x1000_0000, 0x5412, 0x8000_0000_0000_0000, 0x7FFC_0000_1000]
        var seen = Set<SeccompDecision>()
        for _ in 0..<20000 {
            let nr = [__NR_openat, __NR_ioctl, __NR_clone, __NR_personality, __NR_mount, __NR_socket, __NR_getpid][Int(random.next() % 7)]
            let data = SeccompData(nr: nr, instructionPointer: random.next() % 4,
                                   args: (0..<6).map { _ in values[Int(random.next() % UInt64(values.count))] })
            let decision = cache.decide(data)
            #expect(decision == SeccompDecision.decide(data, filters: filters), "\(data)")
            var layout = [UInt8]()
            withUnsafeBytes(of: data.nr) { layout += $0 }
            withUnsafeBytes(of: data.arch) { layout += $0 }
            withUnsafeBytes(of: data.instructionPointer) { layout += $0 }
            for arg in data.args { withUnsafeBytes(of: arg) { layout += $0 } }
            #expect(layout.withUnsafeBytes { rawCache.decide(raw: $0) } == decision, "\(data)")
            seen.insert(decision)
        }
        #expect(seen.contains(.allow) && seen.contains(.errno(EPERM)), "\(seen)")
    }

    @Test func theCacheKeysOnEveryWordAFilterLoadsAndOnNothingElse() {
        // errno 1 when the high half of argument 3 is 7: only that word (offset 44) decides.
        let program = BPFInstruction.encode([ins(BPF.ldWAbs, 44), ins(BPF.jeq, 7, 0, 1),
                                             ins(BPF.retK, BPF.retErrno | 1), ins(BPF.retK, BPF.retAllow)])
        var cache = DecisionCache(filters: [program])
        #expect(cache.decide(SeccompData(nr: 1, args: [0, 0, 0, 7 << 32])) == .errno(1))
        #expect(cache.decide(SeccompData(nr: 2, args: [9, 9, 9, 7 << 32 | 5])) == .errno(1))
        #expect(cache.decide(SeccompData(nr: 1, args: [0, 0, 0, 8 << 32])) == .allow)
        #expect(cache.decide(SeccompData(nr: 1, args: [0, 0, 0, 7 << 32])) == .errno(1))
    }

    @Test func oversizedAuditVariantsAreRefused() throws {
        // 3,950 distinct ioctl requests: one instruction each, and the audit adds the baseline.
        let rules = (0..<3950).map { #"{"index": 1, "value": \#($0 * 3 + 1), "op": "SCMP_CMP_EQ"}"# }
        let profile = try SeccompProfile.parse(Array("""
            {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
              "args": [\(rules.joined(separator: ","))]}]}
            """.utf8), origin: "big.json")
        let plain = try SeccompCompiler.compile(profile).program.instructionCount
        let baseline = try SeccompCompiler.auditBaseline.instructionCount
        #expect(plain <= 4096)
        #expect(plain + baseline > 4096)
        do {
            let compiled = try SeccompCompiler.compileAudit(profile)
            Issue.record("compiled to \(compiled.program.instructionCount) instructions")
        } catch {
            #expect(error.errno == E2BIG)
            #expect(error.description.contains("seccomp(2) takes at most 4096"))
        }
    }
}
