/// Strict UTF-8 validation (no overlong forms, no surrogates, nothing above U+10FFFF) that reports
/// where the first bad byte is.
enum UTF8Validation {
    /// The offset of the first byte that does not belong to a valid UTF-8 sequence, or `nil`.
    static func firstInvalidOffset(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBufferPointer { buffer -> Int? in
            var i = 0
            let n = buffer.count
            while i < n {
                let b0 = buffer[i]
                if b0 < 0x80 { i += 1; continue }
                let length: Int
                var lower: UInt8 = 0x80, upper: UInt8 = 0xBF
                switch b0 {
                case 0xC2...0xDF: length = 2
                case 0xE0: length = 3; lower = 0xA0
                case 0xE1...0xEC, 0xEE...0xEF: length = 3
                case 0xED: length = 3; upper = 0x9F
                case 0xF0: length = 4; lower = 0x90
                case 0xF1...0xF3: length = 4
                case 0xF4: length = 4; upper = 0x8F
                default: return i
                }
                if i + length > n { return i }
                let b1 = buffer[i + 1]
                if b1 < lower || b1 > upper { return i }
                var k = 2
                while k < length {
                    if buffer[i + k] & 0xC0 != 0x80 { return i }
                    k += 1
                }
                i += length
            }
            return nil
        }
    }

    /// The bytes as a `String`, or a `.invalidUTF8` error naming the file and the byte offset.
    static func string(_ bytes: [UInt8], file: String) throws(SpecError) -> String {
        if let offset = firstInvalidOffset(bytes) {
            throw SpecError(.invalidUTF8, "the file is not valid UTF-8 (first bad byte at offset \(offset))", file: file)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
