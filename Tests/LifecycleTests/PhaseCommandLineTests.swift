import Foundation
import StockadeTestSupport
import Testing

/// The phase commands' command line before any work: the Platform API first, Go's flag syntax,
/// the flags each Platform API defines, one line and the reference's exit code for each refusal.
@Suite struct PhaseCommandLineTests {
    let links = LifecycleLinks()

    @Test(arguments: ["", "0.6", "0.16", "1.0", "0.x", "0.13 "])
    func platformAPIIsCheckedFirst(api: String) {
        for phase in LifecycleLinks.phases where phase != "launcher" {
            let outcome = links.run(phase, ["-nope"], environment: api.isEmpty ? [:] : ["CNB_PLATFORM_API": api])
            #expect(outcome.status == 11, "\(phase) with CNB_PLATFORM_API='\(api)': \(outcome)")
            #expect(outcome.stderr.split(separator: "\n").count == 1 && outcome.stderr.contains("platform API"), "\(outcome)")
        }
    }

    @Test(arguments: [(["-nope"], "flag provided but not defined: -nope"), (["-layers"], "flag needs an argument: -layers"),
                      (["-uid=x", "-layers=/l"], "invalid value \"x\" for flag -uid"), (["--=x"], "bad flag syntax: --=x"),
                      (["-skip-layers=yes"], "invalid boolean value \"yes\" for -skip-layers")])
    func malformedFlagsAreOneLineAndExit2(arguments: [String], message: String) {
        let outcome = links.run("restorer", arguments, environment: ["CNB_PLATFORM_API": "0.13"])
        #expect(outcome.stderr.hasPrefix("stockade: error: \(message)"), "\(outcome)")
        #expect(outcome.status == 2 && outcome.stderr.split(separator: "\n").count == 1, "\(outcome)")
    }

    /// Which flags exist depends on the Platform API, as in the reference's DefineFlags.
    @Test func flagsFollowThePlatformAPI() {
        let old = links.run("analyzer", ["-layout", "my-app"], environment: ["CNB_PLATFORM_API": "0.11"])
        #expect(old.status == 2 && old.stderr.contains("-layout"), "-layout is 0.12+: \(old)")
        let system = links.run("detector", ["-system=/x"], environment: ["CNB_PLATFORM_API": "0.14"])
        #expect(system.status == 2, "-system is 0.15+: \(system)")
        let stack = links.run("analyzer", ["-stack=/x", "-version"], environment: ["CNB_PLATFORM_API": "0.11"])
        #expect(stack.status == 0, "-stack is below 0.12: \(stack)")
        let noStack = links.run("analyzer", ["-stack=/x"], environment: ["CNB_PLATFORM_API": "0.12"])
        #expect(noStack.status == 2, "\(noStack)")
    }

    @Test func versionHelpAndTheSubcommand() {
        let version = links.run("builder", ["-version"], environment: ["CNB_PLATFORM_API": "0.9"])
        #expect(version.status == 0 && version.stdout.contains("Platform API 0.7-0.15"), "\(version)")
        let help = links.run("exporter", ["-h"], environment: ["CNB_PLATFORM_API": "0.9"])
        #expect(help.status == 0 && help.stdout.contains("Usage: exporter"), "\(help)")
        let sub = Fixture.run(["-i", "CNB_PLATFORM_API=0.13", Fixture.shared.stockade, "lifecycle", "detect", "-version"])
        #expect(sub.status == 0 && sub.stdout.contains("Platform API"), "\(sub)")
        let multiCall = Fixture.shared.makeDirectory("multicall") + "/lifecycle"
        try? FileManager.default.createSymbolicLink(atPath: multiCall, withDestinationPath: Fixture.shared.stockade)
        let reference = Fixture.run(["-i", "CNB_PLATFORM_API=0.13", multiCall, "build", "-version"])
        #expect(reference.status == 0 && reference.stdout.contains("Platform API"), "the reference's `lifecycle build`: \(reference)")
        let none = Fixture.run(["-i", Fixture.shared.stockade, "lifecycle", "extend"])
        #expect(none.status == 3 && none.stderr.split(separator: "\n").count == 1, "\(none)")
        // Every other command is untouched.
        let exec = Fixture.shared.stockade(["exec", "--", "/bin/true"], as: .suiteUser)
        #expect(exec.status == 0, "\(exec)")
    }

    /// Flags win over CNB_* variables, which win over the defaults.
    @Test func flagsOverVariablesOverDefaults() throws {
        let fromFlag = Fixture.shared.makeDirectory("flag")
        let fromVariable = Fixture.shared.makeDirectory("variable")
        for dir in [fromFlag, fromVariable] {
            try "[[group]]\nid = \"none/such\"\nversion = \"1.0.0\"\napi = \"0.10\"\n".write(toFile: dir + "/group.toml", atomically: true, encoding: .utf8)
        }
        // A plan missing from the layers the flag names, not the variable's: the flag's was read.
        let outcome = links.run("builder", ["-layers=\(fromFlag)", "-app=\(fromFlag)"],
                                environment: ["CNB_PLATFORM_API": "0.13", "CNB_LAYERS_DIR": fromVariable])
        #expect(outcome.status == 1 && outcome.stderr.contains("failed to read plan file: \(fromFlag)/plan.toml"), "\(outcome)")
        let variable = links.run("builder", [], environment: ["CNB_PLATFORM_API": "0.13", "CNB_LAYERS_DIR": fromVariable])
        #expect(variable.stderr.contains("\(fromVariable)/plan.toml"), "\(variable)")
        let defaults = links.run("builder", [], environment: ["CNB_PLATFORM_API": "0.13"])
        #expect(defaults.stderr.contains("failed to read group file: /layers/group.toml"), "\(defaults)")
    }
}
