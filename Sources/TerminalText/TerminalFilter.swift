/// Makes untrusted program output safe to show on a terminal. Printable text
/// (valid UTF-8), tab and newline pass; so, optionally, do SGR colour sequences
/// (`ESC [ digits ; : m`), which buildpacks use. Everything else of the escape
/// grammar is dropped whole: OSC (title, clipboard), DCS, APC, PM, SOS, every
/// other control sequence (cursor movement, erase, modes), other ESC sequences,
/// C0 controls (BEL, backspace, a `\r` that would overwrite our own line) and
/// C1 controls, raw or UTF-8 encoded. Invalid UTF-8 becomes U+FFFD, so a raw
/// 8-bit C1 byte never reaches a terminal.
///
/// Incremental: state carries across chunks, so a sequence split anywhere is
/// handled as if whole. Bounded: a pending UTF-8 scalar is at most 4 bytes, a
/// pending colour sequence at most `maximumParameterBytes`; strings (OSC, DCS…)
/// are skipped without being kept, and end at a newline as well as at their
/// terminator, so an unterminated one swallows one line at most. Lines longer
/// than `maximumLineBytes` are split, with a marker saying so. A line that set
/// a colour ends with a reset, so no colour leaks onto the next line, which may
/// be stockade's own.
public struct TerminalFilter: Sendable {
    public static let defaultMaximumLineBytes = 65536
    static let maximumParameterBytes = 64

    public let keepsColour: Bool
    public let maximumLineBytes: Int

    private enum State: Sendable {
        case ground
        /// After ESC.
        case escape
        /// ESC and intermediate bytes (0x20–0x2F), waiting for a final byte.
        case escapeIntermediate
        /// After ESC [, collecting parameters.
        case controlSequence
        /// OSC, DCS, APC, PM or SOS: skipped until its terminator.
        case string
    }

    private var state = State.ground
    private var parameters: [UInt8] = []
    /// Whether the control sequence being read may still be a colour.
    private var colourCandidate = true
    /// The bytes of an incomplete UTF-8 scalar, how many more it needs and
    /// the range its next byte must fall in (Unicode table 3-7).
    private var scalar: [UInt8] = []
    private var needed = 0
    private var nextLow: UInt8 = 0x80
    private var nextHigh: UInt8 = 0xBF
    private var lineBytes = 0
    private var colourOnLine = false

    public init(keepsColour: Bool = true, maximumLineBytes: Int = TerminalFilter.defaultMaximumLineBytes) {
        self.keepsColour = keepsColour
        self.maximumLineBytes = max(16, maximumLineBytes)
        parameters.reserveCapacity(Self.maximumParameterBytes)
        scalar.reserveCapacity(4)
    }

