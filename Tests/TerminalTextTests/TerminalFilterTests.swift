import StockadeTestSupport
import Testing
import TerminalText

/// The escape grammar a buildpack might print, and what of it reaches the terminal.
@Suite struct TerminalFilterTests {
    static let esc = "\u{1B}"

    func filtered(_ bytes: [UInt8], keepsColour: Bool = true, maximumLineBytes: Int = TerminalFilter.defaultMaximumLineBytes) -> [UInt8] {
        var filter = TerminalFilter(keepsColour: keepsColour, maximumLineBytes: maximumLineBytes)
        var output: [UInt8] = []
        filter.filter(bytes, into: &output)
        filter.finish(into: &output)
        return output
    }

    func filtered(_ text: String) -> String { String(decoding: filtered(Array(text.utf8)), as: UTF8.self) }

    /// Everything that must not reach a terminal, each between two words.
    static let dropped: [(String, [UInt8])] = [
        ("OSC 52 clipboard write, BEL", Array("\u{1B}]52;c;ZWNobyBwd25lZA==\u{07}".utf8)),
        ("OSC 0 title, ST", Array("\u{1B}]0;owned\u{1B}\\".utf8)),
        ("OSC 8 hyperlink", Array("\u{1B}]8;;http://evil\u{1B}\\".utf8)),
        ("DCS", Array("\u{1B}P1$r0m\u{1B}\\".utf8)),
        ("DCS cancelled by CAN", Array("\u{1B}Pq#0;2;0;0;0\u{18}".utf8)),
        ("APC", Array("\u{1B}_Gf=100;AAAA\u{1B}\\".utf8)),
        ("PM", Array("\u{1B}^private\u{1B}\\".utf8)),
        ("SOS", Array("\u{1B}Xstring\u{1B}\\".utf8)),
        ("CSI erase display", Array("\u{1B}[2J".utf8)),
        ("CSI cursor home", Array("\u{1B}[H".utf8)),
        ("CSI cursor up", Array("\u{1B}[1A".utf8)),
        ("CSI erase line", Array("\u{1B}[2K".utf8)),
        ("CSI private mode (hide cursor)", Array("\u{1B}[?25l".utf8)),
        ("CSI private marker ending in m", Array("\u{1B}[>4;2m".utf8)),
        ("CSI with intermediate ending in m", Array("\u{1B}[1 m".utf8)),
        ("CSI device attributes", Array("\u{1B}[c".utf8)),
        ("CSI window report", Array("\u{1B}[21t".utf8)),
        ("ESC c (reset)", Array("\u{1B}c".utf8)),
        ("ESC 7 (save cursor)", Array("\u{1B}7".utf8)),
        ("ESC M (reverse index)", Array("\u{1B}M".utf8)),
        ("ESC ( 0 (line drawing)", Array("\u{1B}(0".utf8)),
        ("ESC # 8 (screen test)", Array("\u{1B}#8".utf8)),
        ("UTF-8 C1 CSI", [0xC2, 0x9B]),
        ("UTF-8 C1 OSC", [0xC2, 0x9D]),
        ("UTF-8 C1 NEL", [0xC2, 0x85]),
        ("UTF-8 C1 PAD", [0xC2, 0x80]),
        ("UTF-8 C1 APC", [0xC2, 0x9F]),
        ("lone CR", [0x0D]),
        ("BEL", [0x07]),
        ("backspace", [0x08]),
        ("NUL", [0x00]),
        ("vertical tab", [0x0B]),
        ("form feed", [0x0C]),
        ("DEL", [0x7F]),
        ("SO", [0x0E]),
    ]

    @Test(arguments: dropped)
    func dropsWhatATerminalWouldActOn(_ name: String, _ sequence: [UInt8]) {
        let input = Array("before ".utf8) + sequence + Array("after\n".utf8)
        #expect(filtered(input) == Array("before after\n".utf8), "\(name)")
    }

    /// Raw 8-bit C1 bytes are not UTF-8; they become U+FFFD, never themselves.
    @Test(arguments: [UInt8](0x80...0x9F))
    func rawC1BytesBecomeReplacementCharacters(_ byte: UInt8) {
        #expect(filtered(Array("a".utf8) + [byte] + Array("31m\n".utf8)) == Array("a\u{FFFD}31m\n".utf8))
    }

