// libFuzzer target: seccomp profiles (`--profile FILE`), parsed and, when valid, compiled to
// BPF with libseccomp. Any input: no crash, no hang.
import Seccomp

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let profile = try? SeccompProfile.parse(bytes, origin: "fuzz.json") else { return 0 }
    _ = try? SeccompCompiler.compile(profile)
    return 0
}