    public static let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]
    static let reset: [UInt8] = Array("\u{1B}[0m".utf8)
    public var splitMarker: [UInt8] { Array(" [stockade: line split at \(maximumLineBytes) bytes]".utf8) }

    /// Appends the safe form of `chunk` to `output`.
    public mutating func filter(_ chunk: some Sequence<UInt8>, into output: inout [UInt8]) {
        for byte in chunk { consume(byte, into: &output) }
    }

    /// Ends the input: an incomplete scalar becomes U+FFFD, an incomplete
    /// sequence is dropped, and an unfinished line is ended.
    public mutating func finish(into output: inout [UInt8]) {
        if needed > 0 { invalid(into: &output) }
        state = .ground
        if lineBytes > 0 || colourOnLine { endLine(into: &output) }
    }

    /// The whole of `bytes` made safe, as text.
    public static func sanitize(_ bytes: some Sequence<UInt8>, keepsColour: Bool = false) -> String {
        var filter = TerminalFilter(keepsColour: keepsColour)
        var output: [UInt8] = []
        filter.filter(bytes, into: &output)
        filter.finish(into: &output)
        return String(decoding: output, as: UTF8.self)
    }

    private mutating func consume(_ byte: UInt8, into output: inout [UInt8]) {
        switch state {
        case .ground:
            ground(byte, into: &output)
        case .escape:
            switch byte {
            case UInt8(ascii: "["):
                state = .controlSequence
                parameters.removeAll(keepingCapacity: true)
                colourCandidate = true
            case UInt8(ascii: "]"), UInt8(ascii: "P"), UInt8(ascii: "_"), UInt8(ascii: "^"), UInt8(ascii: "X"):
                state = .string
            case 0x20...0x2F: state = .escapeIntermediate
            case 0x30...0x7E: state = .ground  // a whole two-byte sequence (ESC c, ESC 7, ESC M…): dropped
            case 0x1B: break
            default: abandon(byte, into: &output)
            }
        case .escapeIntermediate:
            switch byte {
            case 0x20...0x2F: break
            case 0x30...0x7E: state = .ground
            case 0x1B: state = .escape
            default: abandon(byte, into: &output)
            }
        case .controlSequence:
            switch byte {
            case 0x30...0x3B:  // digits, ':' and ';'
                if parameters.count < Self.maximumParameterBytes { parameters.append(byte) } else { colourCandidate = false }
            case 0x3C...0x3F, 0x20...0x2F:  // private markers, intermediates: never a colour
                colourCandidate = false
            case 0x40...0x7E:
                state = .ground
                if byte == UInt8(ascii: "m") && colourCandidate && keepsColour { colour(into: &output) }
            case 0x1B: state = .escape
            default: abandon(byte, into: &output)
            }
        case .string:
            switch byte {
            case 0x07, 0x18, 0x1A: state = .ground  // BEL ends an OSC; CAN and SUB cancel
            case 0x1B: state = .escape  // ESC \ (ST) is then a two-byte sequence, dropped
            case 0x0A: abandon(byte, into: &output)
            default: break
            }
        }
    }

    /// A sequence cut short by a byte that cannot continue it: the sequence is
    /// dropped and the byte read as text.
    private mutating func abandon(_ byte: UInt8, into output: inout [UInt8]) {
        state = .ground
        ground(byte, into: &output)
    }

    private mutating func ground(_ byte: UInt8, into output: inout [UInt8]) {
        if needed > 0 {
            if byte >= nextLow && byte <= nextHigh {
                scalar.append(byte)
                needed -= 1
                nextLow = 0x80
                nextHigh = 0xBF
                if needed == 0 { completeScalar(into: &output) }
                return
            }
            invalid(into: &output)
        }
        switch byte {
        case 0x20...0x7E, 0x09: emit(byte, into: &output)
        case 0x0A: endLine(into: &output)
        case 0x1B: state = .escape
        case 0x00...0x1F, 0x7F: break
        case 0xC2...0xDF: begin(byte, needing: 1)
        case 0xE0: begin(byte, needing: 2, low: 0xA0)
        case 0xED: begin(byte, needing: 2, high: 0x9F)  // no surrogates
        case 0xE1...0xEF: begin(byte, needing: 2)
        case 0xF0: begin(byte, needing: 3, low: 0x90)
        case 0xF4: begin(byte, needing: 3, high: 0x8F)  // nothing above U+10FFFF
        case 0xF1...0xF3: begin(byte, needing: 3)
        default: invalid(into: &output)  // a lone continuation byte (raw C1 among them), C0, C1, F5–FF
        }
    }

    private mutating func begin(_ byte: UInt8, needing count: Int, low: UInt8 = 0x80, high: UInt8 = 0xBF) {
        scalar.removeAll(keepingCapacity: true)
        scalar.append(byte)
        needed = count
        nextLow = low
        nextHigh = high
    }

    private mutating func completeScalar(into output: inout [UInt8]) {
        // U+0080–U+009F: the C1 controls, UTF-8 encoded.
        if !(scalar.count == 2 && scalar[0] == 0xC2 && scalar[1] <= 0x9F) { emit(scalar, into: &output) }
        scalar.removeAll(keepingCapacity: true)
    }

    private mutating func invalid(into output: inout [UInt8]) {
        needed = 0
        nextLow = 0x80
        nextHigh = 0xBF
        scalar.removeAll(keepingCapacity: true)
        emit(Self.replacement, into: &output)
    }

    private mutating func colour(into output: inout [UInt8]) {
        var sequence: [UInt8] = [0x1B, UInt8(ascii: "[")]
        sequence += parameters
        sequence.append(UInt8(ascii: "m"))
        emit(sequence, into: &output)
        colourOnLine = true
    }

    private mutating func emit(_ byte: UInt8, into output: inout [UInt8]) {
        if lineBytes >= maximumLineBytes { split(into: &output) }
        output.append(byte)
        lineBytes += 1
    }

    private mutating func emit(_ token: [UInt8], into output: inout [UInt8]) {
        if lineBytes + token.count > maximumLineBytes { split(into: &output) }
        output += token
        lineBytes += token.count
    }

    private mutating func split(into output: inout [UInt8]) {
        output += splitMarker
        endLine(into: &output)
    }

    private mutating func endLine(into output: inout [UInt8]) {
        if colourOnLine { output += Self.reset }
        output.append(0x0A)
        lineBytes = 0
        colourOnLine = false
    }
}