    static let colours = ["\u{1B}[31m", "\u{1B}[1;32m", "\u{1B}[38;2;255;128;0m", "\u{1B}[38:5:196m", "\u{1B}[m", "\u{1B}[0;1;4m"]

    @Test(arguments: colours)
    func passesColourAndResetsItAtTheEndOfTheLine(_ colour: String) {
        #expect(filtered("\(colour)green\u{1B}[0m plain\n") == "\(colour)green\u{1B}[0m plain\u{1B}[0m\n")
        // A colour left on carries over to no other line, stockade's included.
        #expect(filtered("\(colour)left on") == "\(colour)left on\u{1B}[0m\n")
    }

    @Test func withoutColourEvenSGRIsDropped() {
        #expect(filtered(Array("\u{1B}[31mred\u{1B}[0m".utf8), keepsColour: false) == Array("red\n".utf8))
        #expect(TerminalFilter.sanitize(Array("\u{1B}[1mbold\u{1B}]0;t\u{07}!".utf8)) == "bold!\n")
    }

    @Test func tabsNewlinesAndUnicodeTextPass() {
        let text = "a\tb\nçé ✓ 日本 🦀\n\n"
        #expect(filtered(text) == text)
    }

    @Test func carriageReturnLineFeedIsANewline() {
        #expect(filtered("one\r\ntwo\r\n") == "one\ntwo\n")
        #expect(filtered("progress 10%\rprogress 20%\rdone\n") == "progress 10%progress 20%done\n")
    }

