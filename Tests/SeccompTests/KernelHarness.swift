import CSeccomp
import Glibc
import Synchronization
import StockadeTestSupport
import Testing
@testable import Seccomp
import JSON

// Runs syscalls under real filters in an exit test's process and compares what the kernel
// did with what the user-space evaluator says it would do.

/// glibc's syscall() is variadic, which Swift cannot call. Its code only moves registers,
/// so a fixed seven-argument prototype is sound on x86_64 and arm64 Linux.
typealias SyscallFunction = @convention(c) (Int, Int, Int, Int, Int, Int, Int) -> Int

let rawSyscall: SyscallFunction = {
    guard let symbol = dlsym(nil, "syscall") else { _exit(120) }
    return unsafeBitCast(symbol, to: SyscallFunction.self)
}()

/// One syscall with six arguments. `path` becomes a pointer to that string in argument
/// `pathIndex` in the process that makes the call.
struct Call: Codable, Sendable, CustomStringConvertible {
    var label: String
    var nr: Int
    var args: [Int]
    var path: String?
    var pathIndex = 1

    init(_ label: String, _ nr: Int32, _ args: [Int] = [], path: String? = nil, at pathIndex: Int = 1) {
        self.label = label
        self.nr = Int(nr)
        self.args = Array((args + Array(repeating: 0, count: 6)).prefix(6))
        self.path = path
        self.pathIndex = pathIndex
    }

    var description: String { label }

    /// The arguments as the call passes them, allocating the path (so call it before any filter).
    func materialized() -> [Int] {
        var args = self.args
        if let path { args[pathIndex] = Int(bitPattern: strdup(path)) }
        return args
    }

    /// What a filter sees; a path pointer is 0 unless `args` is given.
    func data(_ args: [Int]? = nil) -> SeccompData {
        SeccompData(nr: Int32(nr), args: (args ?? self.args).map { UInt64(bitPattern: Int64($0)) })
    }
}

/// Calls whose result does not depend on the process state they leave behind: with fd -1,
/// paths that do not exist, clone flags the kernel refuses, so a call can be made twice, once
/// unfiltered and once filtered, and only the filters can make the difference.
enum Calls {
    static let atFdcwd = -100
    static let missing = "/nonexistent-stockade-dir/x"

