import CSeccomp

/// What a seccomp filter sees of a syscall: the kernel's `struct seccomp_data`
/// (`int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6];`), as a user notification
/// (`struct seccomp_notif.data`) delivers it.
public struct SeccompData: Sendable, Equatable {
    /// The syscall number, as the architecture numbers it (x32 calls carry bit 30 on x86_64).
    public var nr: Int32
    /// The `AUDIT_ARCH_*` value of the calling convention; ``nativeAuditArch`` for native calls.
    public var arch: UInt32
    public var instructionPointer: UInt64
    /// The six argument registers, whole. Missing elements read as 0, extra ones are ignored.
    public var args: [UInt64]

    public init(nr: Int32, arch: UInt32 = SeccompData.nativeAuditArch, instructionPointer: UInt64 = 0,
                args: [UInt64] = []) {
        self.nr = nr
        self.arch = arch
        self.instructionPointer = instructionPointer
        self.args = Array(args.prefix(6)) + Array(repeating: 0, count: max(0, 6 - args.count))
    }

    /// Reads a `struct seccomp_data` as the kernel lays it out in memory (64 bytes, host byte
    /// order); nil when `bytes` is shorter.
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        self.init(nr: bytes.loadUnaligned(fromByteOffset: 0, as: Int32.self),
                  arch: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self),
                  instructionPointer: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                  args: (0..<6).map { bytes.loadUnaligned(fromByteOffset: 16 + 8 * $0, as: UInt64.self) })
    }

    /// Where the low 32 bits of argument `index` are, for `BPF_LD | BPF_W | BPF_ABS`.
    static func argumentOffset(_ index: Int) -> UInt32 {
        #if _endian(little)
        UInt32(16 + 8 * index)
        #else
        UInt32(20 + 8 * index)
        #endif
    }

    /// Where the high 32 bits of argument `index` are: the other half of its eight bytes.
    static func argumentHighOffset(_ index: Int) -> UInt32 { argumentOffset(index) ^ 4 }

    /// `sizeof(struct seccomp_data)`: what `BPF_LD | BPF_W | BPF_LEN` loads.
    public static let size = 64

    /// The `AUDIT_ARCH_*` value of native calls on this machine (AUDIT_ARCH_X86_64 is
    /// 0xC000003E, AUDIT_ARCH_AARCH64 0xC00000B7). libseccomp's architecture tokens are these values.
    public static var nativeAuditArch: UInt32 { seccomp_arch_native() }

    /// The 32-bit word at byte `offset`, as `BPF_LD | BPF_W | BPF_ABS` loads it: nil where the
    /// kernel refuses the load (not below 64, or not a multiple of 4).
    func word(at offset: UInt32) -> UInt32? {
        guard offset < UInt32(Self.size), offset & 3 == 0 else { return nil }
        switch offset {
        case 0: return UInt32(bitPattern: nr)
        case 4: return arch
        default:
            let index = Int(offset - 8) / 8
            let value = index == 0 ? instructionPointer : (index - 1 < args.count ? args[index - 1] : 0)
            #if _endian(little)
            let high = offset & 4 != 0
            #else
            let high = offset & 4 == 0
            #endif
            return UInt32(truncatingIfNeeded: high ? value >> 32 : value)
        }
    }
}

extension BPFProgram {
    /// Runs the program on `data` as the kernel's seccomp does, and returns its `SECCOMP_RET_*`
    /// value: A and X start at 0, loads read `data` as 32-bit words, ALU operations wrap at
    /// 32 bits, shifts by X use its low 5 bits, and dividing by an X of 0 returns 0
    /// (`SECCOMP_RET_KILL_THREAD`), as the kernel's conversion to eBPF does.
    ///
    /// The instructions are those `seccomp_check_filter` accepts (it refuses `BPF_MOD`, byte and
    /// half-word loads, indirect loads and `BPF_LDX | BPF_ABS`). Where the kernel would have
    /// refused the program instead (an unknown instruction, a load outside `seccomp_data` or
    /// not aligned, a jump past the end, a shift by 32 or more, a division by a constant 0, a
    /// scratch slot read before it is written, no return at the end) the result is
    /// `SECCOMP_RET_KILL_PROCESS`. Jumps only go forward, so every run ends.
    public func evaluate(_ data: SeccompData) -> UInt32 {
        bytes.withUnsafeBytes { BPFInterpreter.run($0, data) }
    }
}