    /// Invalid UTF-8: each maximal ill-formed subsequence becomes one U+FFFD.
    static let invalidUTF8: [([UInt8], String)] = [
        ([0xC0, 0x80], "\u{FFFD}\u{FFFD}"),             // overlong NUL
        ([0xE0, 0x80, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}"), // overlong
        ([0xED, 0xA0, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}"), // surrogate
        ([0xF4, 0x90, 0x80, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"), // above U+10FFFF
        ([0xF5], "\u{FFFD}"),
        ([0xFF, 0xFE], "\u{FFFD}\u{FFFD}"),
        ([0xE2, 0x9C], "\u{FFFD}"),                       // truncated ✓
        ([0xE2, 0x9C, 0x41], "\u{FFFD}A"),
        ([0xF0, 0x9F, 0xA6], "\u{FFFD}"),                 // truncated 🦀
        ([0xE2, 0x1B, 0x5B, 0x32, 0x4A], "\u{FFFD}"),     // ESC [2J inside a scalar
    ]

    @Test(arguments: invalidUTF8)
    func invalidUTF8BecomesReplacementCharacters(_ bytes: [UInt8], _ expected: String) {
        let output = filtered(bytes + [0x0A])
        #expect(String(validating: output, as: UTF8.self) == expected + "\n")
    }

    @Test func anUnterminatedStringSwallowsOneLineAtMost() {
        #expect(filtered("\u{1B}]0;no end\nvisible\n") == "\nvisible\n")
        #expect(filtered("\u{1B}Pq" + String(repeating: "x", count: 1_000_000)) == "")
    }

    @Test func aSequenceCutShortByAControlIsDropped() {
        #expect(filtered("a\u{1B}[31\nb\n") == "a\nb\n")
        #expect(filtered("a\u{1B}[31\u{1B}[32mb\n") == "a\u{1B}[32mb\u{1B}[0m\n")
        #expect(filtered("a\u{1B}\u{1B}[2Jb\n") == "ab\n")
        #expect(filtered("a\u{1B}é\n") == "aé\n")
    }

    @Test func overlongParametersAreNotAColour() {
        let long = "\u{1B}[" + String(repeating: "1;", count: 100_000) + "31m"
        #expect(filtered(long + "x\n") == "x\n")
    }

    @Test func longLinesAreSplitWithAMarker() {
        let limit = 64
        let output = filtered(Array(repeating: UInt8(ascii: "a"), count: 200) + [0x0A], maximumLineBytes: limit)
        let lines = output.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast()
        let marker = Array(" [stockade: line split at \(limit) bytes]".utf8)
        #expect(lines.count == 4)
        for line in lines.dropLast() { #expect(Array(line) == Array(repeating: UInt8(ascii: "a"), count: limit) + marker) }
        #expect(Array(lines.last!) == Array(repeating: UInt8(ascii: "a"), count: 200 - 3 * limit))
    }

    @Test func aSplitNeverCutsAScalarOrAColour() {
        let text = String(repeating: "é🦀\u{1B}[31m", count: 50)
        let output = filtered(Array(text.utf8), maximumLineBytes: 16)
        let lines = String(validating: output, as: UTF8.self)
        #expect(lines != nil)
        let kept = lines!.replacing(" [stockade: line split at 16 bytes]\u{1B}[0m\n", with: "")
        #expect(kept.replacing("\u{1B}[0m\n", with: "") == text)
    }

    /// Every input, cut into two chunks at every offset, gives what it gives whole.
    @Test(arguments: dropped.map(\.1) + colours.map { Array($0.utf8) } + invalidUTF8.map(\.0) + [Array("é🦀\r\n".utf8)])
    func chunkBoundariesDoNotMatter(_ sequence: [UInt8]) {
        let input = Array("x ".utf8) + sequence + Array(" y\n".utf8) + sequence
        let whole = filtered(input)
        for cut in 0...input.count {
            var filter = TerminalFilter()
            var output: [UInt8] = []
            filter.filter(input[..<cut], into: &output)
            filter.filter(input[cut...], into: &output)
            filter.finish(into: &output)
            #expect(output == whole, "cut at \(cut)")
        }
        var filter = TerminalFilter()
        var output: [UInt8] = []
        for byte in input { filter.filter([byte], into: &output) }
        filter.finish(into: &output)
        #expect(output == whole, "byte by byte")
    }

    /// Pseudo-random bytes biased towards the grammar's own: whatever comes
    /// out is valid UTF-8 whose only controls are tab, newline and colours.
    @Test func randomInputOnlyEverYieldsSafeOutput() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let alphabet: [UInt8] = [0x1B, 0x5B, 0x5D, 0x50, 0x5C, 0x07, 0x0A, 0x0D, 0x3B, 0x3F, 0x6D, 0x31, 0x9B, 0xC2, 0x9D, 0xE2, 0x9C, 0x93, 0x41, 0x18, 0x20]
        var firstUnsafe: [UInt8]?
        for _ in 0..<2000 where firstUnsafe == nil {
            var input: [UInt8] = []
            for _ in 0..<64 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let pick = Int(state >> 33)
                input.append(pick % 4 == 0 ? UInt8(truncatingIfNeeded: pick >> 8) : alphabet[(pick >> 8) % alphabet.count])
            }
            if !Self.isSafe(filtered(input, maximumLineBytes: 32)) { firstUnsafe = input }
        }
        #expect(firstUnsafe == nil)
    }

    static func isSafe(_ output: [UInt8]) -> Bool {
        guard let text = String(validating: output, as: UTF8.self) else { return false }
        return isTextAndColourOnly(text)
    }

}

@Suite struct PrefixedLinesTests {
    @Test func eachLineGetsThePrefixWhateverTheChunks() {
        let input = Array("one\ntw".utf8) + [0xE2] + [0x9C, 0x93] + Array("o\u{1B}]0;x\u{07}\nunfinished".utf8)
        var whole = PrefixedLines(prefix: "[bp] ")
        let all = whole.feed(input) + whole.finish()
        #expect(String(decoding: all, as: UTF8.self) == "[bp] one\n[bp] tw✓o\n[bp] unfinished\n")
        for cut in 0...input.count {
            var lines = PrefixedLines(prefix: "[bp] ")
            let first = lines.feed(input[..<cut])
            #expect(first.last == nil || first.last == 0x0A, "only whole lines leave")
            #expect(first + lines.feed(input[cut...]) + lines.finish() == all, "cut at \(cut)")
        }
    }

    @Test func nothingIsWrittenForNoOutput() {
        var lines = PrefixedLines(prefix: "[bp] ")
        #expect(lines.feed([]) == [] && lines.finish() == [])
    }
}
