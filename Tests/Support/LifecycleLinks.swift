import Foundation

/// `/cnb/lifecycle/<phase>` as a builder image holding Stockade has it: a link per phase to the
/// stockade binary, run as a platform runs them, with only the environment it gives.
public struct LifecycleLinks: Sendable {
    public static let phases = ["analyzer", "detector", "restorer", "builder", "exporter", "creator", "rebaser", "launcher"]
    public let directory: String

    /// Links in `directory` (created), or in a fresh directory of the fixture.
    public init(in directory: String? = nil) {
        let dir = directory ?? Fixture.shared.makeDirectory("lifecycle")
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for phase in Self.phases {
            try? FileManager.default.removeItem(atPath: dir + "/" + phase)
            try! FileManager.default.createSymbolicLink(atPath: dir + "/" + phase, withDestinationPath: Fixture.shared.stockade)
        }
        self.directory = dir
    }

    /// `<directory>/<phase> ARGS` as `invoker`, in `cwd`, with `PATH` and `environment` alone.
    public func run(_ phase: String, _ arguments: [String], environment: [String: String], cwd: String? = nil,
                    as invoker: Invoker = .suiteUser) -> Outcome {
        var argv = cwd.map { ["-C", $0] } ?? []
        argv += ["-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"] + environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return Fixture.run(argv + invoker.prefix + [directory + "/" + phase] + arguments)
    }
}
