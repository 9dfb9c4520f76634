// libFuzzer target: the JSON parser (image documents, seccomp profiles). Any input: no
// crash, no hang; what parses renders to text that parses back to the same value.
import JSON

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let value = try? JSONParser.parse(bytes) else { return 0 }
    let text = value.text
    do {
        let again = try JSONParser.parse(Array(text.utf8), maxBytes: Int.max)
        precondition(again == value, "the rendered text reads back differently: \(text)")
    } catch {
        preconditionFailure("the rendered text does not parse: \(error): \(text)")
    }
    return 0
}