    static let fixed: [Call] = [
        Call("getpid", __NR_getpid),
        Call("getppid", __NR_getppid),
        Call("getuid", __NR_getuid),
        Call("getpgrp", __NR_getpgrp),
        Call("getsid(0)", __NR_getsid),
        Call("openat / O_RDONLY", __NR_openat, [atFdcwd, 0, Int(O_RDONLY)], path: "/"),
        Call("openat missing O_WRONLY|O_CREAT", __NR_openat, [atFdcwd, 0, Int(O_WRONLY | O_CREAT), 0o644], path: missing),
        Call("openat missing O_RDWR", __NR_openat, [atFdcwd, 0, Int(O_RDWR)], path: missing),
        Call("openat missing O_RDONLY|O_CREAT", __NR_openat, [atFdcwd, 0, Int(O_RDONLY | O_CREAT), 0o644], path: missing),
        Call("open missing O_WRONLY", __NR_open, [0, Int(O_WRONLY)], path: missing, at: 0),
        Call("creat missing", __NR_creat, [0, 0o644], path: missing, at: 0),
        Call("execve missing", __NR_execve, [0, 0, 0], path: missing, at: 0),
        Call("socket AF_UNIX", __NR_socket, [Int(AF_UNIX), Int(SOCK_STREAM.rawValue), 0]),
        Call("socket AF_INET", __NR_socket, [Int(AF_INET), Int(SOCK_STREAM.rawValue), 0]),
        Call("socket AF_INET6", __NR_socket, [Int(AF_INET6), Int(SOCK_DGRAM.rawValue), 0]),
        Call("socket AF_NETLINK ROUTE", __NR_socket, [Int(AF_NETLINK), Int(SOCK_RAW.rawValue), 0]),
        Call("socket AF_NETLINK AUDIT", __NR_socket, [Int(AF_NETLINK), Int(SOCK_RAW.rawValue), 9]),
        Call("socket AF_PACKET", __NR_socket, [Int(AF_PACKET), Int(SOCK_RAW.rawValue), 0]),
        Call("socket AF_UNIX with high bits", __NR_socket, [1 << 32 | Int(AF_UNIX), Int(SOCK_STREAM.rawValue), 0]),
        Call("connect -1", __NR_connect, [-1, 0, 0]),
        Call("sendmsg: the handoff", __NR_sendmsg, Stack.handoff.call.args.map { Int(bitPattern: UInt($0)) }),
        Call("sendmsg 700 without the secret", __NR_sendmsg, [700, Int(Stack.handoff.message), 0x4000]),
        Call("sendmsg: the handoff with MSG_OOB", __NR_sendmsg,
             Stack.handoff.call.args.enumerated().map { Int(bitPattern: UInt($0.element | ($0.offset == 2 ? 1 : 0))) }),
        Call("sendmsg: the handoff with another message", __NR_sendmsg,
             Stack.handoff.call.args.enumerated().map { Int(bitPattern: UInt($0.element + ($0.offset == 1 ? 8 : 0))) }),
        Call("sendmsg 701", __NR_sendmsg, [701, 0, 0x4000]),
        Call("sendmsg 700 MSG_OOB", __NR_sendmsg, [700, 0, 0x4001]),
        Call("sendto -1 without address", __NR_sendto, [-1, 0, 0, 0, 0, 0]),
        Call("sendto -1 to an address", __NR_sendto, [-1, 0, 0, 0, 0x1000, 16]),
        Call("ioctl TIOCSTI", __NR_ioctl, [-1, Int(TIOCSTI), 0]),
        Call("ioctl TIOCSTI | 1 << 32", __NR_ioctl, [-1, 1 << 32 | Int(TIOCSTI), 0]),
        Call("ioctl TIOCLINUX", __NR_ioctl, [-1, Int(TIOCLINUX), 0]),
        Call("ioctl TIOCGWINSZ", __NR_ioctl, [-1, Int(TIOCGWINSZ), 0]),
        Call("ioctl FIONREAD", __NR_ioctl, [-1, Int(FIONREAD), 0]),
        Call("ioctl 0x1234", __NR_ioctl, [-1, 0x1234, 0]),
        // CLONE_THREAD without CLONE_SIGHAND: EINVAL from the kernel, whatever else is set.
        Call("clone THREAD", __NR_clone, [0x1_0000]),
        Call("clone THREAD|NEWUSER", __NR_clone, [0x1_0000 | 0x1000_0000]),
        Call("clone THREAD|NEWNET|NEWNS", __NR_clone, [0x1_0000 | 0x4000_0000 | 0x2_0000]),
        Call("clone THREAD|NEWTIME", __NR_clone, [0x1_0000 | 0x80]),
        Call("clone3 NULL", __NR_clone3, [0, 0]),
        Call("unshare FILES", __NR_unshare, [0x400]),
        Call("unshare NEWUSER", __NR_unshare, [0x1000_0000]),
        Call("setns -1", __NR_setns, [-1, 0]),
        Call("mount EFAULT", __NR_mount, [0, 1, 0, 0, 0]),
        Call("ptrace no such pid", __NR_ptrace, [2, 0x7FFF_FFFF, 0, 0]),
        Call("keyctl 9999", __NR_keyctl, [9999]),
        Call("io_uring_setup", __NR_io_uring_setup, [0, 0]),
        Call("memfd_create", __NR_memfd_create, [0, 0], path: "probe", at: 0),
        Call("personality query", __NR_personality, [0xFFFF_FFFF]),
        Call("personality 0", __NR_personality, [0]),
        Call("personality 0x20008", __NR_personality, [0x2_0008]),
        Call("personality READ_IMPLIES_EXEC", __NR_personality, [0x40_0000]),
        Call("personality 1 << 32", __NR_personality, [0x1_0000_0000]),
        Call("personality 0xfffffff7", __NR_personality, [0xFFFF_FFF7]),
        Call("personality 0xfffdfff7", __NR_personality, [0xFFFD_FFF7]),
        Call("open_tree_attr", 467, [-1, 0, 0, 0, 0]),
        Call("lsm_set_self_attr", 460, [0, 0, 0, 0]),
        Call("x32 getpid", 0x4000_0000 | __NR_getpid),
        Call("syscall 1000", 1000),
    ]

