import ArgumentParser

/// `stockade`: run untrusted Cloud Native Buildpacks without a daemon or root.
public struct Stockade: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "stockade",
        abstract: "Run Cloud Native Buildpacks, and any command, in an unprivileged sandbox.",
        subcommands: [Exec.self, Detect.self, Build.self, Export.self, Run.self, Rebase.self, Copy.self, BuilderCommand.self, BuildpackCommand.self, Profile.self, Janitor.self])

    public init() {}
}
