/// Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF): the one
/// validator both the JSON and the TOML parser use on untrusted bytes.
public enum UTF8Check {
    /// What one sequence starting at an offset is.
    public enum Sequence: Equatable, Sendable {
        /// A valid sequence of this many bytes (1 for ASCII).
        case valid(length: Int)
        /// The lead byte starts no valid sequence (a continuation byte, 0xC0, 0xC1, 0xF5 and above).
        case invalidLead
        /// The input ends before the sequence does.
        case truncated
        /// A byte after the lead is not the continuation the lead calls for.
        case invalidContinuation
    }

    /// The sequence that starts at `offset` (which must be inside `bytes`).
    @inlinable
    public static func sequence(in bytes: UnsafeBufferPointer<UInt8>, at offset: Int) -> Sequence {
        let lead = bytes[offset]
        if lead < 0x80 { return .valid(length: 1) }
        let length: Int
        var second: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; second = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; second = 0x80...0x9F
        case 0xF0: length = 4; second = 0x90...0xBF
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; second = 0x80...0x8F
        default: return .invalidLead
        }
        for index in 1..<length {
            guard offset + index < bytes.count else { return .truncated }
            guard (index == 1 ? second : 0x80...0xBF).contains(bytes[offset + index]) else { return .invalidContinuation }
        }
        return .valid(length: length)
    }

    /// The offset of the first byte that does not belong to a valid UTF-8 sequence, or `nil`.
    public static func firstInvalidOffset(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBufferPointer { buffer -> Int? in
            var offset = 0
            while offset < buffer.count {
                // ASCII, nearly every byte of a TOML file, without a call.
                if buffer[offset] < 0x80 { offset += 1; continue }
                guard case .valid(let length) = sequence(in: buffer, at: offset) else { return offset }
                offset += length
            }
            return nil
        }
    }
}