    /// Calls drawn from `generator`: ioctl requests, socket families, personalities, open
    /// flags and clone flags across their whole range.
    static func random(_ count: Int, seed: UInt64) -> [Call] {
        var random = SplitMix64(seed: seed)
        func bits() -> Int { Int(bitPattern: UInt(random.next())) }
        return (0..<count).map { index in
            switch random.next() % 6 {
            case 0:
                let request = random.next() % 2 == 0 ? bits() : bits() & 0xFFFF_0000_0000 | Int(TIOCSTI)
                return Call("ioctl \(request)", __NR_ioctl, [-1, request, 0])
            case 1:
                let family = random.next() % 4 == 0 ? bits() : Int(random.next() % 46)
                let types = [1, 2, 3, 5, 0x8_0001, 0x800 | 2]
                let type = types[Int(random.next() % UInt64(types.count))]
                let protocols = [0, 0, 1, 6, 9, 17, 255]
                return Call("socket \(family) \(type)", __NR_socket,
                            [family, type, protocols[Int(random.next() % UInt64(protocols.count))]])
            case 2:
                // Leave out ADDR_LIMIT_32BIT and ADDR_LIMIT_3GB, which would move later mappings.
                let values = [0, 8, 0x2_0000, 0x2_0008, 0xFFFF_FFFF, 0x40_0000, 0xFFFD_FFF7, 0x1_0000_0008]
                let value = random.next() % 2 == 0 ? values[Int(random.next() % UInt64(values.count))]
                    : bits() & ~0x0880_0000
                return Call("personality \(value)", __NR_personality, [value])
            case 3:
                let flags = Int(random.next() & 0xFFFF_FFFF) & ~Int(O_CREAT) | (index % 2 == 0 ? Int(O_CREAT) : 0)
                return Call("openat missing \(flags)", __NR_openat, [atFdcwd, 0, flags, 0o600], path: missing)
            case 4:
                let flags = (bits() & ~0x800) | 0x1_0000  // never CLONE_SIGHAND, always CLONE_THREAD
                return Call("clone \(flags)", __NR_clone, [flags])
            default:
                return Call("sendto -1 \(index)", __NR_sendto, [-1, 0, 0, 0, random.next() % 3 == 0 ? 0 : bits(), 16])
            }
        }
    }
}

/// Filters as a sandbox stacks them, in installation order.
enum Stack: String, Codable, Sendable, CaseIterable {
    case baseline, defaultProfile, strict, baselineAndDefault, baselineAndStrict, baselineAndDenylist
    /// Audit mode: the audit baseline, then the profile's audit variant.
    case auditDefault, auditStrict, auditDenylist
    /// Learn mode: the audit baseline, then the learning filter.
    case learn
    /// Audit and learn mode with ``handoff``'s call (on descriptor 700) allowed outright.
    case auditDefaultHandoff, learnHandoff
    /// A hand-written program exercising every ALU operation and jump (see ``aluProgram``).
    case alu

    static let normal: [Stack] = [.baseline, .defaultProfile, .strict, .baselineAndDefault, .baselineAndStrict,
                                  .baselineAndDenylist]
    static let audit: [Stack] = [.auditDefault, .auditStrict, .auditDenylist, .learn, .auditDefaultHandoff, .learnHandoff]
    static let handoff = ListenerHandoff(descriptor: 700, message: 0x7FFC_1000, secret: 0x0123_4567_89AB_CDEF)