/// Classic BPF opcodes (`<linux/bpf_common.h>`, `<linux/filter.h>`) and seccomp return values
/// (`<linux/seccomp.h>`).
enum BPF {
    static let ldWAbs: UInt16 = 0x20, ldWLen: UInt16 = 0x80, ldxWLen: UInt16 = 0x81
    static let ldImm: UInt16 = 0x00, ldxImm: UInt16 = 0x01, ldMem: UInt16 = 0x60, ldxMem: UInt16 = 0x61
    static let st: UInt16 = 0x02, stx: UInt16 = 0x03
    static let tax: UInt16 = 0x07, txa: UInt16 = 0x87
    static let ja: UInt16 = 0x05
    static let retK: UInt16 = 0x06, retA: UInt16 = 0x16
    /// BPF_ALU with BPF_K; add `x` for BPF_X.
    static let add: UInt16 = 0x04, sub: UInt16 = 0x14, mul: UInt16 = 0x24, div: UInt16 = 0x34
    static let or: UInt16 = 0x44, and: UInt16 = 0x54, lsh: UInt16 = 0x64, rsh: UInt16 = 0x74
    static let neg: UInt16 = 0x84, mod: UInt16 = 0x94, xor: UInt16 = 0xA4
    /// BPF_JMP with BPF_K; add `x` for BPF_X.
    static let jeq: UInt16 = 0x15, jgt: UInt16 = 0x25, jge: UInt16 = 0x35, jset: UInt16 = 0x45
    static let x: UInt16 = 0x08
    /// Scratch memory words (BPF_MEMWORDS).
    static let memoryWords = 16
    /// The most instructions seccomp(2) accepts in one program (BPF_MAXINSNS).
    static let maxInstructions = 4096

    static let retKillProcess: UInt32 = 0x8000_0000
    static let retKillThread: UInt32 = 0x0000_0000
    static let retTrap: UInt32 = 0x0003_0000
    static let retErrno: UInt32 = 0x0005_0000
    static let retUserNotif: UInt32 = 0x7FC0_0000
    static let retTrace: UInt32 = 0x7FF0_0000
    static let retLog: UInt32 = 0x7FFC_0000
    static let retAllow: UInt32 = 0x7FFF_0000
    /// SECCOMP_RET_ACTION_FULL and SECCOMP_RET_DATA.
    static let actionMask: UInt32 = 0xFFFF_0000
    static let dataMask: UInt32 = 0x0000_FFFF
}

/// One `struct sock_filter`.
struct BPFInstruction: Equatable {
    var code: UInt16
    var jt: UInt8
    var jf: UInt8
    var k: UInt32

    static let size = 8

    static func decode(_ program: BPFProgram) -> [BPFInstruction] {
        program.bytes.withUnsafeBytes { raw in
            (0..<raw.count / size).map { at($0, in: raw) }
        }
    }

    static func at(_ index: Int, in raw: UnsafeRawBufferPointer) -> BPFInstruction {
        let base = index * size
        return BPFInstruction(code: raw.loadUnaligned(fromByteOffset: base, as: UInt16.self),
                              jt: raw[base + 2], jf: raw[base + 3],
                              k: raw.loadUnaligned(fromByteOffset: base + 4, as: UInt32.self))
    }

    static func encode(_ instructions: [BPFInstruction]) -> BPFProgram {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(instructions.count * size)
        for instruction in instructions {
            withUnsafeBytes(of: instruction.code) { bytes += $0 }
            bytes += [instruction.jt, instruction.jf]
            withUnsafeBytes(of: instruction.k) { bytes += $0 }
        }
        return BPFProgram(bytes: bytes)
    }
}

