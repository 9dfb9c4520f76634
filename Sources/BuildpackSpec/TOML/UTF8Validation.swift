import TextEncoding

/// Bytes a buildpack wrote, as text: strict UTF-8 (`UTF8Check`) or a `SpecError` saying where it is not.
enum UTF8Validation {
    /// The bytes as a `String`, or a `.invalidUTF8` error naming the file and the byte offset.
    static func string(_ bytes: [UInt8], file: String) throws(SpecError) -> String {
        if let offset = UTF8Check.firstInvalidOffset(bytes) {
            throw SpecError(.invalidUTF8, "the file is not valid UTF-8 (first bad byte at offset \(offset))", file: file)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
