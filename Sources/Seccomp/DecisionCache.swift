/// Remembers the decision of a fixed set of filters per distinct input, for a
/// supervisor that evaluates them on every notification.
///
/// Why a hit is provably the kernel's answer: a seccomp program is classic BPF
/// whose only view of the call is `BPF_LD | BPF_W | BPF_ABS` loads of the 64
/// bytes of `seccomp_data` (number, architecture, instruction pointer and the
/// six argument registers as numbers). It cannot dereference a pointer
/// argument, read the time, the caller or any state, and the filters never
/// change once installed. So its result is a function of the words it can
/// load, and the key is exactly those words, every other word zeroed: two
/// calls that agree on them run every program along the same path. A pointer
/// argument that a rule does compare (as a number) is part of the key like
/// any other word; what it points to never is, because no filter can see it.
public struct DecisionCache {
    public let filters: [BPFProgram]
    /// Every word of `seccomp_data` some program loads (16 slots of 4 bytes).
    private let loaded: SIMD16<UInt32>
    private var entries: [SIMD16<UInt32>: SeccompDecision] = [:]
    /// Distinct inputs kept; past it the cache starts over (bounded memory).
    static let capacity = 4096

    public init(filters: [BPFProgram]) {
        self.filters = filters
        var mask = SIMD16<UInt32>(repeating: 0)
        for program in filters {
            for instruction in BPFInstruction.decode(program) where instruction.code == BPF.ldWAbs {
                // An offset outside the data or unaligned refuses the program whatever the
                // call is: it reads nothing.
                if instruction.k < UInt32(SeccompData.size), instruction.k & 3 == 0 {
                    mask[Int(instruction.k / 4)] = .max
                }
            }
        }
        loaded = mask
    }

    /// The decision on a `struct seccomp_data` as the kernel lays it out (64 bytes, host byte
    /// order): a hit costs no allocation, which matters on the audit's notification path.
    public mutating func decide(raw: UnsafeRawBufferPointer) -> SeccompDecision {
        precondition(raw.count >= SeccompData.size)
        var words = SIMD16<UInt32>(repeating: 0)
        for slot in 0..<16 { words[slot] = raw.loadUnaligned(fromByteOffset: slot * 4, as: UInt32.self) }
        let key = words & loaded
        if let known = entries[key] { return known }
        return remember(key, SeccompDecision.decide(SeccompData(bytes: raw)!, filters: filters))
    }

    public mutating func decide(_ data: SeccompData) -> SeccompDecision {
        var words = SIMD16<UInt32>(repeating: 0)
        for slot in 0..<16 { words[slot] = data.word(at: UInt32(slot * 4)) ?? 0 }
        let key = words & loaded
        if let known = entries[key] { return known }
        return remember(key, SeccompDecision.decide(data, filters: filters))
    }

    private mutating func remember(_ key: SIMD16<UInt32>, _ decision: SeccompDecision) -> SeccompDecision {
        if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
        entries[key] = decision
        return decision
    }
}
