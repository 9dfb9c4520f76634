import Foundation
import StockadeTestSupport
import Testing

/// The command as a user installing it meets it: `make install` into a fresh prefix, the installed
/// binary run from there, completions that the shells accept, and `make uninstall` taking it all back.
@Suite("install")
struct InstallTests {
    let fixture = Fixture.shared

    @Test func versionNamesTheReleaseAndTheSupportedAPIs() {
        let outcome = fixture.stockade(["--version"], as: .suiteUser)
        #expect(outcome.status == 0, "\(outcome)")
        let lines = outcome.lines
        #expect(lines.count == 3, "\(outcome)")
        #expect(lines.first?.wholeMatch(of: /stockade \d+\.\d+\.\d+.*/) != nil, "\(outcome)")
        #expect(lines.contains("Buildpack API: 0.7 0.8 0.9 0.10 0.11 0.12"), "\(outcome)")
        #expect(lines.contains { $0.hasPrefix("Platform API: 0.7 0.8 ") }, "\(outcome)")
    }

    @Test func aHelpFlagBeforeTheSeparatorPrintsHelpAfterItIsTheCommand() {
        for line in [["exec", "--help"], ["exec", "-h"], ["exec", "--network", "none", "--help"],
                     ["profile", "learn", "-o", fixture.dir + "/learned.json", "--help"]] {
            let help = fixture.stockade(line, as: .suiteUser)
            #expect(help.status == 0 && help.stdout.contains("USAGE: stockade \(line[0])"), "\(line): \(help)")
        }
        let command = fixture.stockade(["exec", "--", "--help"], as: .suiteUser)
        #expect(command.status == 127 && !command.stdout.contains("USAGE"), "\(command)")
    }

    @Test func installRunsFromThePrefixAndUninstallLeavesNothing() throws {
        let stage = fixture.makeDirectory("install")
        let prefix = "/opt/stockade-test"
        let root = stage + prefix
        // DESTDIR stages the tree: nothing may land outside it.
        let install = make(["install-built", "BUILT=\(fixture.dir)", "PREFIX=\(prefix)", "DESTDIR=\(stage)"])
        #expect(install.status == 0, "\(install)")
        #expect(!FileManager.default.fileExists(atPath: prefix), "make install wrote outside DESTDIR")

        let installed = Fixture.run([root + "/bin/stockade", "--version"])
        #expect(installed.status == 0 && installed.stdout == fixture.stockade(["--version"], as: .suiteUser).stdout,
                "\(installed)")
        #expect(FileManager.default.isExecutableFile(atPath: root + "/bin/stockade-launcher"))
        for phase in ["analyzer", "detector", "restorer", "builder", "exporter", "creator", "rebaser"] {
            let link = root + "/lib/stockade/lifecycle/" + phase
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "../../../bin/stockade")
            // A phase checks the Platform API before anything else, as the reference does.
            let version = Fixture.run(["CNB_PLATFORM_API=0.13", link, "-version"])
            #expect(version.status == 0 && version.stdout.hasPrefix("stockade "), "\(phase) does not reach the installed stockade: \(version)")
        }

        // Each shell's own script (a bash script parses as zsh too), and each one the shell accepts.
        for (shell, file, marker) in [
            ("bash", root + "/share/bash-completion/completions/stockade", "complete -o filenames -F _stockade stockade"),
            ("zsh", root + "/share/zsh/site-functions/_stockade", "#compdef stockade"),
            ("fish", root + "/share/fish/vendor_completions.d/stockade.fish", "complete -c 'stockade'"),
        ] {
            let script = try String(contentsOfFile: file, encoding: .utf8)
            #expect(script.contains(marker) && script.contains("exec"), "\(file) is not stockade's \(shell) completion")
            if Fixture.run(["sh", "-c", "command -v \(shell)"]).status == 0 {
                let parsed = Fixture.run([shell, "-n", file])
                #expect(parsed.status == 0, "\(shell): \(parsed)")
            } else {
                Issue.record(Comment(rawValue: "skipped: \(shell) is not installed, \(file) is not parsed"), severity: .warning)
            }
        }

        let manual = root + "/share/man/man1/stockade.1"
        let page = try String(contentsOfFile: manual, encoding: .utf8)
        #expect(page.hasPrefix(".TH STOCKADE 1"), "\(page.prefix(200))")
        #expect(FileManager.default.fileExists(atPath: root + "/share/man/man1/stockade-exec.1"))
        // man itself renders it without a warning, where man is installed.
        if Fixture.run(["sh", "-c", "command -v groff"]).status == 0 {
            let rendered = Fixture.run(["groff", "-man", "-Tutf8", "-ww", "-z", manual])
            #expect(rendered.status == 0 && rendered.stderr.isEmpty, "\(rendered)")
        }

        let uninstall = make(["uninstall", "PREFIX=\(prefix)", "DESTDIR=\(stage)"])
        #expect(uninstall.status == 0, "\(uninstall)")
        let left = Fixture.run(["find", stage, "-not", "-type", "d"])
        #expect(left.status == 0 && left.stdout.isEmpty, "uninstall left: \(left.stdout)")
    }

    private func make(_ arguments: [String]) -> Outcome {
        Fixture.run(["make", "--no-print-directory", "-C", fixture.repo] + arguments)
    }
}
