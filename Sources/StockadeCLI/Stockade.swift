import ArgumentParser

/// `stockade`: run untrusted Cloud Native Buildpacks without a daemon or root.
///
/// Every command names itself (`commandName:`): the parser builds the whole
/// command tree on every start, and a missing name is derived with
/// `String(describing:)`, whose protocol lookups scan all of the binary's
/// conformance records, for each command (about a millisecond per `exec`).
public struct Stockade: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "stockade",
        abstract: "Run Cloud Native Buildpacks, and any command, in an unprivileged sandbox.",
        version: Version.text,
        subcommands: [Exec.self, Detect.self, Build.self, Export.self, Run.self, Rebase.self, Copy.self,
                      BuilderCommand.self, BuildpackCommand.self, Profile.self, Janitor.self])

    public init() {}
}
