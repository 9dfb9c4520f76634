import ArgumentParser
import Glibc
import Seccomp

struct Profile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with seccomp profiles.",
        subcommands: [Compile.self])

    struct Compile: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compile a profile to the raw BPF that seccomp(2) loads (e.g. bwrap --seccomp FD).")

        @Argument(help: ArgumentHelp("A built-in name (default, strict) or an OCI JSON file.", valueName: "name|file"))
        var profile: String

        @Option(name: .shortAndLong, help: ArgumentHelp("Where to write the BPF.", valueName: "file"))
        var output: String

        func run() throws {
            let compiled = try ProfileSelection.compile(named: profile)
            let fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                complain("cannot create \(output): \(String(cString: strerror(errno)))")
                throw Failure(code: ExitCode.missingPath)
            }
            defer { close(fd) }
            let written = compiled.program.bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == compiled.program.bytes.count else {
                complain("cannot write \(output): \(String(cString: strerror(errno)))")
                throw Failure(code: ExitCode.system)
            }
        }
    }
}