    /// A profile with an ALLOW default and one rule of each other action.
    static let denylist = """
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
          {"names": ["getppid"], "action": "SCMP_ACT_TRACE", "errnoRet": 3},
          {"names": ["getpgrp"], "action": "SCMP_ACT_LOG"},
          {"names": ["getuid"], "action": "SCMP_ACT_NOTIFY"},
          {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95},
          {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
           "args": [{"index": 0, "value": 17, "op": "SCMP_CMP_EQ"}]},
          {"names": ["personality"], "action": "SCMP_ACT_KILL_PROCESS",
           "args": [{"index": 0, "value": 4194304, "op": "SCMP_CMP_EQ"}]},
          {"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 25,
           "args": [{"index": 1, "value": 4294967295, "valueTwo": 21523, "op": "SCMP_CMP_MASKED_EQ"}]}
        ], "x-stockade": {"audit": [
          {"names": ["getsid"]},
          {"names": ["openat"], "args": [{"index": 2, "value": 3, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]}
        ]}}
        """

    static func profile(_ name: String) -> SeccompProfile {
        if name == "denylist" { return try! SeccompProfile.parse(Array(denylist.utf8), origin: "denylist") }
        return SeccompProfile.builtin(name)!
    }

    func programs() throws -> [BPFProgram] {
        func compiled(_ name: String) throws -> BPFProgram { try SeccompCompiler.compile(Self.profile(name)).program }
        func audit(_ name: String) throws -> [BPFProgram] {
            [try SeccompCompiler.auditBaseline, try SeccompCompiler.compileAudit(Self.profile(name)).program]
        }
        return switch self {
        case .baseline: [try SeccompCompiler.hardeningBaseline]
        case .defaultProfile: [try compiled("default")]
        case .strict: [try compiled("strict")]
        case .baselineAndDefault: [try SeccompCompiler.hardeningBaseline, try compiled("default")]
        case .baselineAndStrict: [try SeccompCompiler.hardeningBaseline, try compiled("strict")]
        case .baselineAndDenylist: [try SeccompCompiler.hardeningBaseline, try compiled("denylist")]
        case .auditDefault: try audit("default")
        case .auditStrict: try audit("strict")
        case .auditDenylist: try audit("denylist")
        case .learn: [try SeccompCompiler.auditBaseline, try SeccompCompiler.learnFilter]
        case .auditDefaultHandoff:
            [try SeccompCompiler.auditBaseline,
             try SeccompCompiler.allowingHandoff(try SeccompCompiler.compileAudit(Self.profile("default")).program,
                                                 handoff: Self.handoff, enforcing: try Stack.baselineAndDefault.programs())]
        case .learnHandoff:
            [try SeccompCompiler.auditBaseline,
             try SeccompCompiler.allowingHandoff(try SeccompCompiler.learnFilter, handoff: Self.handoff,
                                                 enforcing: try Stack.baseline.programs())]
        case .alu: [Self.aluProgram]
        }
    }

    /// For audit and learn mode: the filters whose decision the supervisor applies.
    var original: Stack? {
        switch self {
        case .auditDefault, .auditDefaultHandoff: .baselineAndDefault
        case .auditStrict: .baselineAndStrict
        case .auditDenylist: .baselineAndDenylist
        case .learn, .learnHandoff: .baseline
        default: nil
        }
    }

