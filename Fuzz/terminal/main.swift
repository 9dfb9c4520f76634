// libFuzzer target: the terminal filter. Any input, cut into chunks where its first byte says:
// the output is valid UTF-8 whose only controls are tab, newline and whole SGR sequences, no
// line exceeds the limit plus the marker, and the chunking changes nothing.
import TerminalText

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let all = Array(UnsafeBufferPointer(start: data, count: size))
    guard let first = all.first else { return 0 }
    let input = Array(all.dropFirst())
    let limit = 72 + Int(first & 0x3F)  // above the longest colour sequence kept (67 bytes)

    var whole = TerminalFilter(maximumLineBytes: limit)
    var expected: [UInt8] = []
    whole.filter(input, into: &expected)
    whole.finish(into: &expected)

    var chunked = TerminalFilter(maximumLineBytes: limit)
    var output: [UInt8] = []
    let step = 1 + Int(first >> 6)
    var start = 0
    while start < input.count {
        chunked.filter(input[start..<min(start + step, input.count)], into: &output)
        start += step
    }
    chunked.finish(into: &output)
    precondition(output == expected, "chunking changed the output")

    guard let text = String(validating: output, as: UTF8.self) else { preconditionFailure("not UTF-8") }
    let scalars = Array(text.unicodeScalars)
    var index = 0
    while index < scalars.count {
        let value = scalars[index].value
        if value == 0x1B {
            precondition(index + 1 < scalars.count && scalars[index + 1] == "[", "ESC not followed by [")
            index += 2
            while index < scalars.count, "0123456789;:".unicodeScalars.contains(scalars[index]) { index += 1 }
            precondition(index < scalars.count && scalars[index] == "m", "a control sequence other than SGR")
        } else {
            precondition(value >= 0x20 || value == 0x09 || value == 0x0A, "a C0 control")
            precondition(!(0x7F...0x9F).contains(value), "DEL or a C1 control")
        }
        index += 1
    }
    // A split line carries the marker and perhaps a colour reset.
    let longest = limit + TerminalFilter(maximumLineBytes: limit).splitMarker.count + 4
    for line in output.split(separator: 0x0A) { precondition(line.count <= longest, "a line longer than the limit") }
    return 0
}
