import CSeccomp
import Glibc

extension SeccompCompiler {
    /// The name of native syscall `number` (`0` is `"read"` on x86_64), from libseccomp's table
    /// and, for syscalls newer than it (457 to 469), stockade's own; nil for a number neither
    /// knows, a negative one, or an x32 number.
    public static func syscallName(_ number: Int32) -> String? {
        guard number >= 0 else { return nil }
        if let name = seccomp_syscall_resolve_num_arch(UInt32(SCMP_ARCH_NATIVE), number) {
            defer { free(name) }
            return String(cString: name)
        }
        return SyscallNumber.newerThanLibseccomp.first { $0.value == number }?.key
    }

    /// The native number of syscall `name`; nil when libseccomp and stockade do not know it,
    /// or it exists only on other architectures (`socketcall` on x86_64).
    public static func syscallNumber(_ name: String) -> Int32? {
        if case .number(let number) = SyscallNumber(name: name) { return number }
        return nil
    }

    /// Every native syscall with a name, by number: what a profile whose default allows
    /// leaves open.
    static let nativeSyscalls: [(number: Int32, name: String)] = (0..<1024).compactMap { number in
        syscallName(number).map { (number, $0) }
    }
}