    /// getppid's result is computed from its arguments by operation `args[5]`: ERRNO with the
    /// low 12 bits of A. Every other syscall is allowed.
    static let aluProgram: BPFProgram = {
        typealias I = BPFInstruction
        func ins(_ code: UInt16, _ k: UInt32 = 0, _ jt: UInt8 = 0, _ jf: UInt8 = 0) -> I { I(code: code, jt: jt, jf: jf, k: k) }
        let a0 = ins(BPF.ldWAbs, 16), a0High = ins(BPF.ldWAbs, 20), a1 = ins(BPF.ldWAbs, 24)
        let result = [ins(BPF.and, 0xFFF), ins(BPF.or, BPF.retErrno), ins(BPF.retA)]
        func withX(_ op: UInt16) -> [I] { [a1, ins(BPF.tax), a0, ins(op | BPF.x)] + result }
        func withK(_ op: UInt16, _ k: UInt32) -> [I] { [a0, ins(op, k)] + result }
        func jump(_ op: UInt16, x: Bool, _ k: UInt32 = 0) -> [I] {
            [a1, ins(BPF.tax), a0, ins(op | (x ? BPF.x : 0), k, 0, 1),
             ins(BPF.retK, BPF.retErrno | 11), ins(BPF.retK, BPF.retErrno | 22)]
        }
        let blocks: [[I]] = [
            withX(BPF.add), withX(BPF.sub), withX(BPF.mul), withX(BPF.or), withX(BPF.and), withX(BPF.xor),
            withX(BPF.lsh), withX(BPF.rsh),
            [a1, ins(BPF.or, 1), ins(BPF.tax), a0, ins(BPF.div | BPF.x)] + result,  // never by 0
            withK(BPF.add, 0xDEAD_BEEF), withK(BPF.sub, 0x8000_0001), withK(BPF.mul, 0x9E37_79B9),
            withK(BPF.div, 7), withK(BPF.or, 0x0F0), withK(BPF.and, 0xA5A), withK(BPF.xor, 0x5A5),
            withK(BPF.lsh, 5), withK(BPF.rsh, 3), withK(BPF.lsh, 31),
            [a0, ins(BPF.neg)] + result,
            [a0High, ins(BPF.tax), a0, ins(BPF.xor | BPF.x)] + result,
            [a1, ins(BPF.st, 7), a0, ins(BPF.stx, 3), ins(BPF.ldxMem, 7), ins(BPF.ldMem, 3), ins(BPF.sub | BPF.x)] + result,
            [a1, ins(BPF.tax), ins(BPF.txa)] + result,
            [ins(BPF.ldWLen)] + result,
            [ins(BPF.ldxWLen), ins(BPF.txa)] + result,
            [ins(BPF.ldImm, 0x1234_5678)] + result,
            [ins(BPF.ldxImm, 77), ins(BPF.txa)] + result,
            jump(BPF.jeq, x: true), jump(BPF.jgt, x: true), jump(BPF.jge, x: true), jump(BPF.jset, x: true),
            jump(BPF.jeq, x: false, 5), jump(BPF.jgt, x: false, 0x8000_0000), jump(BPF.jge, x: false, 0x7FFF_FFFF),
            jump(BPF.jset, x: false, 0x10),
            [a0, ins(BPF.ja, 2), ins(BPF.retK, BPF.retErrno | 1), ins(BPF.retK, BPF.retErrno | 2),
             ins(BPF.retK, BPF.retErrno | 3)],
        ]
        var program = [ins(BPF.ldWAbs, 0), ins(BPF.jeq, UInt32(__NR_getppid), 1, 0), ins(BPF.retK, BPF.retAllow),
                       ins(BPF.ldWAbs, 56)]
        for (index, block) in blocks.enumerated() {
            program.append(ins(BPF.jeq, UInt32(index), 0, UInt8(block.count)))
            program += block
        }
        program.append(ins(BPF.retK, BPF.retAllow))
        return BPFInstruction.encode(program)
    }()
}

/// Who answers notifications during a batch.
enum Answer: Codable, Sendable {
    /// No listener: a notification fails with ENOSYS.
    case none
    /// A listener on the last filter that fails every notified call of the batch's syscalls
    /// with EXDEV (and lets others, such as the process's own exit, continue).
    case exdev
    /// A listener that answers with the decision of the original filters, as the supervisor does.
    case supervisor
}

