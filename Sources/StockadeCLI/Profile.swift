import ArgumentParser
import Glibc
import Sandbox
import Seccomp
import SystemCalls
import SystemPackage

struct Profile: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile", abstract: "Work with seccomp profiles.",
        subcommands: [Learn.self, Check.self, Compile.self])

    struct Learn: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "learn", abstract: "Run a command while observing every syscall, and write a profile that allows exactly those.",
            discussion: "The command runs as with `stockade exec` (the same options), under the hardening baseline only.")

        @Option(name: .shortAndLong, help: ArgumentHelp("Where to write the learned profile.", valueName: "file"))
        var output: String

        @OptionGroup var sandbox: SandboxOptions

        @Argument(parsing: .captureForPassthrough, help: "The command and its arguments, after `--`.")
        var command: [String] = []

        mutating func validate() throws {
            if let first = command.first, first == "--help" || first == "-h" { throw CleanExit.helpRequest(self) }
            if command.first == "--" { command.removeFirst() }
            guard !command.isEmpty else { throw ValidationError("Missing the command to learn from, e.g. `stockade profile learn -o p.json -- make`.") }
        }

        func run() throws {
            var plan = try sandbox.request.plan(command: command, configuration: try Configuration.load())
            do {
                plan.syscallFilter = .audited(AuditFilters(
                    baseline: try SeccompCompiler.auditBaseline,
                    profile: try SeccompCompiler.learnFilter,
                    enforcing: [try SeccompCompiler.hardeningBaseline]))
            } catch {
                complain("cannot compile the learning filters: \(error)")
                throw Failure(code: ExitStatus.system)
            }
            let outcome: SandboxOutcome
            do {
                outcome = try Sandbox.run(plan, forwardSignals: true,
                                          audit: AuditObserver(sandbox: AuditTrail.newSandboxID(), sink: nil))
            } catch {
                complain(error.description)
                throw Failure(code: ExitStatus.of(error))
            }
            // Only what was allowed: a call the baseline refused (mount) is not
            // something the workload needs.
            let seen = outcome.audit?.allowedSyscalls ?? []
            let comment = "Learned by `stockade profile learn` from: \(command.joined(separator: " ")); "
                + "\(seen.count) syscalls; every other syscall fails with EPERM."
            let bytes = SeccompProfile.learned(syscalls: seen, comment: comment)
            try Profile.write(bytes, to: output)
            complain("learned \(seen.count) syscalls from the command (exit \(outcome.termination.exitCode)); wrote \(output)", level: "info")
            throw Failure(code: outcome.termination.exitCode)
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check", abstract: "Validate a profile and list the syscalls it allows that the default profile denies.")

        @Argument(help: ArgumentHelp("A built-in name or an OCI JSON file.", valueName: "name|file"))
        var profile: String

        func run() throws {
            _ = try ProfileSelection.compile(named: profile)
            let parsed: SeccompProfile
            do { parsed = try SeccompProfile.resolve(profile) } catch {
                complain("\(error)")
                throw Failure(code: ExitStatus.invalidProfile)
            }
            guard let standard = SeccompProfile.builtin("default") else { throw Failure(code: ExitStatus.system) }
            let extra = parsed.check(against: standard)
            var text = "\(profile): valid\n"
            if extra.isEmpty {
                text += "allows nothing the default profile denies\n"
            } else {
                text += "allows \(extra.count) syscalls the default profile denies:\n" + extra.map { "  \($0)\n" }.joined()
            }
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress, $0.count) }
        }
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            complain("cannot create \(path): \(Errno.current.description)")
            throw Failure(code: ExitStatus.missingPath)
        }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            complain("cannot write \(path): \(Errno.current.description)")
            throw Failure(code: ExitStatus.system)
        }
    }

    struct Compile: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "compile", abstract: "Compile a profile to the raw BPF that seccomp(2) loads (e.g. bwrap --seccomp FD).")

        @Argument(help: ArgumentHelp("A built-in name (default, strict) or an OCI JSON file.", valueName: "name|file"))
        var profile: String

        @Option(name: .shortAndLong, help: ArgumentHelp("Where to write the BPF.", valueName: "file"))
        var output: String

        func run() throws {
            try Profile.write(try ProfileSelection.compile(named: profile).program.bytes, to: output)
        }
    }
}
