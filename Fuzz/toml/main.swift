// libFuzzer target: the TOML a buildpack writes (launch.toml, <layer>.toml, build.toml,
// store.toml, plan.toml) and the other documents read with the same parser. Any input:
// no crash, no hang; what parses renders to TOML that parses back to the same table.
import BuildpackSpec

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let table = try? TOML.parse(bytes, file: "fuzz.toml") else { return 0 }
    for api in ["0.7", "0.9", "0.10", "0.12"] {
        let context = DocumentContext(file: "fuzz.toml", buildpack: "fuzz/bp@0.0.1", buildpackAPI: APIVersion(api))
        _ = try? LaunchTOML(table: table, context: context)
        _ = try? LayerTOML(table: table, context: context)
        _ = try? BuildTOML(table: table, context: context)
        _ = try? StoreTOML(table: table, context: context)
        _ = try? DetectPlan(table: table, context: context)
        _ = try? BuildpackPlan(table: table, context: context)
    }
    let context = DocumentContext(file: "fuzz.toml")
    _ = try? BuildpackTOML(table: table, context: context)
    _ = try? ProjectTOML(table: table, context: context)
    _ = try? OrderTOML(table: table, context: context)
    _ = try? GroupTOML(table: table, context: context)
    _ = try? PlanTOML(table: table, context: context)
    _ = try? MetadataTOML(table: table, context: context)
    _ = try? BuilderTOML(table: table, context: context)
    _ = try? SystemTOML(table: table, context: context)

    let rendered = TOML.render(table)
    do {
        let again = try TOML.parse(rendered, file: "rendered.toml")
        precondition(again == table, "the rendered document reads back differently:\n\(rendered)")
    } catch {
        preconditionFailure("the rendered document does not parse: \(error)\n\(rendered)")
    }
    return 0
}