/// What the kernel returns for a call: 0 on success, else the errno.
private func perform(_ nr: Int, _ args: [Int]) -> Int32 {
    let result = rawSyscall(nr, args[0], args[1], args[2], args[3], args[4], args[5])
    let code = result == -1 ? errno : 0
    if nr == Int(__NR_personality) && args[0] != 0xFFFF_FFFF {
        _ = rawSyscall(Int(__NR_personality), 0, 0, 0, 0, 0, 0)
    }
    return code
}

/// The result a decision gives a call whose unfiltered result is `unfiltered`, where nobody
/// answers notifications or traces; nil for a kill or trap.
func expected(_ decision: SeccompDecision, unfiltered: Int32) -> Int32? {
    switch decision {
    case .allow, .log: unfiltered
    case .errno(let code): code
    case .notify, .trace: ENOSYS
    case .kill, .trap: nil
    }
}

/// Runs in an exit test's process. Makes every call once unfiltered, installs `stack` (with a
/// listener on its last filter unless `answer` is `.none`), makes every call again, and exits 0
/// when each result is what the user-space evaluator predicts, else 10 + the index of the first
/// call that differs (capped at 250); 2 to 9 for set-up failures.
func runBatch(_ stack: Stack, answer: Answer, _ calls: [Call]) -> Never {
    guard let programs = try? stack.programs(),
          let deciding = try? (stack.original ?? stack).programs() else { _exit(2) }
    _ = rawSyscall
    _ = perform(Int(__NR_getpid), [0, 0, 0, 0, 0, 0])
    let materialized = calls.map { $0.materialized() }
    let unfiltered = calls.indices.map { perform(calls[$0].nr, materialized[$0]) }
    var expectations: [Int32] = []
    for index in calls.indices {
        let data = calls[index].data(materialized[index])
        let result: Int32?
        switch answer {
        case .none:
            result = expected(SeccompDecision.decide(data, filters: programs), unfiltered: unfiltered[index])
        case .exdev:
            let decision = SeccompDecision.decide(data, filters: programs)
            result = decision == .notify ? EXDEV : decision == .allow ? unfiltered[index] : nil
        case .supervisor:
            result = expected(SeccompDecision.decide(data, filters: deciding), unfiltered: unfiltered[index])
        }
        guard let result else { _exit(3) }  // kills belong in another test
        expectations.append(result)
    }
    let responder: Responder? = switch answer {
    case .none: nil
    case .exdev:
        Responder { [numbers = Set(calls.map { Int32($0.nr) })] data in numbers.contains(data.nr) ? .error(EXDEV) : .continue }
    case .supervisor: Responder { data in
        switch SeccompDecision.decide(data, filters: deciding) {
        case .allow, .log: .continue
        case .errno(let code): .error(code)
        case .notify, .trace: .error(ENOSYS)
        case .kill, .trap: .error(ECANCELED)
        }
    }
    }
    responder?.start()
    let listener = install(programs, listenerOnLast: responder != nil)
    responder?.listener.store(listener, ordering: .releasing)

    for index in calls.indices where perform(calls[index].nr, materialized[index]) != expectations[index] {
        _exit(Int32(10 + min(index, 240)))
    }
    if let responder, stack == .learn {
        // Learn mode notifies every call, so the supervisor has seen each of them.
        if !calls.allSatisfy({ responder.hasSeen($0.nr) }) { _exit(4) }
    }
    _exit(0)
}