enum BPFInterpreter {
    static func run(_ raw: UnsafeRawBufferPointer, _ data: SeccompData) -> UInt32 {
        let count = raw.count / BPFInstruction.size
        let refused = BPF.retKillProcess
        guard count > 0, count <= BPF.maxInstructions else { return refused }
        var a: UInt32 = 0
        var x: UInt32 = 0
        // The kernel refuses a program that may read a slot before writing it; reading one
        // here means this run followed such a path.
        var memory = (UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0),
                      UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0))
        var written: UInt16 = 0
        var pc = 0
        while pc < count {
            let instruction = BPFInstruction.at(pc, in: raw)
            let k = instruction.k
            pc += 1
            switch instruction.code {
            case BPF.ldWAbs:
                guard let word = data.word(at: k) else { return refused }
                a = word
            case BPF.ldWLen: a = UInt32(SeccompData.size)
            case BPF.ldxWLen: x = UInt32(SeccompData.size)
            case BPF.ldImm: a = k
            case BPF.ldxImm: x = k
            case BPF.ldMem, BPF.ldxMem:
                guard k < BPF.memoryWords, written & (1 << k) != 0 else { return refused }
                let value = withUnsafeBytes(of: &memory) { $0.load(fromByteOffset: Int(k) * 4, as: UInt32.self) }
                if instruction.code == BPF.ldMem { a = value } else { x = value }
            case BPF.st, BPF.stx:
                guard k < BPF.memoryWords else { return refused }
                let value = instruction.code == BPF.st ? a : x
                withUnsafeMutableBytes(of: &memory) {
                    $0.storeBytes(of: value, toByteOffset: Int(k) * 4, as: UInt32.self)
                }
                written |= 1 << k
            case BPF.tax: x = a
            case BPF.txa: a = x
            case BPF.add: a &+= k
            case BPF.add | BPF.x: a &+= x
            case BPF.sub: a &-= k
            case BPF.sub | BPF.x: a &-= x
            case BPF.mul: a &*= k
            case BPF.mul | BPF.x: a &*= x
            case BPF.div:
                guard k != 0 else { return refused }
                a /= k
            case BPF.div | BPF.x:
                guard x != 0 else { return BPF.retKillThread }  // the kernel returns 0
                a /= x
            case BPF.or: a |= k
            case BPF.or | BPF.x: a |= x
            case BPF.and: a &= k
            case BPF.and | BPF.x: a &= x
            case BPF.xor: a ^= k
            case BPF.xor | BPF.x: a ^= x
            case BPF.lsh:
                guard k < 32 else { return refused }
                a <<= k
            case BPF.lsh | BPF.x: a = a &<< (x & 31)
            case BPF.rsh:
                guard k < 32 else { return refused }
                a >>= k
            case BPF.rsh | BPF.x: a = a &>> (x & 31)
            case BPF.neg: a = 0 &- a
            case BPF.ja:
                // pc is at most 4096 and k at most 2^32 - 1: no overflow in Int.
                pc += Int(k)
            case BPF.jeq, BPF.jeq | BPF.x, BPF.jgt, BPF.jgt | BPF.x,
                 BPF.jge, BPF.jge | BPF.x, BPF.jset, BPF.jset | BPF.x:
                let operand = instruction.code & BPF.x != 0 ? x : k
                let taken = switch instruction.code & ~BPF.x {
                case BPF.jeq: a == operand
                case BPF.jgt: a > operand
                case BPF.jge: a >= operand
                default: a & operand != 0
                }
                pc += Int(taken ? instruction.jt : instruction.jf)
            case BPF.retK: return k
            case BPF.retA: return a
            default:
                return refused  // BPF_MOD and everything else seccomp_check_filter refuses
            }
        }
        return refused  // ran off the end, or jumped past it
    }
}