/// Sets no_new_privs and installs `programs` in order on the calling thread; returns the
/// listener of the last one when asked for.
func install(_ programs: [BPFProgram], listenerOnLast: Bool = false) -> Int32 {
    let fprogs = UnsafeMutableBufferPointer<sock_fprog>.allocate(capacity: max(programs.count, 1))
    for (index, program) in programs.enumerated() {
        let filter = UnsafeMutableBufferPointer<sock_filter>.allocate(capacity: program.instructionCount)
        _ = program.bytes.withUnsafeBytes { filter.initialize(from: $0.bindMemory(to: sock_filter.self)) }
        fprogs[index] = sock_fprog(len: UInt16(program.instructionCount), filter: filter.baseAddress)
    }
    let prSetNoNewPrivs = 38
    guard rawSyscall(Int(__NR_prctl), prSetNoNewPrivs, 1, 0, 0, 0, 0) == 0 else { _exit(5) }
    var listener: Int32 = -1
    for index in programs.indices {
        let newListener = 1 << 3  // SECCOMP_FILTER_FLAG_NEW_LISTENER
        let flags = listenerOnLast && index == programs.count - 1 ? newListener : 0
        let fprog = Int(bitPattern: fprogs.baseAddress! + index)
        let result = rawSyscall(Int(__NR_seccomp), Int(SECCOMP_SET_MODE_FILTER), flags, fprog, 0, 0, 0)
        guard result >= 0 else { _exit(6) }
        if flags != 0 { listener = Int32(result) }
    }
    return listener
}

/// A thread, started before the filters exist and so never filtered, that answers the
/// listener's notifications.
final class Responder: @unchecked Sendable {
    enum Reply { case `continue`, error(Int32) }

    let listener = Atomic<Int32>(-1)
    private let decide: (SeccompData) -> Reply
    /// One flag per syscall number, set before the notification is answered. No lock: the
    /// filtered thread may hold one while it waits for an answer (Mutex calls gettid).
    private let seen = UnsafeMutableBufferPointer<Atomic<Bool>>.allocate(capacity: 1024)

    /// Whether a notification of `nr` was answered; read by the filtered thread after its calls returned.
    func hasSeen(_ nr: Int) -> Bool { seen.indices.contains(nr) && seen[nr].load(ordering: .acquiring) }

    init(_ decide: @escaping (SeccompData) -> Reply) {
        self.decide = decide
        for index in seen.indices { (seen.baseAddress! + index).initialize(to: Atomic(false)) }
    }

    func start() {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        guard pthread_create(&thread, nil, { context in
            Unmanaged<Responder>.fromOpaque(context!).takeUnretainedValue().serve()
            return nil
        }, context) == 0 else { _exit(7) }
    }

    private func serve() {
        while listener.load(ordering: .acquiring) < 0 { usleep(200) }
        let fd = Int(listener.load(ordering: .acquiring))
        // struct seccomp_notif: u64 id, u32 pid, u32 flags, struct seccomp_data (64 bytes).
        // struct seccomp_notif_resp: u64 id, s64 val, s32 error, u32 flags.
        let receive = 0xC050_2100, send = 0xC018_2101  // SECCOMP_IOCTL_NOTIF_RECV, _SEND
        let request = UnsafeMutableRawBufferPointer.allocate(byteCount: 80, alignment: 8)
        let response = UnsafeMutableRawBufferPointer.allocate(byteCount: 24, alignment: 8)
        while true {
            request.initializeMemory(as: UInt8.self, repeating: 0)
            if rawSyscall(Int(__NR_ioctl), fd, receive, Int(bitPattern: request.baseAddress), 0, 0, 0) < 0 {
                if errno == EINTR || errno == ENOENT { continue }
                return
            }
            let data = SeccompData(bytes: UnsafeRawBufferPointer(rebasing: request[16..<80]))!
            if seen.indices.contains(Int(data.nr)) { seen[Int(data.nr)].store(true, ordering: .releasing) }
            response.initializeMemory(as: UInt8.self, repeating: 0)
            response.storeBytes(of: request.load(as: UInt64.self), as: UInt64.self)
            switch decide(data) {
            case .continue: response.storeBytes(of: 1, toByteOffset: 20, as: UInt32.self)  // FLAG_CONTINUE
            case .error(let code): response.storeBytes(of: -code, toByteOffset: 16, as: Int32.self)
            }
            _ = rawSyscall(Int(__NR_ioctl), fd, send, Int(bitPattern: response.baseAddress), 0, 0, 0)
        }
    }
}
